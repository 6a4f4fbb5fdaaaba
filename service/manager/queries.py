"""Read models of studies (`views.py`) from the service table and the Optuna storage, by the rules of
`afpe.search.analysis`: what `afpe status` prints is what `GET /api/studies/{name}` serves."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.search.analysis import REPEAT_OF, scale_ratio
from afpe.search.export import trials_text
from afpe.search.kept_models import best_checkpoint, trial_checkpoint
from afpe.search.outage import retry
from afpe.search.spec import PARAM_PREFIX, SearchSpace
from afpe.search.study_list import Origin, afpe_studies, origin_of, study_entry
from afpe.search.summary import StudySummary, summarize_trials
from afpe.search.trial_reads import TrialRow, TrialRowCache, trials_by_number
from afpe.service.errors import Conflict, InvalidInput, NotFound
from afpe.service.manager.error_text import sanitize_error
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.records import RETRY_S, StudyRecord, StudySource, StudyState, get_record, utcnow
from afpe.service.manager.views import (
    BestEstimateView,
    BestTrial,
    CompareResult,
    CompareRow,
    StudyListItem,
    StudyStatus,
    TrendResult,
    TrialDetail,
    TrialItem,
    TrialRowView,
    TrialsPage,
)
from afpe.service.plots import compare, trend
from afpe.service.plots.kinds import build_figure

_T = TypeVar("_T")

#: the user attrs a row of the trials table shows
ROW_ATTRS = ("seed", REPEAT_OF, "seconds", "epochs")
#: the columns a trials table sorts by, besides each scale s_<axis>
ROW_COLUMNS = ("number", "state", "value", "ratio", *ROW_ATTRS)
#: when a study with no trial and no record was created, for ordering (Optuna keeps no study creation time)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class TrialQuery:
    """Which trials a table shows: those in `states` (all when empty), sorted by `sort` (a ROW_COLUMNS name or
    a scale s_<axis>; missing values last, ties in number order) in `order` ('asc', 'desc'), `limit` of them
    from `offset`."""

    sort: str = "number"
    order: str = "asc"
    states: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class CheckpointFile:
    """A kept checkpoint: its file, the name it is downloaded as, and its trial."""

    path: Path
    filename: str
    number: int


class StudyQueries:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        lifecycle: StudyLifecycle,
        artifacts: Path,
        secrets: Sequence[str] = (),
        data_dir: Path | None = None,
    ):
        """`artifacts`: the root of the studies' checkpoint folders (`afpe.search.kept_models.artifact_root`);
        `secrets` (tokens, the database password) are hidden from every `error` shown; a spec's `data_root` is
        shown relative to `data_dir` (the service's data directory)."""
        self.artifacts = artifacts
        self.data_dir = data_dir
        self.sessions = sessions
        self.storage = storage
        self.lifecycle = lifecycle
        self.secrets = tuple(secrets)
        self.rows = TrialRowCache(storage, ROW_ATTRS)
        self._latest = LatestByVersion()  # summaries and figures, per study
        self._orderings = LatestByVersion(size=32)  # trials tables' orderings: a list of every row each
        self._items = LatestByVersion(size=5_000)  # whole ended trials of the trials pages, by study and number

    def list(self) -> list[StudyListItem]:
        """Every study of the database, oldest first: the service's records and the afpe studies of the Optuna
        storage it has no record of (made by `afpe run`)."""

        def read() -> list[StudyRecord]:
            with self.sessions() as session:
                return list(session.scalars(select(StudyRecord).order_by(StudyRecord.created_at)).all())

        records = retry(read, RETRY_S)
        recorded = {record.name for record in records}
        others = [
            self._unrecorded(name, attrs)
            for name, attrs in retry(lambda: afpe_studies(self.storage), RETRY_S)
            if name not in recorded
        ]
        items = []
        for record in sorted([*records, *others], key=lambda r: _aware(r.created_at)):
            trials = self._trials(record.name)
            summary = self._summary(record, trials, study_version(record.spec, trials))
            items.append(
                StudyListItem(
                    name=record.name,
                    state=record.state,
                    source=record.source,
                    origin=self._origin(record),
                    managed=record.managed,
                    holder=self._holder(record.name),
                    task=record.spec.get("task"),
                    encoding=record.spec.get("encoding"),
                    finished=summary.finished,
                    n_trials=summary.n_trials,
                    best_value=summary.best_value,
                    metric=summary.metric,
                    created_at=record.created_at,
                    stale=self.lifecycle.is_stale(record.name),
                )
            )
        return items

    def status(self, name: str) -> StudyStatus:
        """State, counts, progress, ETA, best trial and boundary warnings of study `name` (NotFound)."""
        return self.status_of(self.record(name))

    def record(self, name: str) -> StudyRecord:
        """The service's record of study `name`, or for an afpe study of the storage it has no record of (made by
        `afpe run`) a stand-in that is never stored (`_unrecorded`); NotFound when neither exists."""
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
            return self._unrecorded(name, attrs)

    def _unrecorded(self, name: str, attrs: dict[str, Any]) -> StudyRecord:
        """A stand-in record (not stored) of an afpe study the service has no record of: source `cli`, attempt 0
        (unmanaged), its state and error by `study_list.driver_state` (running while a driver holds its lease),
        created when its first trial started."""
        entry = study_entry(name, attrs, self._trials(name), self._holder(name))
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

    def _origin(self, record: StudyRecord) -> str:
        """The study's origin (`afpe.search.study_list`: its `origin` attr, else what the record says)."""
        study_id = retry(lambda: self.storage.get_study_id_from_name(record.name), RETRY_S)
        attrs = retry(lambda: self.storage.get_study_user_attrs(study_id), RETRY_S)
        recorded = {StudySource.REST: Origin.SERVICE, StudySource.IMPORT: Origin.IMPORT}.get(record.source)
        return origin_of(attrs, recorded)

    def _holder(self, name: str) -> str | None:
        """Who runs study `name` now (the live holder of its lease, e.g. an `afpe run`), or None."""
        holder = retry(lambda: self.lifecycle.leases.holder(name), RETRY_S)
        return None if holder is None else str(holder)

    def status_of(self, record: StudyRecord) -> StudyStatus:
        trials = self._trials(record.name)
        version = study_version(record.spec, trials)
        summary = self._summary(record, trials, version)
        answer = summary.to_json()
        best = None
        if answer["best"] is not None:
            best = BestTrial(**answer["best"], ratio_axes=answer["ratio"])
        target = summary.n_trials
        return StudyStatus(
            name=record.name,
            state=record.state,
            source=record.source,
            origin=self._origin(record),
            managed=record.managed,
            holder=self._holder(record.name),
            job_id=record.job_id,
            attempt=record.attempt,
            trials=summary.states,
            finished=summary.finished,
            n_trials=target,
            progress=min(summary.finished / target, 1.0) if target else 1.0,
            eta_seconds=_eta(record, summary.finished, target),
            metric=summary.metric,
            direction=summary.direction,
            best=best,
            ratio_range=answer["ratio_range"],
            tied=answer["tied"],
            repeats=answer["repeats"],
            optimum=answer["optimum"],
            warnings=summary.warnings,
            positions=answer["positions"],
            error=sanitize_error(record.error, self.secrets),
            latest_error=sanitize_error(_latest_error(trials), self.secrets),
            note=record.note,
            spec=self._shown_spec(record.spec),
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            stale=self.lifecycle.is_stale(record.name),
            version=version,
        )

    def trial_table(self, name: str, query: TrialQuery) -> tuple[int, list[TrialRowView], SearchSpace]:
        """(trials matching `query.states`, the rows of `query`'s page, the study's space) of study `name`, read
        without learning curves (`storage.TrialRowCache`; each ordering kept while the rows and spec stay the
        same). InvalidInput naming `sort` for an unknown column."""
        record = self.record(name)
        space = SearchSpace.from_spec(record.spec)
        columns = (*ROW_COLUMNS, *(axis.param for axis in space.axes))
        if query.sort not in columns:
            raise InvalidInput(f"sort: {query.sort!r} is not a column (valid: {', '.join(columns)})")
        version, rows = self._read(lambda: self.rows.table(name), name)

        def order() -> list[TrialRow]:
            kept = [row for row in rows if row.state.name in query.states] if query.states else rows
            key = _sort_key(query.sort, space)  # on the plain rows: a view is built for the page's rows only
            present = sorted((r for r in kept if key(r) is not None), key=key, reverse=query.order == "desc")
            return present + [r for r in kept if key(r) is None]

        ordering = (name, query.sort, query.order, query.states)
        ordered = self._orderings.get(ordering, (version, json.dumps(record.spec, sort_keys=True)), order)
        page = [_row_view(row, space) for row in ordered[query.offset : query.offset + query.limit]]
        return len(ordered), page, space

    def trials(self, name: str, query: TrialQuery) -> TrialsPage:
        """The page of study `name`'s trials that `query` picks, each whole (its learning curve read for the
        page's trials only; an ended trial's item is kept, as it never changes)."""
        total, rows, _ = self.trial_table(name, query)
        study_id = self._read(lambda: self.storage.get_study_id_from_name(name), name)
        items = {r.number: self._items.find((name, r.number), study_id) for r in rows}
        missing = [number for number, item in items.items() if item is None]
        whole = self._read(lambda: trials_by_number(self.storage, name, missing), name) if missing else []
        by_number = {t.number: t for t in whole}
        for r in rows:
            if r.number in by_number:
                items[r.number] = self._trial_item(by_number[r.number], r)
                if by_number[r.number].state in TrialRowCache.FINISHED:
                    self._items.keep((name, r.number), study_id, items[r.number])
        return TrialsPage(
            total=total,
            offset=query.offset,
            limit=query.limit,
            sort=query.sort,
            order=query.order,
            items=[item for item in items.values() if item is not None],
        )

    def trial(self, name: str, number: int) -> tuple[TrialDetail, FrozenTrial, SearchSpace]:
        """Trial `number` of study `name` with its sanitised error and log file name, the trial as read, and the
        study's space; NotFound when there is none."""
        record = self.record(name)
        space = SearchSpace.from_spec(record.spec)
        found = self._read(lambda: trials_by_number(self.storage, name, [number]), name)
        if not found:
            raise NotFound(f"number: study {name!r} has no trial {number}")
        trial = found[0]
        row = _row_view(TrialRow(trial.number, trial.state, trial.value, trial.params, trial.user_attrs), space)
        item = self._trial_item(trial, row)
        detail = TrialDetail(
            **item.model_dump(),
            error=item.user_attrs.get("error"),
            log=item.user_attrs.get("log"),
            checkpoint=f"/api/studies/{name}/trials/{number}/checkpoint" if trial_checkpoint(trial) else None,
        )
        return detail, trial, space

    def checkpoint(self, name: str, number: int | None = None) -> CheckpointFile:
        """The checkpoint kept for trial `number` of study `name`, or with None the one of the search trial of the
        study's answer (`checkpoints.best_checkpoint`). NotFound saying why when there is none."""
        record = self.record(name)
        if number is None:
            best = best_checkpoint(self._trials(name), SearchSpace.from_spec(record.spec).direction)
            if best is None:
                raise NotFound(f"name: study {name!r} has no COMPLETE trial yet, so no best checkpoint")
            trial, meta = best
        else:
            found = self._read(lambda: trials_by_number(self.storage, name, [number]), name)
            if not found:
                raise NotFound(f"number: study {name!r} has no trial {number}")
            trial, meta = found[0], trial_checkpoint(found[0])
        if meta is None:
            raise NotFound(
                f"number: trial {trial.number} of study {name!r} has no kept checkpoint (a study keeps those of its "
                "best configurations and their repeats; imported trials have none)"
            )
        path = self.artifacts / name / PurePath(meta.artifact_id).name
        if not path.is_file():
            raise NotFound(
                f"number: the checkpoint of trial {trial.number} of study {name!r} is not in the service's artifact "
                "folder (AFPE_ARTIFACT_DIR: the driver, its workers and the service must share it)"
            )
        return CheckpointFile(path, meta.filename, trial.number)

    def _shown_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A stored spec as reads show it (reads are not authenticated): `data_root` relative to the data
        directory ('.' for itself), else only its last component (the path says where the service runs)."""
        root = spec.get("data_root")
        if not isinstance(root, str):
            return spec
        path = PurePath(root)
        inside = self.data_dir is not None and path.is_relative_to(self.data_dir)
        return {**spec, "data_root": str(path.relative_to(self.data_dir)) if inside else path.name}

    def _shown_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A trial's user attrs as every read shows them (reads are not authenticated): `error` passes
        `sanitize_error`, `log` is the log file's name (the path says where the driver ran)."""
        shown = dict(attrs)
        if isinstance(shown.get("error"), str):
            shown["error"] = sanitize_error(shown["error"], self.secrets)
        if isinstance(shown.get("log"), str):
            shown["log"] = PurePath(shown["log"]).name
        return shown

    def _trial_item(self, t: FrozenTrial, row: TrialRowView) -> TrialItem:
        """A whole trial as reads show it (its user attrs: `_shown_attrs`)."""
        return TrialItem(
            **row.model_dump(),
            user_attrs=self._shown_attrs(t.user_attrs),
            intermediate_values=t.intermediate_values,
            datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete,
        )

    def trials_csv(self, name: str) -> str:
        """The study's trials as the one CSV export of `afpe.search.export` (as `afpe export`), their user attrs
        as every read shows them (`_shown_attrs`)."""
        record = self.record(name)
        shown = [copy.copy(trial) for trial in self._trials(name)]  # the cached trials stay as stored
        for trial in shown:
            trial.user_attrs = self._shown_attrs(trial.user_attrs)
        return trials_text(shown, "csv", SearchSpace.from_spec(record.spec))

    def figure(self, name: str, kind: str, unless: str = "", states: Sequence[str] = ()) -> tuple[str, str | None]:
        """(the ETag of plot `kind` of study `name`: a hash of its Plotly JSON, that JSON; None when the ETag is
        in `unless`, an If-None-Match header). `states`: only trials in these states (all if empty). A figure is
        built once per `study_version` and state filter, so a new version whose figure of this kind is the same
        keeps its ETag. NotFound for an unknown study; Conflict when the study (or the filter) leaves no data for
        the plot."""
        record = self.record(name)
        trials = self._trials(name)
        chosen = tuple(sorted(set(states)))

        def build() -> tuple[str, str]:
            shown = [t for t in trials if t.state.name in chosen] if chosen else trials
            try:
                text = build_figure(kind, shown, SearchSpace.from_spec(record.spec)).to_json()
            except ValueError as error:
                raise Conflict(f"plot {kind}: {error}") from None
            return f'"{hashlib.blake2b(text.encode(), digest_size=12).hexdigest()}"', text

        etag, text = self._latest.get(("figure", name, kind, chosen), study_version(record.spec, trials), build)
        return etag, None if etag in unless else text

    def compare(self, names: Sequence[str]) -> CompareResult:
        """Best values of the named studies (each once) with bootstrap CIs, and how their specs differ besides
        encoding."""
        records = [self.record(name) for name in dict.fromkeys(names)]
        rows = []
        for record in records:
            space = SearchSpace.from_spec(record.spec)
            estimate = compare.best_estimate(self._trials(record.name), space.direction)
            rows.append(
                CompareRow(
                    name=record.name,
                    encoding=space.encoding,
                    state=record.state,
                    metric=space.metric,
                    direction=space.direction,
                    best=None if estimate is None else BestEstimateView(**estimate.__dict__),
                )
            )
        differences = compare.spec_differences({r.name: r.spec for r in records})
        return CompareResult(
            studies=rows, comparable=not differences, differences=differences, confidence=compare.CONFIDENCE
        )

    def trend(self, names: Sequence[str]) -> TrendResult:
        """The answers of the named studies against the one task option that varies between them (Conflict when
        they do not differ in exactly one option)."""
        records = [self.record(name) for name in names]
        try:
            result = trend.trend_data([(r.name, r.spec, self._trials(r.name)) for r in records])
        except ValueError as error:
            raise Conflict(str(error)) from None
        return TrendResult.model_validate(asdict(result))

    def _summary(self, record: StudyRecord, trials: Sequence[FrozenTrial], version: str) -> StudySummary:
        """`summarize_trials` of the study, computed once per `version` (its `study_version`)."""
        space = SearchSpace.from_spec(record.spec)
        return self._latest.get(("summary", record.name), version, lambda: summarize_trials(record.name, trials, space))

    def _trials(self, name: str) -> list[FrozenTrial]:
        """The study's trials, read again through a database restart of up to `records.RETRY_S`."""
        try:
            study_id = retry(lambda: self.storage.get_study_id_from_name(name), RETRY_S)
        except KeyError:
            raise NotFound(f"name: no Optuna study {name!r} in the storage") from None
        return retry(lambda: self.storage.get_all_trials(study_id, deepcopy=False), RETRY_S)

    def _read(self, read: Callable[[], _T], name: str) -> _T:
        """`read()` through a database restart of up to `records.RETRY_S`; NotFound when study `name` is not in
        the storage."""
        try:
            return retry(read, RETRY_S)
        except KeyError:
            raise NotFound(f"name: no Optuna study {name!r} in the storage") from None


#: the states of a trial that has not ended (see `TrialRowCache.FINISHED`); a tuple: identity tests, no hashing
OPEN_STATES = tuple(state for state in TrialState if state not in TrialRowCache.FINISHED)


def study_version(spec: dict[str, Any], trials: Sequence[FrozenTrial]) -> str:
    """A tag that changes whenever what a study shows can change: its spec, its number of trials, and each
    unfinished trial's number, state, value and epochs reported. A trial only ever moves from open (OPEN_STATES)
    to ended, and an ended one never changes again, so an unchanged count and unchanged open trials mean
    unchanged trials: O(trials) identity tests, a hash of the open trials only. `StudyStatus.version`, and
    the key under which figures and summaries are kept."""
    digest = hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=12)
    digest.update(f"{len(trials)};".encode())
    for t in trials:
        if t.state in OPEN_STATES:
            digest.update(f"{t.number},{t.state.value},{t.value},{len(t.intermediate_values)};".encode())
    return digest.hexdigest()


class LatestByVersion:
    """The latest value computed per key, with the version it was computed at; at most `size` keys (the least
    recently used go first). Safe to share between threads (two threads may compute the same value at once)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], _T]) -> _T:
        """The value kept for `key` if it was computed at `version`, else `compute()` (kept; exceptions pass)."""
        kept = self.find(key, version)
        if kept is not None:
            return kept
        value = compute()
        self.keep(key, version, value)
        return value

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


def _latest_error(trials: Sequence[FrozenTrial]) -> str | None:
    """The stored error of the study's latest FAIL trial (the highest number), or None."""
    failed = [t for t in trials if t.state == TrialState.FAIL and isinstance(t.user_attrs.get("error"), str)]
    return max(failed, key=lambda t: t.number).user_attrs["error"] if failed else None


def _eta(record: StudyRecord, finished: int, target: int) -> float | None:
    """Remaining trials × (wall time so far / finished trials), while running."""
    if record.state != StudyState.RUNNING or not finished or record.started_at is None or finished >= target:
        return None
    elapsed = (utcnow() - _aware(record.started_at)).total_seconds()
    return elapsed / finished * (target - finished)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _sort_key(column: str, space: SearchSpace) -> Callable[[TrialRow], Any]:
    """The value of `column` (a ROW_COLUMNS name or a scale s_<axis>) in a row; None where it has none."""
    if column.startswith(PARAM_PREFIX):
        return lambda row: row.params.get(column)
    if column in ROW_ATTRS:
        return lambda row: row.user_attrs.get(column)
    return {
        "number": lambda row: row.number,
        "state": lambda row: row.state.name,
        "value": lambda row: row.value,
        "ratio": lambda row: scale_ratio(row.params, space.ratio),
    }[column]


def _row_view(row: TrialRow, space: SearchSpace) -> TrialRowView:
    attrs = row.user_attrs
    return TrialRowView(
        number=row.number,
        state=row.state.name,
        value=row.value,
        params=row.params,
        ratio=scale_ratio(row.params, space.ratio),
        seed=attrs.get("seed"),
        repeat_of=attrs.get(REPEAT_OF),
        seconds=attrs.get("seconds"),
        epochs=attrs.get("epochs"),
    )
