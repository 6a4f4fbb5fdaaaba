"""Riding out a storage outage: which database errors are transient, bounded exponential backoff, and an
ordered buffer of writes that waits for the database to come back.

A database restarts (an upgrade, a failover, a maintenance window, a laptop's sleep): its errors are
`OperationalError`s (connection refused or reset, "the database system is shutting down", a serialization
failure, SQLite's "database is locked"), which Optuna wraps in `StorageInternalError`. `StorageGuard` runs
storage calls for the driver:

- `call(fn)` blocks, retrying a transient error with backoff until `budget_s` of outage has passed, then
  raises `StorageOutage`;
- `attempt(fn)` never blocks: `fn()` now, or None while the storage is down (the caller asks again later);
- `write(fn)` never blocks: the write runs now if the storage is up and nothing waits, else it is queued, and
  the queue is written in order by the next `flush()` that finds the storage back. Every write must be
  idempotent (an upsert, or a tell that skips a finished trial): a write whose commit was cut off is replayed.

SQLAlchemy's `pool_pre_ping` replaces a dropped connection at checkout; it cannot bridge the seconds a server
needs to come back, which is what this module is for (written here because neither SQLAlchemy nor Optuna
retry a statement: Optuna's `RetryFailedTrialCallback` re-runs a failed trial, it does not save its reports).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy

OUTAGE_BUDGET_ENV = "AFPE_STORAGE_OUTAGE_S"
DEFAULT_OUTAGE_BUDGET_S = 300.0
OUTAGE_EXIT_CODE = 2
OUTAGE_MARKER = "storage outage:"  # starts the message of `StorageOutage`; the service looks for it
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0
# SQLSTATEs of a server that is going away or coming back, and of transactions to simply run again
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300"}
)
SQLITE_BUSY_TEXTS = ("database is locked", "database is busy", "disk i/o error", "unable to open database")
# A server that answered and refused these credentials or this database (libpq gives no SQLSTATE at connect):
# waiting would not help, so these are not transient.
REFUSAL_TEXTS = ("authentication failed", "does not exist", "no pg_hba.conf entry", "no password supplied")

T = TypeVar("T")


class StorageOutage(RuntimeError):
    """The storage stayed unreachable for longer than the outage budget. `in_flight`: numbers of the trials
    whose end was not written yet; `recorded`: whether it was written after all (else they stay RUNNING, and
    `afpe run --resume` records them FAIL)."""

    def __init__(self, storage: str, seconds: float, budget_s: float, in_flight: list[int], recorded: bool) -> None:
        self.storage = storage
        self.seconds = seconds
        self.budget_s = budget_s
        self.in_flight = in_flight
        self.recorded = recorded
        if not in_flight:
            trials = "no trial was running"
        elif recorded:
            trials = f"trial(s) {_numbers(in_flight)} in flight were recorded (those cut off as FAIL)"
        else:
            trials = f"trial(s) {_numbers(in_flight)} in flight stay RUNNING until --resume records them FAIL"
        super().__init__(
            f"{OUTAGE_MARKER} {storage} unreachable for {seconds:.0f} s (budget {budget_s:g} s, "
            f"${OUTAGE_BUDGET_ENV} or --storage-outage): the run stopped; {trials}"
        )


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(number) for number in sorted(numbers))


def outage_budget(value: float | None = None) -> float:
    """The outage budget in seconds: `value`, else $AFPE_STORAGE_OUTAGE_S, else 300. ValueError naming the
    setting for a negative or unparsable value."""
    if value is None:
        text = os.environ.get(OUTAGE_BUDGET_ENV)
        if not text:
            return DEFAULT_OUTAGE_BUDGET_S
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{OUTAGE_BUDGET_ENV}: not a number of seconds: {text!r}") from None
    if value < 0:
        raise ValueError(f"storage outage budget: must be >= 0 seconds, got {value:g}")
    return value


def is_transient(error: BaseException) -> bool:
    """True when `error` (or an exception it was raised from) means the database is unreachable for now or
    asks for the transaction to run again; a programming or data error is not transient."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, StorageOutage):
            return True
        if isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, sqlalchemy.exc.TimeoutError):  # no connection free in the pool
            return True
        if getattr(link, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        if _is_psycopg_operational(link):
            return True
        if isinstance(link, sqlite3.OperationalError) and str(link).lower().startswith(SQLITE_BUSY_TEXTS):
            return True
        link = link.__cause__ or link.__context__ or getattr(link, "orig", None)
    return False


def _is_psycopg_operational(error: BaseException) -> bool:
    """psycopg's OperationalError: a connection refused, reset or closed by a server shutting down, or a host
    name not resolved (yet: a container network's DNS reloads as containers join), but not a refusal."""
    try:
        import psycopg
    except ImportError:  # SQLite-only installs
        return False
    return isinstance(error, psycopg.OperationalError) and not any(text in str(error) for text in REFUSAL_TEXTS)


def retry(fn: Callable[[], T], budget_s: float, storage: str = "the storage") -> T:
    """`fn()` retried through an outage of at most `budget_s` seconds (`StorageGuard.call`, without lines)."""
    return StorageGuard(storage, budget_s).call(fn)


class StorageGuard:
    """Runs the driver's storage calls through an outage of at most `budget_s` seconds (see the module).
    `on_event(text)` hears one line when the storage is lost and one when it is back."""

    def __init__(
        self,
        storage: str,
        budget_s: float | None = None,
        on_event: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.storage = storage
        self.budget_s = outage_budget(budget_s)
        self.on_event = on_event
        self.clock = clock
        self.sleep = sleep
        self.pending: deque[Callable[[], object]] = deque()
        self.lost_at: float | None = None
        self.next_try = 0.0
        self.delay = FIRST_DELAY_S
        self.longest_s = 0.0  # the longest outage ridden out so far

    @property
    def down(self) -> bool:
        return self.lost_at is not None

    @property
    def exceeded(self) -> bool:
        """The current outage has lasted longer than the budget."""
        return self.lost_at is not None and self.clock() - self.lost_at > self.budget_s

    def outage_seconds(self) -> float:
        return 0.0 if self.lost_at is None else self.clock() - self.lost_at

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` once the pending writes are in, retried with backoff while its error is transient.
        StorageOutage when the outage outlasts the budget; a non-transient error is raised as it is."""
        while True:
            if self.flush(wait=True):
                try:
                    result = fn()
                except Exception as error:
                    if not is_transient(error):
                        raise
                    self.lost()
                else:
                    self._back()
                    return result
            if self.exceeded:
                raise self.outage([], recorded=False)
            self.sleep(max(self.next_try - self.clock(), 0.0))

    def attempt(self, fn: Callable[[], T]) -> T | None:
        """`fn()` now, once the pending writes are in; None while the storage is down (the outage noted, nothing
        retried: for a caller that must not block and asks again later). A non-transient error is raised."""
        if not self.flush():
            return None
        try:
            result = fn()
        except Exception as error:
            if not is_transient(error):
                raise
            self.lost()
            return None
        self._back()
        return result

    def write(self, fn: Callable[[], object]) -> None:
        """Run the idempotent write `fn` now, or queue it behind the writes already waiting (never blocks)."""
        self.pending.append(fn)
        self.flush()

    def flush(self, wait: bool = False) -> bool:
        """Write the queued writes in order; True when none is left (while the storage is down and nothing
        waits: the caller may try its own call). While the storage is down, tries only when the backoff allows
        (`wait`: sleep until then). A non-transient error of a write is raised."""
        if self.down and self.clock() < self.next_try:
            if not wait:
                return False
            self.sleep(self.next_try - self.clock())
        while self.pending:
            try:
                self.pending[0]()
            except Exception as error:
                if not is_transient(error):
                    self.pending.popleft()
                    raise
                self.lost()
                return False
            self.pending.popleft()
            self._back()  # said before the next queued write (e.g. a progress line) runs
        return True

    def outage(self, in_flight: list[int], recorded: bool) -> StorageOutage:
        return StorageOutage(self.storage, self.outage_seconds(), self.budget_s, in_flight, recorded)

    def lost(self) -> None:
        """Note a transient storage error now: the outage starts (one line said) or its backoff grows."""
        now = self.clock()
        if self.lost_at is None:
            self.lost_at = now
            self.delay = FIRST_DELAY_S
            self._say(f"storage lost: {self.storage} is unreachable; retrying for up to {self.budget_s:g} s")
        else:
            self.delay = min(self.delay * 2, MAX_DELAY_S)
        self.next_try = now + self.delay

    def _back(self) -> None:
        if self.lost_at is None:
            return
        seconds = self.clock() - self.lost_at
        self.longest_s = max(self.longest_s, seconds)
        self.lost_at = None
        self._say(f"storage back after {seconds:.1f} s: {self.storage}")

    def _say(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)
