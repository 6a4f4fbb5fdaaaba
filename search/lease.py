"""One driver per study: a lease with a heartbeat, in a table beside the Optuna tables.

At most one process holds the lease of a study at a time: the driver of a service job, an `afpe run`, or the
service while it fails the trials an ended job left RUNNING. Only the holder runs trials or fails stale ones.

Why a table of our own: Optuna's study attrs are plain upserts, with no compare-and-set. Here the lease is
taken, renewed and released by one `UPDATE ... WHERE` each, which the database applies atomically to the
row on SQLite and PostgreSQL alike (a concurrent update waits for the row and re-checks the condition), and
its times come from the database's clock (as Optuna's trial heartbeat does), so hosts need not agree on the
time. A lease its holder stopped renewing for `LEASE_TTL_S` (a dead driver) can be taken over. A revoked
holder (the job of a cancelled attempt) can never take the lease again, and loses it at its next renewal.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from afpe.search.storage import create_engine, create_tables, default_storage_url

LEASE_TTL_S = 10.0
HEARTBEAT_S = 2.0
STALL_WATCH_S = 2 * HEARTBEAT_S  # a lease not renewed for this long has a holder that stopped
HOLDER_ENV = "AFPE_LEASE_HOLDER"  # set by the service on each job: the job id, which it can revoke

_metadata = sa.MetaData()
_leases = sa.Table(
    "afpe_study_leases",
    _metadata,
    sa.Column("study", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("expires_at", sa.DateTime, nullable=True),  # the database's clock, UTC
)
_revoked = sa.Table(
    "afpe_revoked_holders",
    _metadata,
    sa.Column("study", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), primary_key=True),
)


class LeaseError(ValueError):
    """The study's lease cannot be taken (a ValueError: `afpe run` exits with code 2 and this message)."""


class LeaseHeldError(LeaseError):
    """Another live holder has the lease; `holder` says who."""

    def __init__(self, study: str, holder: Holder):
        super().__init__(f"study {study!r} is being run by {holder}; wait for it to end or stop it first")
        self.holder = holder


class LeaseRevokedError(LeaseError):
    """The holder was revoked (its attempt was cancelled): it may never run the study again."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: its id (a service job id, `afpe-run-…`, `afpe-serve-…`), host and process."""

    id: str
    host: str
    pid: int
    expires_in_s: float

    def __str__(self) -> str:
        return f"{self.id} (pid {self.pid} on {self.host}; lease expires in {self.expires_in_s:.0f} s unless renewed)"


class StudyLeases:
    """The study leases of one database (tables created on first use). Database errors propagate."""

    def __init__(self, engine: Engine, ttl_s: float = LEASE_TTL_S):
        self.engine = engine
        self.ttl = dt.timedelta(seconds=ttl_s)
        create_tables(_metadata, engine)

    def holder(self, study: str) -> Holder | None:
        """The live holder of `study`'s lease, or None when it is free (never taken, released or expired)."""
        with self.engine.connect() as connection:
            now = _database_now(connection)
            row = connection.execute(sa.select(_leases).where(_leases.c.study == study)).first()
        if row is None or row.holder is None or row.expires_at <= now:
            return None
        return Holder(row.holder, row.host, row.pid, (row.expires_at - now).total_seconds())

    def acquire(self, study: str, holder: str) -> None:
        """Take the lease of `study` for `holder` (again, if it already holds it). LeaseHeldError naming the live
        holder, LeaseRevokedError for a revoked holder."""
        self._ensure_row(study)
        for _ in range(3):  # a lease released or expired between the update and the read below: try again
            with self.engine.begin() as connection:
                now = _database_now(connection)
                taken = connection.execute(
                    sa.update(_leases)
                    .where(
                        _leases.c.study == study,
                        sa.or_(_leases.c.holder.is_(None), _leases.c.holder == holder, _leases.c.expires_at <= now),
                        ~_is_revoked(study, holder),
                    )
                    .values(holder=holder, host=socket.gethostname(), pid=os.getpid(), expires_at=now + self.ttl)
                )
            if taken.rowcount == 1:
                return
            if self.revoked(study, holder):
                raise LeaseRevokedError(f"study {study!r}: {holder} was cancelled by the service and may not run it")
            current = self.holder(study)
            if current is not None:
                raise LeaseHeldError(study, current)
        raise LeaseError(f"study {study!r}: its lease changed hands three times while {holder} tried to take it")

    def acquire_from_stalled(self, study: str, holder: str, on_wait: Callable[[str], None]) -> None:
        """`acquire`, except that a holder which stopped renewing (a killed driver, a closed laptop) is waited
        out: its lease's expiry is watched for STALL_WATCH_S (two renewal periods, or until it expires);
        unchanged, `on_wait` gets one line saying so and the lease is taken once it expires (within LEASE_TTL_S).
        LeaseHeldError when the holder renews meanwhile (it is live), another takes the lease, or the lease does
        not expire within LEASE_TTL_S after the watch (a holder with a longer TTL); LeaseRevokedError as
        `acquire`."""
        try:
            self.acquire(study, holder)
            return
        except LeaseHeldError as held:
            seen = held.holder
            first = self._expiry(study)
        stalled_after = time.monotonic() + STALL_WATCH_S
        give_up = stalled_after + LEASE_TTL_S + 1.0
        announced = False
        while True:
            time.sleep(0.25)
            if time.monotonic() > give_up:  # not a driver's lease: it outlives any stalled driver's
                self.acquire(study, holder)  # LeaseHeldError naming it (or the lease, if it just expired)
                return
            current = self._expiry(study)
            if current is not None and current != first:  # renewed or taken: a live holder
                self.acquire(study, holder)  # LeaseHeldError naming it
                return
            expired = current is not None and self.holder(study) is None
            if not announced and (expired or time.monotonic() >= stalled_after):
                on_wait(
                    f"study {study!r}: {seen.id} (pid {seen.pid} on {seen.host}) stopped renewing its lease; "
                    f"waiting for it to expire (at most {LEASE_TTL_S:.0f} s), then taking the study over"
                )
                announced = True
            if current is None or expired:  # released or expired: free
                with suppress(LeaseHeldError):
                    self.acquire(study, holder)
                    return

    def _expiry(self, study: str) -> tuple[str, dt.datetime] | None:
        """(holder, expires_at) of `study`'s lease row, None when it is free; a renewal changes expires_at."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(_leases).where(_leases.c.study == study)).first()
        return None if row is None or row.holder is None else (row.holder, row.expires_at)

    def _ensure_row(self, study: str) -> None:
        """The study's lease row (free) exists; of two processes inserting it at once, one does."""
        with self.engine.connect() as connection:
            if connection.execute(sa.select(_leases.c.study).where(_leases.c.study == study)).first():
                return
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(_leases).values(study=study))
        except sa.exc.IntegrityError:
            pass

    def renew(self, study: str, holder: str) -> bool:
        """Extend `holder`'s lease by the TTL; False when it lost the lease (taken over, or revoked)."""
        with self.engine.begin() as connection:
            now = _database_now(connection)
            renewed = connection.execute(
                sa.update(_leases)
                .where(_leases.c.study == study, _leases.c.holder == holder, ~_is_revoked(study, holder))
                .values(expires_at=now + self.ttl)
            )
        return renewed.rowcount == 1

    def release(self, study: str, holder: str) -> None:
        """Free the lease if `holder` still holds it (a no-op otherwise)."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(_leases)
                .where(_leases.c.study == study, _leases.c.holder == holder)
                .values(holder=None, host=None, pid=None, expires_at=None)
            )

    def revoke(self, study: str, holder: str) -> None:
        """Forbid `holder` the lease of `study` for good: it cannot take it, and a holding driver loses it at its
        next renewal (within HEARTBEAT_S) and ends. Idempotent."""
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(_revoked).values(study=study, holder=holder))
        except sa.exc.IntegrityError:
            pass  # already revoked

    def revoked(self, study: str, holder: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(_is_revoked(study, holder))).scalar_one()

    def wait_until_not_held_by(self, study: str, holder: str, timeout_s: float) -> bool:
        """Wait until `holder` no longer holds a live lease of `study` (released it, or it expired); False when
        it still does after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while (current := self.holder(study)) is not None and current.id == holder:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True

    @contextmanager
    def held(self, study: str, holder: str) -> Iterator[None]:
        """The lease of `study` held by `holder` for a short piece of work (no heartbeat), then released."""
        self.acquire(study, holder)
        try:
            yield
        finally:
            self.release(study, holder)


def _is_revoked(study: str, holder: str) -> sa.Exists:
    return sa.exists().where(_revoked.c.study == study, _revoked.c.holder == holder)


def _database_now(connection: Connection) -> dt.datetime:
    """The database's current time as a naive UTC datetime (SQLite's CURRENT_TIMESTAMP is UTC already)."""
    now = connection.execute(sa.select(sa.func.current_timestamp())).scalar_one()
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def holder_id() -> str:
    """This driver's holder id: $AFPE_LEASE_HOLDER (a service job's id), else a fresh `afpe-run-<hex>`."""
    return os.environ.get(HOLDER_ENV) or f"afpe-run-{uuid.uuid4().hex[:12]}"


@contextmanager
def driver_lease(
    storage: str | None,
    study: str,
    call: Callable[[Callable[[], None]], None],
    on_stalled: Callable[[str], None] | None = None,
) -> Iterator[Callable[[str], NoReturn]]:
    """Hold the lease of `study` while a driver runs it, renewed every HEARTBEAT_S by a daemon thread; it is taken
    through `call` (the run's `StorageGuard.call`, which rides out a transient error); with `on_stalled` (a
    resume), a holder that stopped renewing is waited out, `on_stalled` told in one line
    (`StudyLeases.acquire_from_stalled`). LeaseHeldError / LeaseRevokedError when it cannot be taken. A driver
    that loses its lease (revoked by the service's cancel, or taken over after it stalled past the TTL) must not
    write one more trial: the thread releases what it still holds and ends the process at once with exit code 2
    (`os._exit`: no cleanup that could still tell a trial); the trials it left RUNNING are failed by the next
    holder. Yields that ending (`abandon(why)`: `why` printed as the driver's one error line), for any other
    reason to stop at once (its Ray cluster's head is gone: `head_watch`)."""
    leases = StudyLeases(create_engine(storage or default_storage_url()))
    holder = holder_id()
    if on_stalled is None:
        call(lambda: leases.acquire(study, holder))
    else:
        call(lambda: leases.acquire_from_stalled(study, holder, on_stalled))
    stop = threading.Event()

    def abandon(why: str) -> NoReturn:
        print(f"afpe: error: study {study!r}: {why}; stopping", file=sys.stderr, flush=True)
        with suppress(sa.exc.SQLAlchemyError):  # ending matters more than a quick release
            leases.release(study, holder)
        os._exit(2)

    def lost() -> None:
        abandon(f"{holder} lost its lease (cancelled or taken over)")

    heartbeat = threading.Thread(target=_heartbeat, args=(leases, study, holder, stop, lost), daemon=True)
    heartbeat.start()
    try:
        yield abandon
    finally:
        stop.set()
        heartbeat.join()
        with suppress(sa.exc.SQLAlchemyError):  # the storage is down (a run ending on an outage): the TTL frees it
            leases.release(study, holder)
        leases.engine.dispose()


def _heartbeat(leases: StudyLeases, study: str, holder: str, stop: threading.Event, lost: Callable[[], None]) -> None:
    """Renew every HEARTBEAT_S until `stop`; call `lost` when the lease is gone. A database error (an outage)
    is retried at the next beat (if the outage outlasts the TTL, another driver may take the lease meanwhile,
    and the next renewal tells)."""
    while not stop.wait(HEARTBEAT_S):
        try:
            if not leases.renew(study, holder):
                lost()
        except sa.exc.SQLAlchemyError:
            continue
