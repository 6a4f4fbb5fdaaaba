"""`StudyReads`: what every read of a study shares: its record (or a stand-in for a study `afpe run` made), its
trials, who runs it, its trials' user attrs as reads show them; and `study_version` + `LatestByVersion`, the key
and the store of what is computed once per study version (`StudyReads.version`: the key without reading the
trials). Every read retries through a database restart of up to
`records.RETRY_S`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import PurePath
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.orm import sessionmaker

from afpe.search.lease import StudyLeases
from afpe.search.outage import retry
from afpe.search.study_list import study_entry
from afpe.search.trial_reads import OpenTrial, TrialRowCache, trial_count_and_open
from afpe.service.errors import NotFound
from afpe.service.manager.error_text import sanitize_error
from afpe.service.manager.records import RETRY_S, StudyRecord, StudySource, StudyState, get_record

_T = TypeVar("_T")

#: when a study with no trial and no record was created, for ordering (Optuna keeps no study creation time)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class StudyReads:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        leases: StudyLeases,
        secrets: Sequence[str] = (),
    ):
        """`leases`: the studies' one-driver leases (who runs a study); `secrets` (tokens, the database password)
        are hidden from every `error` shown."""
        self.sessions = sessions
        self.storage = storage
        self.leases = leases
        self.secrets = tuple(secrets)

    def record(self, name: str) -> StudyRecord:
        """The service's record of study `name`, or for an afpe study of the storage it has no record of (made by
        `afpe run`) a stand-in that is never stored (`unrecorded`); NotFound when neither exists."""
        try:
            return get_record(self.sessions, name)
        except NotFound:
            try:
                study_id = retry(lambda: self.storage.get_study_id_from_name(name), RETRY_S)
            except KeyError:
                raise NotFound(f"name: no study {name!r}") from None
            attrs = retry(lambda: self.storage.get_study_user_attrs(study_id), RETRY_S)
            if not isinstance(attrs.get("spec"), dict):
                raise NotFound(f"name: the Optuna study {name!r} was not made by afpe (it has no spec)") from None
            return self.unrecorded(name, attrs)

    def unrecorded(self, name: str, attrs: dict[str, Any]) -> StudyRecord:
        """A stand-in record (not stored) of an afpe study the service has no record of: source `cli`, attempt 0
        (unmanaged), its state and error by `study_list.driver_state` (running while a driver holds its lease),
        created when its first trial started."""
        entry = study_entry(name, attrs, self.trials(name), self.holder(name))
        created = entry.created_at or EPOCH
        return StudyRecord(
            name=name,
            spec=entry.spec,
            source=StudySource.CLI,
            state=StudyState(entry.state),
            job_id=None,
            attempt=0,
            resume=False,
            error=entry.error,
            note=None,
            created_at=created,
            started_at=entry.created_at,
            finished_at=None,
        )

    def holder(self, name: str) -> str | None:
        """Who runs study `name` now (the live holder of its lease, e.g. an `afpe run`), or None."""
        holder = retry(lambda: self.leases.holder(name), RETRY_S)
        return None if holder is None else str(holder)

    def trials(self, name: str) -> list[FrozenTrial]:
        """The study's trials (NotFound when it is not in the storage)."""
        study_id = self.read(lambda: self.storage.get_study_id_from_name(name), name)
        return retry(lambda: self.storage.get_all_trials(study_id, deepcopy=False), RETRY_S)

    def version(self, name: str, spec: dict[str, Any]) -> str:
        """The `study_version` of study `name` (its stored `spec`) without reading its trials (NotFound)."""
        count, opened = self.read(lambda: trial_count_and_open(self.storage, name), name)
        return version_of(spec, count, opened)

    def read(self, read: Callable[[], _T], name: str) -> _T:
        """`read()` through a database restart; NotFound when study `name` is not in the storage."""
        try:
            return retry(read, RETRY_S)
        except KeyError:
            raise NotFound(f"name: no Optuna study {name!r} in the storage") from None

    def shown_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A trial's user attrs as every read shows them (reads are not authenticated): `error` passes
        `sanitize_error`, `log` is the log file's name (the path says where the driver ran)."""
        shown = dict(attrs)
        if isinstance(shown.get("error"), str):
            shown["error"] = sanitize_error(shown["error"], self.secrets)
        if isinstance(shown.get("log"), str):
            shown["log"] = PurePath(shown["log"]).name
        return shown


#: the states of a trial that has not ended (see `TrialRowCache.FINISHED`); a tuple: identity tests, no hashing
OPEN_STATES = tuple(state for state in TrialState if state not in TrialRowCache.FINISHED)


def study_version(spec: dict[str, Any], trials: Sequence[FrozenTrial]) -> str:
    """A tag that changes whenever what a study shows can change: its spec, its number of trials, and each
    unfinished trial's number, state, value and epochs reported. A trial only ever moves from open (OPEN_STATES)
    to ended, and an ended one never changes again, so an unchanged count and unchanged open trials mean
    unchanged trials: O(trials) identity tests, a hash of the open trials only. `StudyStatus.version`, and
    the key under which figures and summaries are kept. `StudyReads.version` gives the same from two small
    queries."""
    opened = [(t.number, t.state.value, t.value, len(t.intermediate_values)) for t in trials if t.state in OPEN_STATES]
    return version_of(spec, len(trials), opened)


def version_of(spec: dict[str, Any], count: int, opened: Sequence[OpenTrial]) -> str:
    """`study_version` from the number of trials and the open ones (`trial_reads.OpenTrial`, in number order)."""
    digest = hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=12)
    digest.update(f"{count};".encode())
    for number, state, value, epochs in opened:
        digest.update(f"{number},{state},{value},{epochs};".encode())
    return digest.hexdigest()


class LatestByVersion:
    """The latest value computed per key, with the version it was computed at; at most `size` keys (the least
    recently used go first). Safe to share between threads: requests that want one key at once share one
    computation (the others wait for it)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._computing: dict[Hashable, tuple[threading.Lock, list[int]]] = {}  # key -> (its lock, waiters)
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], _T]) -> _T:
        """The value kept for `key` if it was computed at `version`, else `compute()` (kept; exceptions pass),
        computed once for the requests that ask at the same time."""
        kept = self.find(key, version)
        if kept is not None:
            return kept
        with self._lock:
            computing, waiters = self._computing.setdefault(key, (threading.Lock(), [0]))
            waiters[0] += 1
        try:
            with computing:
                kept = self.find(key, version)
                if kept is None:
                    kept = compute()
                    self.keep(key, version, kept)
                return kept
        finally:
            with self._lock:
                waiters[0] -= 1
                if not waiters[0]:
                    del self._computing[key]

    def find(self, key: Hashable, version: Hashable) -> Any | None:
        """The value kept for `key` at `version`, else None."""
        with self._lock:
            kept = self._values.get(key)
            if kept is None or kept[0] != version:
                return None
            self._values.move_to_end(key)
            return kept[1]

    def keep(self, key: Hashable, version: Hashable, value: Any) -> None:
        with self._lock:
            self._values[key] = (version, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
