"""Read models of studies (`views.py`) from the service table and the Optuna storage, by the rules of
`afpe.search.analysis`: what `afpe status` prints is what `GET /api/studies/{name}` serves."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.search.export import trials_text
from afpe.search.outage import retry
from afpe.search.spec import SearchSpace
from afpe.search.summary import StudySummary, summarize_trials
from afpe.service.errors import Conflict, NotFound
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
    TrialItem,
    TrialsPage,
)
from afpe.service.plots import compare, trend
from afpe.service.plots.figures import build_figure


class StudyQueries:
    def __init__(
        self,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        lifecycle: StudyLifecycle,
        secrets: Sequence[str] = (),
    ):
        """`secrets` (tokens, the database password) are hidden from every `error` shown."""
        self.sessions = sessions
        self.storage = storage
        self.lifecycle = lifecycle
        self.secrets = tuple(secrets)

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

    def trials(self, name: str, offset: int, limit: int) -> TrialsPage:
        """Trials `offset` to `offset + limit` of study `name`, in trial order."""
        record = self.lifecycle.refresh(get_record(self.sessions, name))
        trials = self._trials(record.name)
        items = [_trial_item(t) for t in trials[offset : offset + limit]]
        return TrialsPage(total=len(trials), offset=offset, limit=limit, items=items)

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


def _eta(record: StudyRecord, finished: int, target: int) -> float | None:
    """Remaining trials × (wall time so far / finished trials), while running."""
    if record.state != StudyState.RUNNING or not finished or record.started_at is None or finished >= target:
        return None
    elapsed = (utcnow() - _aware(record.started_at)).total_seconds()
    return elapsed / finished * (target - finished)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _trial_item(t: FrozenTrial) -> TrialItem:
    return TrialItem(
        number=t.number,
        state=t.state.name,
        value=t.value,
        params=t.params,
        user_attrs=t.user_attrs,
        intermediate_values=t.intermediate_values,
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete,
    )
