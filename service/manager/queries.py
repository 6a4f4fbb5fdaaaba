"""Read models of studies (`views.py`) from the service table and the Optuna storage, by the rules of
`afpe.search.analysis`: what `afpe status` prints is what `GET /api/studies/{name}` serves."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.search.analysis import REPEAT_OF, scale_ratio
from afpe.search.checkpoints import best_checkpoint, trial_checkpoint
from afpe.search.export import trials_text
from afpe.search.outage import retry
from afpe.search.spec import PARAM_PREFIX, SearchSpace
from afpe.search.storage import TrialRow, TrialRowCache, trials_by_number
from afpe.search.summary import StudySummary, summarize_trials
from afpe.service.errors import Conflict, InvalidInput, NotFound
from afpe.service.manager.error_text import sanitize_error
from afpe.service.manager.lifecycle import StudyLifecycle
from afpe.service.manager.records import RETRY_S, StudyRecord, StudyState, get_record, utcnow
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
from afpe.service.plots.figures import build_figure

_T = TypeVar("_T")

#: the user attrs a row of the trials table shows
ROW_ATTRS = ("seed", REPEAT_OF, "seconds", "epochs")
#: the columns a trials table sorts by, besides each scale s_<axis>
ROW_COLUMNS = ("number", "state", "value", "ratio", *ROW_ATTRS)


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
    ):
        """`artifacts`: the root of the studies' checkpoint folders (`afpe.search.checkpoints.artifact_root`);
        `secrets` (tokens, the database password) are hidden from every `error` shown."""
        self.artifacts = artifacts
        self.sessions = sessions
        self.storage = storage
        self.lifecycle = lifecycle
        self.secrets = tuple(secrets)
        self.rows = TrialRowCache(storage, ROW_ATTRS)

    def list(self) -> list[StudyListItem]:
        """Every study, oldest first, its job state refreshed."""

        def read() -> list[StudyRecord]:
            with self.sessions() as session:
                return list(session.scalars(select(StudyRecord).order_by(StudyRecord.created_at)).all())

        records = retry(read, RETRY_S)
        items = []
        for record in records:
            record = self.lifecycle.refresh(record)
            summary = self._summary(record)
            items.append(
                StudyListItem(
                    name=record.name,
                    state=record.state,
                    source=record.source,
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
        return self.status_of(self.lifecycle.refresh(get_record(self.sessions, name)))

    def status_of(self, record: StudyRecord) -> StudyStatus:
        summary = self._summary(record)
        answer = summary.to_json()
        best = None
        if answer["best"] is not None:
            best = BestTrial(**answer["best"], ratio_axes=answer["ratio"])
        target = summary.n_trials
        return StudyStatus(
            name=record.name,
            state=record.state,
            source=record.source,
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
            error=sanitize_error(record.error, self.secrets),
            note=record.note,
            spec=record.spec,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            stale=self.lifecycle.is_stale(record.name),
        )

    def trial_table(self, name: str, query: TrialQuery) -> tuple[int, list[TrialRowView], SearchSpace]:
        """(trials matching `query.states`, the rows of `query`'s page, the study's space) of study `name`, read
        without learning curves (`storage.trial_rows`). InvalidInput naming `sort` for an unknown column."""
        record = self.lifecycle.refresh(get_record(self.sessions, name))
        space = SearchSpace.from_spec(record.spec)
        columns = (*ROW_COLUMNS, *(axis.param for axis in space.axes))
        if query.sort not in columns:
            raise InvalidInput(f"sort: {query.sort!r} is not a column (valid: {', '.join(columns)})")
        rows = self._read(lambda: self.rows.rows(name), name)
        if query.states:
            rows = [row for row in rows if row.state.name in query.states]
        key = _sort_key(query.sort, space)  # on the plain rows: a view is built for the page's rows only
        present = sorted((r for r in rows if key(r) is not None), key=key, reverse=query.order == "desc")
        ordered = present + [r for r in rows if key(r) is None]
        page = [_row_view(row, space) for row in ordered[query.offset : query.offset + query.limit]]
        return len(ordered), page, space

    def trials(self, name: str, query: TrialQuery) -> TrialsPage:
        """The page of study `name`'s trials that `query` picks, each whole (its learning curve read for the
        page's trials only)."""
        total, rows, _ = self.trial_table(name, query)
        whole = self._read(lambda: trials_by_number(self.storage, name, [r.number for r in rows]), name)
        by_number = {t.number: t for t in whole}
        items = [self._trial_item(by_number[r.number], r) for r in rows if r.number in by_number]
        return TrialsPage(
            total=total, offset=query.offset, limit=query.limit, sort=query.sort, order=query.order, items=items
        )

    def trial(self, name: str, number: int) -> tuple[TrialDetail, FrozenTrial, SearchSpace]:
        """Trial `number` of study `name` with its sanitised error and log file name, the trial as read, and the
        study's space; NotFound when there is none."""
        record = get_record(self.sessions, name)
        space = SearchSpace.from_spec(record.spec)
        found = self._read(lambda: trials_by_number(self.storage, name, [number]), name)
        if not found:
            raise NotFound(f"number: study {name!r} has no trial {number}")
        trial = found[0]
        row = _row_view(TrialRow(trial.number, trial.state, trial.value, trial.params, trial.user_attrs), space)
        item = self._trial_item(trial, row)
        log = trial.user_attrs.get("log")
        detail = TrialDetail(
            **item.model_dump(),
            error=item.user_attrs.get("error"),
            log=PurePath(log).name if isinstance(log, str) else None,
            checkpoint=f"/api/studies/{name}/trials/{number}/checkpoint" if trial_checkpoint(trial) else None,
        )
        return detail, trial, space

    def checkpoint(self, name: str, number: int | None = None) -> CheckpointFile:
        """The checkpoint kept for trial `number` of study `name`, or with None the one of the search trial of the
        study's answer (`checkpoints.best_checkpoint`). NotFound saying why when there is none."""
        record = get_record(self.sessions, name)
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

    def _trial_item(self, t: FrozenTrial, row: TrialRowView) -> TrialItem:
        """A whole trial; its `error` attr passes `sanitize_error` (reads are not authenticated)."""
        attrs = dict(t.user_attrs)
        if isinstance(attrs.get("error"), str):
            attrs["error"] = sanitize_error(attrs["error"], self.secrets)
        return TrialItem(
            **row.model_dump(),
            user_attrs=attrs,
            intermediate_values=t.intermediate_values,
            datetime_start=t.datetime_start,
            datetime_complete=t.datetime_complete,
        )

    def trials_csv(self, name: str) -> str:
        """The study's trials as the one CSV export of `afpe.search.export` (as `afpe export`)."""
        record = get_record(self.sessions, name)
        return trials_text(self._trials(name), "csv", SearchSpace.from_spec(record.spec))

    def figure_json(self, name: str, kind: str) -> str:
        """Plotly JSON of plot `kind`; Conflict when the study has no data for it yet."""
        record = self.lifecycle.refresh(get_record(self.sessions, name))
        try:
            figure = build_figure(kind, self._trials(name), SearchSpace.from_spec(record.spec))
        except ValueError as error:
            raise Conflict(f"plot {kind}: {error}") from None
        return figure.to_json()

    def figure_version(self, name: str) -> str:
        """A tag that changes whenever a plot of study `name` can change (its spec; a trial's number, state,
        value or epochs reported), cheaper than a figure: the plots' ETag. NotFound for an unknown study."""
        record = self.lifecycle.refresh(get_record(self.sessions, name))
        digest = hashlib.blake2b(json.dumps(record.spec, sort_keys=True).encode(), digest_size=12)
        for t in self._trials(name):
            digest.update(f"{t.number},{t.state.value},{t.value},{len(t.intermediate_values)};".encode())
        return digest.hexdigest()

    def compare(self, names: Sequence[str]) -> CompareResult:
        """Best values of the named studies (each once) with bootstrap CIs, and how their specs differ besides
        encoding."""
        records = [get_record(self.sessions, name) for name in dict.fromkeys(names)]
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
        records = [get_record(self.sessions, name) for name in names]
        try:
            result = trend.trend_data([(r.name, r.spec, self._trials(r.name)) for r in records])
        except ValueError as error:
            raise Conflict(str(error)) from None
        return TrendResult.model_validate(asdict(result))

    def _summary(self, record: StudyRecord) -> StudySummary:
        return summarize_trials(record.name, self._trials(record.name), SearchSpace.from_spec(record.spec))

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
