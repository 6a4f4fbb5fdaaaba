"""`Reconciler`: the one background task that brings the service's records in line with the cluster, so that
reads only read.

Every `interval_s` it runs `JobFollower.reconcile` (each active study's job state pulled from the backend and
stored; a lost job or one stopped by a storage outage resubmitted; a queued study whose submission failed
submitted again; the trials an ended job left RUNNING failed under the study's lease; a job that succeeded
without a finished trial marked failed). One per database: a tick runs only while this service holds the
database's reconciler lease (`RECONCILER_LEASE` in `afpe.search.lease`'s table, renewed each tick, expiring after
its TTL), so two services on one database never resubmit the same job twice. Each tick (of every service) also
writes the derived values its reads computed (`derived_store.DerivedStore.flush`). Started and stopped with the app's
lifespan; an error in a tick (the database or the cluster down) is logged and the next tick tries again.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from afpe.search.lease import LeaseError
from afpe.service.manager.derived_store import DerivedStore
from afpe.service.manager.job_follower import REFRESH_S, JobFollower

#: the lease key of the reconciler (a study name never contains ':', see `spec.SLUG_PATTERN`)
RECONCILER_LEASE = ":reconciler"
STOP_WAIT_S = 30.0

log = logging.getLogger("afpe.service")


class Reconciler:
    """`follower.reconcile()` every `interval_s` seconds on a daemon thread, between `start()` and `stop()`."""

    def __init__(self, follower: JobFollower, store: DerivedStore | None = None, interval_s: float = REFRESH_S):
        """`store`: the derived values reads computed, written each tick and at `stop`."""
        self.follower = follower
        self.store = store
        self.interval_s = interval_s
        self.ticks = 0  # reconciliations run (by this service)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (its first tick at once)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="afpe-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current tick (waited for up to STOP_WAIT_S) and let go of the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
        self._flush()
        try:
            self.follower.jobs.leases.release(RECONCILER_LEASE, self.follower.jobs.holder)
        except sa.exc.SQLAlchemyError:
            log.warning("could not release the reconciler lease (the database is down): it expires on its own")

    def tick(self) -> bool:
        """One reconciliation, if this service holds (or can take) the database's reconciler lease; whether it
        ran."""
        try:
            self.follower.jobs.leases.acquire(RECONCILER_LEASE, self.follower.jobs.holder)
        except LeaseError:
            return False  # another service reconciles this database
        self.follower.reconcile()
        self.ticks += 1
        return True

    def _flush(self) -> None:
        """Write the derived values reads computed (any service may: they are keyed by study version)."""
        if self.store is None:
            return
        try:
            self.store.flush()
        except sa.exc.SQLAlchemyError as error:
            log.warning("keeping the derived values failed (%s); trying again", error)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - a database or cluster down: log, and try again next tick
                log.warning("reconciling the studies with the job backend failed (%s); trying again", error)
            self._flush()
            self._stop.wait(self.interval_s)
