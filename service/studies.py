"""What the service does with studies, apart from HTTP: create, watch, cancel, resume, import, export, plot.

State lives in two places of one database: the service table (`records.StudyRecord`: spec, job, state) and
the Optuna study of the same name (trials). Job states are pulled from Ray when a study is read (at most
once per REFRESH_S) and at start-up (`reconcile`), so a restarted service picks up where it left off: a job
the cluster still knows is followed; a job the cluster lost (a private head that stopped with the old
service) is resubmitted as the next attempt with `--resume`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from afpe.encodings import list_encodings
from afpe.search.spec import SLUG_PATTERN, SpecError, StudySpec, apply_overrides, load_spec, validate_spec
from afpe.search.storage import StudyConflictError, claim_study
from afpe.service import compare, plot_data
from afpe.service.errors import Conflict, InvalidInput, NotFound
from afpe.service.jobs import JobRunner
from afpe.service.plot_figures import build_figure
from afpe.service.records import ACTIVE_STATES, StudyRecord, utcnow
from afpe.service.settings import ServiceSettings

REFRESH_S = 1.0
MAX_ATTEMPTS = 5
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
MAX_IMPORT_ROWS = 100_000
SLUG = re.compile(SLUG_PATTERN)


class StudyService:
    def __init__(
        self,
        settings: ServiceSettings,
        sessions: sessionmaker,
        storage: optuna.storages.BaseStorage,
        runner: Callable[[], JobRunner],
    ):
        self.settings = settings
        self.sessions = sessions
        self.storage = storage
        self._runner = runner
        self._lock = threading.RLock()
        self._checked: dict[str, float] = {}

    # ---- specs -------------------------------------------------------------------------------------------
    def shipped_specs(self) -> list[dict[str, Any]]:
        items = []
        for path in sorted(self.settings.specs_dir.glob("*.yaml")):
            try:
                spec = load_spec(path)
            except (SpecError, FileNotFoundError) as error:
                items.append({"name": path.stem, "summary": "", "error": str(error)})
                continue
            summary = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
            items.append(
                {"name": path.stem, "summary": summary, "study": spec.name, "task": spec.task,
                 "encoding": spec.encoding, "n_trials": spec.n_trials}
            )  # fmt: skip
        return items

    def shipped_spec(self, name: str, overrides: Sequence[str] = ()) -> StudySpec:
        """The shipped spec `name` (a slug: never a path), with `key=value` overrides applied."""
        path = self.settings.specs_dir / f"{name}.yaml"
        if not SLUG.match(name) or not path.is_file():
            known = ", ".join(item["name"] for item in self.shipped_specs()) or "none"
            raise NotFound(f"spec: no shipped spec {name!r} (shipped: {known})")
        try:
            return self.validate(load_spec(path, list(overrides)).model_dump(mode="json"))
        except SpecError as error:
            raise InvalidInput(str(error)) from None

    def validate(self, body: Any) -> StudySpec:
        """A StudySpec within the service's bounds, its data_root resolved under the data directory."""
        try:
            spec = validate_spec(body, source="spec")
        except SpecError as error:
            raise InvalidInput(str(error)) from None
        s = self.settings
        bounds = [
            ("n_trials", spec.n_trials, s.max_trials),
            ("trainer.epochs", spec.trainer.epochs, s.max_epochs),
            ("resources.cpus", spec.resources.cpus, s.max_trial_cpus),
            ("resources.gpu", spec.resources.gpu, s.max_trial_gpus),
        ]
        for field, value, limit in bounds:
            if value > limit:
                raise InvalidInput(f"spec: {field}: {value} exceeds this service's limit of {limit}")
        return spec.model_copy(update={"data_root": str(self.resolve_data_root(spec.data_root))})

    def resolve_data_root(self, data_root: str | None) -> Path:
        """data_root (relative: to the data directory) with links resolved; it must lie inside the data dir."""
        base = self.settings.data_dir
        if not data_root:
            return base
        path = (base / Path(data_root).expanduser()).resolve()
        if not path.is_relative_to(base):
            raise InvalidInput(f"spec: data_root: {data_root!r} lies outside the data directory {base}")
        return path

    # ---- create / list / status ----------------------------------------------------------------------------
    def create(self, body: Any) -> tuple[dict[str, Any], bool]:
        """(status, created): a new study is queued and submitted; the same spec again returns the study."""
        spec = self.validate(body)
        data = spec.model_dump(mode="json")
        with self._lock, self.sessions.begin() as session:
            record = session.get(StudyRecord, spec.name)
            if record is not None:
                if record.spec != data:
                    raise Conflict(f"name: study {spec.name!r} already exists with a different spec")
                return self._status(record), False
            try:
                claim_study(self.storage, spec, resume=False)
            except StudyConflictError as error:
                raise Conflict(str(error)) from None
            record = StudyRecord(name=spec.name, spec=data, source="rest", state="queued", attempt=1)
            session.add(record)
        self._submit(record)
        return self.status(spec.name), True

    def list(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            records = session.scalars(select(StudyRecord).order_by(StudyRecord.created_at)).all()
        items = []
        for record in records:
            record = self._refresh(record)
            trials = self._trials(record.name)
            view = plot_data.StudyView.from_spec(record.spec)
            best = plot_data.best_trial(trials, view.direction)
            items.append(
                {
                    "name": record.name,
                    "state": record.state,
                    "source": record.source,
                    "task": record.spec.get("task"),
                    "encoding": record.spec.get("encoding"),
                    "finished": sum(t.state in FINISHED_STATES for t in trials),
                    "n_trials": record.spec.get("n_trials") or len(trials),
                    "best_value": best.value if best else None,
                    "metric": view.metric,
                    "created_at": record.created_at,
                }
            )
        return items

    def status(self, name: str) -> dict[str, Any]:
        return self._status(self._refresh(self._record(name)))

    def _status(self, record: StudyRecord) -> dict[str, Any]:
        trials = self._trials(record.name)
        view = plot_data.StudyView.from_spec(record.spec)
        counts = Counter(t.state.name for t in trials)
        finished = sum(counts[s.name] for s in FINISHED_STATES)
        target = record.spec.get("n_trials") or len(trials)
        best = plot_data.best_trial(trials, view.direction)
        study_warnings = self._study_user_attrs(record.name).get("warnings") or []
        return {
            "name": record.name,
            "state": record.state,
            "source": record.source,
            "job_id": record.job_id,
            "attempt": record.attempt,
            "trials": {s.name: counts.get(s.name, 0) for s in TrialState},
            "finished": finished,
            "n_trials": target,
            "progress": min(finished / target, 1.0) if target else 1.0,
            "eta_seconds": self._eta(record, finished, target),
            "metric": view.metric,
            "direction": view.direction,
            "best": self._best(best, view),
            "warnings": [*study_warnings, *plot_data.edge_warnings(trials, view)],
            "error": record.error,
            "spec": record.spec,
            "created_at": record.created_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
        }

    @staticmethod
    def _best(trial: FrozenTrial | None, view: plot_data.StudyView) -> dict[str, Any] | None:
        if trial is None:
            return None
        x = plot_data.log2_ratio(trial.params, view.ratio) if view.ratio else None
        return {
            "number": trial.number,
            "value": trial.value,
            "params": trial.params,
            "ratio": 2**x if x is not None else None,
            "ratio_axes": list(view.ratio) if view.ratio else None,
        }

    @staticmethod
    def _eta(record: StudyRecord, finished: int, target: int) -> float | None:
        """Remaining trials × (wall time so far / finished trials), while running."""
        if record.state != "running" or not finished or record.started_at is None or finished >= target:
            return None
        elapsed = (utcnow() - _aware(record.started_at)).total_seconds()
        return elapsed / finished * (target - finished)

    # ---- jobs --------------------------------------------------------------------------------------------
    def _submit(self, record: StudyRecord) -> None:
        """Submit the record's current attempt (idempotent per attempt id) and store its job id. A cluster
        that refuses is noted in `error`; the next refresh submits again."""
        try:
            job_id, error = self._runner().submit(record.name, record.attempt, record.spec, record.resume), None
        except Exception as failure:  # noqa: BLE001 - any cluster problem: keep the study queued, retry later
            job_id, error = None, f"job submission failed (retried on the next refresh): {failure}"
        with self.sessions.begin() as session:
            stored = session.get(StudyRecord, record.name)
            stored.job_id, stored.error = job_id, error
        record.job_id, record.error = job_id, error

    def _refresh(self, record: StudyRecord, force: bool = False) -> StudyRecord:
        """Pull the job state of an active study from Ray (throttled) and store what changed."""
        if record.state not in ACTIVE_STATES or record.source != "rest":
            return record
        now = time.monotonic()
        if not force and now - self._checked.get(record.name, -math.inf) < REFRESH_S:
            return record
        with self._lock:
            self._checked[record.name] = now
            with self.sessions() as session:
                record = session.get(StudyRecord, record.name)
            if record.state not in ACTIVE_STATES:
                return record
            runner = self._runner()
            job = runner.state(record.job_id) if record.job_id else None
            if job is None:
                return self._resubmit_lost(record)
            if job.state == record.state:
                return record
            with self.sessions.begin() as session:
                stored = session.get(StudyRecord, record.name)
                stored.state = job.state
                if job.state == "running":
                    stored.started_at = stored.started_at or utcnow()
                else:
                    stored.finished_at = utcnow()
                    if job.state == "failed":
                        stored.error = runner.failure_text(record.job_id)
                    elif job.state == "cancelled":
                        stored.error = "the Ray job was stopped outside the service"
                record = stored
            if record.state not in ACTIVE_STATES:
                self._end_running_trials(record.name)
            return record

    def _resubmit_lost(self, record: StudyRecord) -> StudyRecord:
        """The cluster does not know the job (never submitted, or the cluster restarted): the next attempt
        resumes the Optuna study; after MAX_ATTEMPTS the study fails."""
        with self.sessions.begin() as session:
            stored = session.get(StudyRecord, record.name)
            if stored.job_id is not None:
                if stored.attempt >= MAX_ATTEMPTS:
                    stored.state, stored.finished_at = "failed", utcnow()
                    stored.error = f"the cluster lost the job {stored.job_id} {stored.attempt} times"
                    return stored
                stored.attempt += 1
                stored.resume, stored.state, stored.job_id = True, "queued", None
            record = stored
        self._end_running_trials(record.name)
        self._submit(record)
        return record

    def reconcile(self) -> None:
        """At start-up: follow or resubmit every active study."""
        with self.sessions() as session:
            records = session.scalars(select(StudyRecord).where(StudyRecord.state.in_(ACTIVE_STATES))).all()
        for record in records:
            self._refresh(record, force=True)

    def cancel(self, name: str) -> dict[str, Any]:
        record = self._refresh(self._record(name), force=True)
        if record.source != "rest":
            raise Conflict(f"name: study {name!r} was imported; it has no job to cancel")
        if record.state not in ACTIVE_STATES:
            raise Conflict(f"name: study {name!r} is already {record.state}")
        with self._lock:
            if record.job_id:
                self._runner().stop(record.job_id)
            with self.sessions.begin() as session:
                stored = session.get(StudyRecord, name)
                stored.state, stored.finished_at, stored.error = "cancelled", utcnow(), None
                record = stored
            self._end_running_trials(name)
        return self._status(record)

    def resume(self, name: str, n_trials: int | None = None) -> dict[str, Any]:
        """Resubmit a failed or cancelled study (or a succeeded one with a larger n_trials) with --resume."""
        record = self._refresh(self._record(name), force=True)
        if record.source != "rest":
            raise Conflict(f"name: study {name!r} was imported; it cannot run")
        if record.state in ACTIVE_STATES:
            raise Conflict(f"name: study {name!r} is {record.state}; cancel it first")
        spec = dict(record.spec)
        if n_trials is not None:
            spec = self.validate({**spec, "n_trials": n_trials}).model_dump(mode="json")
        elif record.state == "succeeded":
            raise Conflict(f"name: study {name!r} succeeded; give a larger n_trials to run more trials")
        with self._lock:
            with self.sessions.begin() as session:
                stored = session.get(StudyRecord, name)
                stored.spec, stored.attempt, stored.resume = spec, stored.attempt + 1, True
                stored.state, stored.job_id, stored.error, stored.finished_at = "queued", None, None, None
                record = stored
            self._submit(record)
        return self._status(record)

    def _end_running_trials(self, name: str) -> None:
        """Trials left RUNNING or WAITING by a job that ended get the honest state FAIL."""
        study_id = self._study_id(name)
        for trial in self.storage.get_all_trials(study_id, deepcopy=False):
            if trial.state in (TrialState.RUNNING, TrialState.WAITING):
                try:
                    self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                except RuntimeError:  # finished meanwhile (UpdateFinishedTrialError)
                    pass

    # ---- trials ------------------------------------------------------------------------------------------
    def _record(self, name: str) -> StudyRecord:
        with self.sessions() as session:
            record = session.get(StudyRecord, name)
        if record is None:
            raise NotFound(f"name: no study {name!r}")
        return record

    def _study_id(self, name: str) -> int:
        try:
            return self.storage.get_study_id_from_name(name)
        except KeyError:
            raise NotFound(f"name: no Optuna study {name!r} in the storage") from None

    def _study_user_attrs(self, name: str) -> dict[str, Any]:
        return self.storage.get_study_user_attrs(self._study_id(name))

    def _trials(self, name: str) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self._study_id(name), deepcopy=False)

    def trials(self, name: str, offset: int, limit: int) -> dict[str, Any]:
        record = self._refresh(self._record(name))
        trials = self._trials(record.name)
        return {
            "total": len(trials),
            "offset": offset,
            "limit": limit,
            "items": [_trial_json(t) for t in trials[offset : offset + limit]],
        }

    def trials_csv(self, name: str) -> str:
        """One row per trial: number, state, value, an `s_*` column per scale, seeds, epochs, times."""
        record = self._record(name)
        trials = self._trials(name)
        scales = [plot_data.PARAM_PREFIX + a["name"] for a in record.spec.get("axes") or ()]
        extra = sorted({p for t in trials for p in t.params} - set(scales))
        attrs = ["encoding", "task", "seed", "pe_seed", "epochs", "seconds"]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["number", "state", "value", *scales, *extra, *attrs, "datetime_start", "datetime_complete"])
        for t in trials:
            writer.writerow(
                [t.number, t.state.name, "" if t.value is None else repr(t.value)]
                + [t.params.get(p, "") for p in (*scales, *extra)]
                + [t.user_attrs.get(a, "") for a in attrs]
                + [_iso(t.datetime_start), _iso(t.datetime_complete)]
            )
        return out.getvalue()

    def figure_json(self, name: str, kind: str) -> str:
        record = self._refresh(self._record(name))
        try:
            figure = build_figure(kind, self._trials(name), plot_data.StudyView.from_spec(record.spec))
        except ValueError as error:
            raise Conflict(f"plot {kind}: {error}") from None
        return figure.to_json()

    # ---- import / compare ------------------------------------------------------------------------------------
    def import_csv(
        self, name: str, content: bytes, encoding: str, direction: str, metric: str, task: str | None
    ) -> dict[str, Any]:
        """A finished study from a CSV of earlier trials: `s_*` scale columns and `value` (optional: `state`,
        `seed`, `pe_seed`). The axes' ranges are the observed scale ranges."""
        if not SLUG.match(name):
            raise InvalidInput(f"name: {name!r} must match {SLUG_PATTERN}")
        if encoding not in list_encodings():
            raise InvalidInput(f"encoding: unknown encoding {encoding!r} (valid: {', '.join(list_encodings())})")
        rows = _read_csv(content)
        scales = [c for c in rows[0] if c.startswith(plot_data.PARAM_PREFIX)]
        if "value" not in rows[0] or not scales:
            raise InvalidInput("file: the CSV needs a `value` column and at least one `s_<axis>` scale column")
        trials, axes = _imported_trials(rows, scales)
        spec = {
            "name": name, "description": "imported from CSV", "task": task or "imported", "encoding": encoding,
            "axes": axes, "ratio": [a["name"] for a in axes[:2]] if len(axes) >= 2 else None,
            "n_trials": len(trials), "metric": metric, "direction": direction, "pe_seed": 0,
        }  # fmt: skip
        with self._lock, self.sessions.begin() as session:
            if session.get(StudyRecord, name) is not None:
                raise Conflict(f"name: study {name!r} already exists")
            try:
                study = optuna.create_study(study_name=name, storage=self.storage, direction=direction)
            except optuna.exceptions.DuplicatedStudyError:
                raise Conflict(f"name: an Optuna study {name!r} already exists in the storage") from None
            study.set_user_attr("spec", spec)
            study.set_user_attr("warnings", [])
            study.add_trials(trials)
            now = utcnow()
            session.add(
                StudyRecord(name=name, spec=spec, source="import", state="succeeded", attempt=0,
                            started_at=now, finished_at=now)
            )  # fmt: skip
        return self.status(name)

    def compare(self, names: Sequence[str]) -> dict[str, Any]:
        records = [self._record(name) for name in names]
        rows = []
        for record in records:
            view = plot_data.StudyView.from_spec(record.spec)
            estimate = compare.best_estimate(self._trials(record.name), view.direction)
            rows.append(
                {"name": record.name, "encoding": view.encoding, "state": record.state, "metric": view.metric,
                 "direction": view.direction, "best": None if estimate is None else estimate.__dict__}
            )  # fmt: skip
        differences = compare.spec_differences({r.name: r.spec for r in records})
        return {
            "studies": rows,
            "comparable": not differences,
            "differences": differences,
            "confidence": compare.CONFIDENCE,
        }


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _trial_json(t: FrozenTrial) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": t.params,
        "user_attrs": t.user_attrs,
        "intermediate_values": t.intermediate_values,
        "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete,
    }


def _read_csv(content: bytes) -> list[dict[str, str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file: the CSV is not UTF-8 text") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise InvalidInput("file: the CSV has no data rows")
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"file: {len(rows)} rows exceed the limit of {MAX_IMPORT_ROWS}")
    return rows


def _imported_trials(rows: list[dict[str, str]], scales: list[str]) -> tuple[list[FrozenTrial], list[dict]]:
    parsed = []
    for line, row in enumerate(rows, start=2):
        state_name = (row.get("state") or "COMPLETE").strip().upper()
        if state_name not in ("COMPLETE", "PRUNED", "FAIL"):
            raise InvalidInput(f"file: line {line}: state {state_name!r} is not COMPLETE, PRUNED or FAIL")
        try:
            params = {c: float(row[c]) for c in scales}
            value = float(row["value"]) if (row.get("value") or "").strip() else None
            attrs = {k: int(float(row[k])) for k in ("seed", "pe_seed") if (row.get(k) or "").strip()}
        except (TypeError, ValueError) as error:
            raise InvalidInput(f"file: line {line}: {error}") from None
        if any(not (math.isfinite(v) and v > 0) for v in params.values()):
            raise InvalidInput(f"file: line {line}: scales must be positive finite numbers")
        if state_name == "COMPLETE" and (value is None or not math.isfinite(value)):
            raise InvalidInput(f"file: line {line}: a COMPLETE trial needs a finite value")
        parsed.append((TrialState[state_name], params, value if state_name == "COMPLETE" else None, attrs))
    axes, distributions = [], {}
    for index, column in enumerate(scales):
        values = [p[1][column] for p in parsed]
        low, high = min(values), max(values)
        if low == high:
            low, high = low / 2, high * 2
        axis = column.removeprefix(plot_data.PARAM_PREFIX)
        axes.append({"name": axis, "grid_axes": [index], "low": low, "high": high})
        distributions[column] = FloatDistribution(low, high, log=True)
    trials = [
        optuna.trial.create_trial(
            state=state, value=value, params=params, distributions=distributions, user_attrs=attrs
        )
        for state, params, value, attrs in parsed
    ]
    return trials, axes


def apply_form_overrides(spec: StudySpec, text: str) -> dict[str, Any]:
    """`key=value` lines of the dashboard form applied to a shipped spec (as `afpe run --set`)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    try:
        return apply_overrides(spec.model_dump(mode="json"), lines)
    except SpecError as error:
        raise InvalidInput(str(error)) from None
