"""What reads derive from a study's trials, kept per study version in the service's database (issue 30 row 11),
so that the first status or plot after a restart is a lookup, not a cold read of every trial (100,000 trials: 30 s
and more) and a recomputation.

`DerivedStore`: rows (study, key, version, JSON text) in `records.DerivedValue`. Reads never write: a value a
read computed waits in memory (`keep`) until the background reconciler writes it (`flush`, each tick and at its
stop). `KeptByVersion`: `LatestByVersion` in memory (one computation shared by concurrent requests) over the
store: a miss in memory looks for the row of the same version before computing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import sessionmaker

from afpe.search.outage import retry
from afpe.service.manager.records import RETRY_S, DerivedValue
from afpe.service.manager.study_reads import LatestByVersion


class DerivedStore:
    """The derived values of the service's database; `find` reads, `keep` queues, `flush` writes."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions
        self._pending: dict[tuple[str, str], tuple[str, str]] = {}  # (study, key) -> (version, JSON text)
        self._lock = threading.Lock()

    def find(self, study: str, key: str, version: str) -> Any | None:
        """The value kept for (`study`, `key`) at `version` (queued or stored), else None."""
        with self._lock:
            queued = self._pending.get((study, key))
        if queued is not None and queued[0] == version:
            return json.loads(queued[1])

        def read() -> DerivedValue | None:
            with self.sessions() as session:
                return session.get(DerivedValue, (study, key))

        row = retry(read, RETRY_S)
        return json.loads(row.value) if row is not None and row.version == version else None

    def keep(self, study: str, key: str, version: str, value: Any) -> None:
        """Queue `value` (JSON data) as (`study`, `key`)'s at `version`, for the next `flush`."""
        text = json.dumps(value)
        with self._lock:
            self._pending[(study, key)] = (version, text)

    def flush(self) -> int:
        """Write the queued values (each replacing the study's previous version of its key); how many. Database
        errors propagate (the values stay queued)."""
        with self._lock:
            pending = dict(self._pending)
        with self.sessions.begin() as session:
            for (study, key), (version, text) in pending.items():
                session.merge(DerivedValue(study=study, key=key, version=version, value=text))
        with self._lock:
            for item, queued in pending.items():
                if self._pending.get(item) == queued:
                    del self._pending[item]
        return len(pending)


class KeptByVersion:
    """Values of one `key` per study, computed once per study version: in memory (`LatestByVersion`, at most
    `size` studies), else from `store`, else computed (and queued in `store`). Values are JSON data."""

    def __init__(self, store: DerivedStore, key: str, size: int = 512):
        self.store = store
        self.key = key
        self._memory = LatestByVersion(size)

    def get(self, study: str, version: str, compute: Callable[[], Any]) -> Any:
        """The value of `study` at `version`; `compute()` only when neither memory nor the store has it."""

        def stored_or_computed() -> Any:
            found = self.store.find(study, self.key, version)
            if found is None:
                found = compute()
                self.store.keep(study, self.key, version, found)
            return found

        return self._memory.get(study, version, stored_or_computed)
