"""`StatusQueries`: the study list and a study's status (state, counts, progress, ETA, the answer, warnings), from
the service table and the Optuna storage by the rules of `afpe.search.analysis`: what `afpe status` prints is
what `GET /api/studies/{name}` serves. The summary (with the latest error) is computed once per `study_version`,
found without reading the trials (`StudyReads.version`) and kept across restarts (`derived_store`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select

from afpe.search.outage import retry
from afpe.search.spec import SearchSpace
from afpe.search.study_list import Origin, afpe_studies, origin_of
from afpe.search.summary import summarize_trials
from afpe.service.manager.derived_store import DerivedStore, KeptByVersion
from afpe.service.manager.error_text import sanitize_error
from afpe.service.manager.records import RETRY_S, StudyRecord, StudySource, StudyState, utcnow
from afpe.service.manager.study_reads import StudyReads
from afpe.service.manager.views import BestTrial, StudyListItem, StudyStatus


class StatusQueries:
    def __init__(
        self, reads: StudyReads, store: DerivedStore, is_stale: Callable[[str], bool], data_dir: Path | None = None
    ):
        """`store`: where summaries are kept per study version; `is_stale(name)`: whether the last refresh of the
        study's job could not reach the cluster (`JobFollower.is_stale`); a spec's `data_root` is shown relative
        to `data_dir` (the service's data directory)."""
        self.reads = reads
        self.is_stale = is_stale
        self.data_dir = data_dir
        self._summaries = KeptByVersion(store, "summary")

    def list(self) -> list[StudyListItem]:
        """Every study of the database, oldest first: the service's records and the afpe studies of the Optuna
        storage it has no record of (made by `afpe run`)."""

        def read() -> list[StudyRecord]:
            with self.reads.sessions() as session:
                return list(session.scalars(select(StudyRecord).order_by(StudyRecord.created_at)).all())

        records = retry(read, RETRY_S)
        recorded = {record.name for record in records}
        others = [
            self.reads.unrecorded(name, attrs)
            for name, attrs in retry(lambda: afpe_studies(self.reads.storage), RETRY_S)
            if name not in recorded
        ]
        items = []
        for record in sorted([*records, *others], key=lambda r: _aware(r.created_at)):
            summary = self._summary(record, self.reads.version(record.name, record.spec))
            items.append(
                StudyListItem(
                    **self._identity(record),
                    task=record.spec.get("task"),
                    encoding=record.spec.get("encoding"),
                    finished=summary["finished"],
                    n_trials=summary["n_trials"],
                    best_value=summary["best_value"],
                    metric=summary["metric"],
                    created_at=record.created_at,
                    stale=self.is_stale(record.name),
                )
            )
        return items

    def _identity(self, record: StudyRecord) -> dict[str, Any]:
        """The fields a list item and a status share: who the study is, where it came from, who runs it."""
        return {
            "name": record.name,
            "state": record.state,
            "source": record.source,
            "origin": self._origin(record),
            "managed": record.managed,
            "holder": self.reads.holder(record.name),
        }

    def status(self, name: str) -> StudyStatus:
        """State, counts, progress, ETA, best trial and boundary warnings of study `name` (NotFound)."""
        return self.status_of(self.reads.record(name))

    def status_of(self, record: StudyRecord) -> StudyStatus:
        version = self.reads.version(record.name, record.spec)
        answer = self._summary(record, version)
        best = None
        if answer["best"] is not None:
            best = BestTrial(**answer["best"], ratio_axes=answer["ratio"])
        target, finished = answer["n_trials"], answer["finished"]
        secrets = self.reads.secrets
        return StudyStatus(
            **self._identity(record),
            job_id=record.job_id,
            attempt=record.attempt,
            trials=answer["states"],
            finished=finished,
            n_trials=target,
            progress=min(finished / target, 1.0) if target else 1.0,
            eta_seconds=_eta(record, finished, target),
            metric=answer["metric"],
            direction=answer["direction"],
            best=best,
            ratio_range=answer["ratio_range"],
            tied=answer["tied"],
            repeats=answer["repeats"],
            optimum=answer["optimum"],
            optimum_note=answer["optimum_note"],
            fixed=answer["fixed"],
            use=answer["use"],
            warnings=answer["warnings"],
            positions=answer["positions"],
            priors=answer.get("priors", []),  # summaries kept from before priors have none
            prior_gain=answer.get("prior_gain"),
            priors_note=answer.get("priors_note"),
            error=sanitize_error(record.error, secrets),
            latest_error=sanitize_error(answer["latest_error"], secrets),
            note=record.note,
            spec=self._shown_spec(record.spec),
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            stale=self.is_stale(record.name),
            version=version,
        )

    def _origin(self, record: StudyRecord) -> str:
        """The study's origin (`afpe.search.study_list`: its `origin` attr, else what the record says)."""
        storage = self.reads.storage
        study_id = retry(lambda: storage.get_study_id_from_name(record.name), RETRY_S)
        attrs = retry(lambda: storage.get_study_user_attrs(study_id), RETRY_S)
        recorded = {StudySource.REST: Origin.SERVICE, StudySource.IMPORT: Origin.IMPORT}.get(record.source)
        return origin_of(attrs, recorded)

    def _shown_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A stored spec as reads show it (reads are not authenticated): `data_root` relative to the data
        directory ('.' for itself), else only its last component (the path says where the service runs)."""
        root = spec.get("data_root")
        if not isinstance(root, str):
            return spec
        path = PurePath(root)
        inside = self.data_dir is not None and path.is_relative_to(self.data_dir)
        return {**spec, "data_root": str(path.relative_to(self.data_dir)) if inside else path.name}

    def _summary(self, record: StudyRecord, version: str) -> dict[str, Any]:
        """`summarize_trials` of the study as JSON data (`StudySummary.to_json`) with its `best_value` and the
        `latest_error` of its trials, computed once per `version` (its `study_version`)."""

        def compute() -> dict[str, Any]:
            trials = self.reads.trials(record.name)
            summary = summarize_trials(record.name, trials, SearchSpace.from_spec(record.spec))
            return {**summary.to_json(), "best_value": summary.best_value, "latest_error": _latest_error(trials)}

        return self._summaries.get(record.name, version, compute)


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
