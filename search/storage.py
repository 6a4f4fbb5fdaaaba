"""Optuna RDB storage: URL handling, schema creation, which spec owns a study name, and trial writes.

PostgreSQL goes through psycopg 3 with `pool_pre_ping` (a dropped connection is replaced at the next
checkout). The password is never kept in a URL we hand on: libpq reads it from PGPASSWORD / ~/.pgpass; a
password written in the URL is moved into the engine's `connect_args`, which live only in this process
(the DB URL is pickled into Ray's searcher state, so it must not hold one).

This is the only module that uses Optuna's private internals (`study._storage`, `trial._trial_id`, its table
models): the recorder writes a trial by its storage id while Tune, not Optuna's ask/tell objects, drives it,
an import writes its trials in bulk, a table of trials reads only the columns it shows, and a pruned
checkpoint's artifact is detached from its finished trial.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
import sqlalchemy.orm
from optuna.artifacts import ArtifactMeta
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import Engine, make_url

if TYPE_CHECKING:
    from afpe.search.spec import StudySpec

STORAGE_ENV = "AFPE_STORAGE"
DEFAULT_SQLITE = "~/.afpe/afpe.db"
SQLITE_BUSY_TIMEOUT_S = 60.0


class StudyConflictError(ValueError):
    """The study name is taken by a different spec, or exists and a fresh run was asked for."""


class StudyExistsError(StudyConflictError):
    """The study exists with trials and a fresh run was asked for: it can only be resumed."""


#: the study user attr naming where a study was started (`afpe.search.study_list`: the origin contract)
ORIGIN_KEY = "origin"


def default_storage_url() -> str:
    """$AFPE_STORAGE, else a SQLite file under ~/.afpe/ (the embedded default)."""
    return os.environ.get(STORAGE_ENV) or f"sqlite:///{DEFAULT_SQLITE}"


def normalize_url(url: str) -> str:
    """postgres:// and postgresql:// -> postgresql+psycopg:// (psycopg 3); SQLite paths get `~` expanded
    and their folder created. Raises ValueError naming `storage` for anything else."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(f"storage: not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database).expanduser()
            database.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{database}"
        return url
    raise ValueError(f"storage: unsupported database {backend!r} (use postgresql://... or sqlite:///...)")


def split_password(url: str) -> tuple[str, str | None]:
    """(URL without its password, the password or None): one written as `user:password@` or as the query
    parameter `?password=` (which libpq also reads) is taken out."""
    parsed = make_url(url)
    password = parsed.password
    if "password" in parsed.query:
        given = parsed.query["password"]
        password = password if password is not None else (given if isinstance(given, str) else given[-1])
        parsed = parsed.difference_update_query(["password"])
    if password is None:
        return url, None
    # URL is a NamedTuple; `URL.set(password=None)` would leave the password in place
    return parsed._replace(password=None).render_as_string(hide_password=False), str(password)


def public_url(url: str) -> str:
    """The URL safe to print, store, or pickle (never a password)."""
    return split_password(normalize_url(url))[0]


def engine_arguments(url: str) -> tuple[str, dict[str, Any]]:
    """(URL without password, SQLAlchemy engine kwargs): `pool_pre_ping`, and the URL's password, if it has
    one, in `connect_args`; SQLite waits up to SQLITE_BUSY_TIMEOUT_S for a lock held by another writer. The
    one way this project builds a database connection."""
    safe_url, password = split_password(normalize_url(url))
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if password is not None:
        kwargs["connect_args"] = {"password": password}
    if make_url(safe_url).get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    return safe_url, kwargs


def create_engine(url: str) -> Engine:
    """A SQLAlchemy engine on `url` built by `engine_arguments` (the service's own table uses it); a SQLite
    file is switched to WAL first (see `use_wal`)."""
    safe_url, kwargs = engine_arguments(url)
    engine = sqlalchemy.create_engine(safe_url, **kwargs)
    use_wal(engine)
    return engine


def use_wal(engine: Engine) -> None:
    """Put a SQLite file in WAL mode (kept in the file): readers never block the writer, so a driver and the
    service write one study database at once; with the busy timeout of `engine_arguments` no
    "database is locked" reaches a user. Nothing for other databases or in-memory SQLite."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")


def open_storage(url: str | None = None) -> optuna.storages.RDBStorage:
    """An Optuna RDBStorage for `url` (default: `default_storage_url()`), its schema created here, once.
    ValueError naming `storage` for an unsupported or unreachable database (raised from the database's error, so
    `outage.is_transient` tells a server not up yet from one that refused the credentials).

    Creating a fresh schema from two processes at once can race (UniqueViolation): a failed attempt is
    retried, by which time the other process has finished it."""
    safe_url, engine_kwargs = engine_arguments(url or default_storage_url())
    probe = sqlalchemy.create_engine(safe_url, **engine_kwargs)
    use_wal(probe)
    probe.dispose()
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(safe_url, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
        except sqlalchemy.exc.OperationalError as error:
            raise ValueError(f"storage: cannot connect to {safe_url}: {error.orig}") from error
    raise AssertionError("unreachable")


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """The existing study `name`; a ValueError lists the known names when there is none."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(study_names(storage)) or "none"
        raise ValueError(f"study {name!r} not found in the storage (studies there: {known})") from None


def claim_study(
    storage: optuna.storages.BaseStorage, spec: StudySpec, resume: bool, origin: str | None = None
) -> optuna.Study:
    """Create the Optuna study `spec.name`, or take an existing one this spec owns.

    A name belongs to one identity (task, task options, encoding, metric, direction, axes): another is
    refused. An existing study with trials needs `resume=True` (StudyExistsError otherwise). The spec is stored
    in the study's user attrs (`spec`), updated to the latest (e.g. a raised n_trials); `origin` is stored as the
    user attr `origin` when the study is created here (`afpe.search.study_list`: the origin contract).
    StudyConflictError for all of these, and when another process creates the same name at the same moment."""
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage)
    except KeyError:
        try:
            study = optuna.create_study(study_name=spec.name, storage=storage, direction=spec.direction)
        except optuna.exceptions.DuplicatedStudyError:
            raise StudyConflictError(f"name: study {spec.name!r} is being created by another process") from None
        if origin is not None:
            study.set_user_attr(ORIGIN_KEY, origin)
    else:
        stored = study.user_attrs.get("spec")
        if stored is None:
            raise StudyConflictError(f"name: study {spec.name!r} exists but was not made by afpe; choose another name")
        theirs = {key: stored.get(key) for key in spec.identity()}
        differences = [
            f"{key}: stored {theirs[key]!r}, given {value!r}"
            for key, value in spec.identity().items()
            if theirs[key] != value
        ]
        if differences:
            raise StudyConflictError(
                f"name: study {spec.name!r} belongs to a different spec ({'; '.join(differences)}); choose another name"
            )
        if study.trials and not resume:
            raise StudyExistsError(
                f"name: study {spec.name!r} already has {len(study.trials)} trials; "
                "pass --resume to continue it up to n_trials, or choose another name"
            )
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    if "warnings" not in study.user_attrs:
        study.set_user_attr("warnings", [])
    return study


# ---- trial writes by storage id (Optuna internals: here only) ----------------------------------------------


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of a trial (what the other functions here take)."""
    return trial._trial_id


def set_trial_user_attr(study: optuna.Study, trial: int, key: str, value: Any) -> None:
    """Set user attr `key` of the trial with storage id `trial`."""
    study._storage.set_trial_user_attr(trial, key, value)


def set_intermediate_value(study: optuna.Study, trial: int, step: int, value: float) -> None:
    """Store `value` as the intermediate value at `step` of the trial with storage id `trial`."""
    study._storage.set_trial_intermediate_value(trial, step, value)


def finish_trial(study: optuna.Study, number: int, state: TrialState, value: float | None) -> None:
    """Tell trial `number` its end `state` (and `value`); a trial already finished is left as it is, so a
    tell replayed after an outage is not written twice."""
    study.tell(number, value, state=state, skip_if_finished=True)


def fail_stale_trials(study: optuna.Study, reason: str = "left unfinished by a driver that died") -> int:
    """Mark trials left RUNNING or WAITING as FAIL with `reason` in their `error` user attr (Optuna's
    heartbeat does not run under ask/tell, so a dead driver leaves them so forever); returns how many.
    A trial that finishes meanwhile keeps its state."""
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "error", reason)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        failed += 1
    return failed


def add_finished_trials(study: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
    """Add finished `trials` (e.g. from `optuna.trial.create_trial`) to `study`, numbered after its trials:
    what `study.add_trials` does, but as one transaction of bulk inserts into Optuna's tables (Optuna writes
    one transaction per trial: 20,000 trials took minutes). A storage that is not an RDB one gets
    `study.add_trials`."""
    from optuna.storages._rdb import models

    backend = getattr(study._storage, "_backend", study._storage)  # the RDBStorage under optuna's cache
    if not isinstance(backend, optuna.storages.RDBStorage):
        study.add_trials(trials)
        return
    study_id = study._study_id
    with backend.engine.begin() as connection:
        start = connection.scalar(
            sqlalchemy.select(sqlalchemy.func.count(models.TrialModel.trial_id)).where(
                models.TrialModel.study_id == study_id
            )
        )
        rows = [
            {
                "number": start + index,
                "study_id": study_id,
                "state": trial.state,
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            }
            for index, trial in enumerate(trials)
        ]
        inserted = sqlalchemy.insert(models.TrialModel).returning(
            models.TrialModel.trial_id, sort_by_parameter_order=True
        )
        ids = connection.execute(inserted, rows).scalars().all()
        children: dict[Any, list[dict[str, Any]]] = {
            models.TrialParamModel: [],
            models.TrialValueModel: [],
            models.TrialUserAttributeModel: [],
            models.TrialSystemAttributeModel: [],
            models.TrialIntermediateValueModel: [],
        }
        for id_, trial in zip(ids, trials, strict=True):
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                children[models.TrialParamModel].append(
                    {
                        "trial_id": id_,
                        "param_name": name,
                        "param_value": distribution.to_internal_repr(value),
                        "distribution_json": optuna.distributions.distribution_to_json(distribution),
                    }
                )
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                children[models.TrialValueModel].append(
                    {"trial_id": id_, "objective": objective, "value": stored, "value_type": kind}
                )
            for model, attrs in (
                (models.TrialUserAttributeModel, trial.user_attrs),
                (models.TrialSystemAttributeModel, trial.system_attrs),
            ):
                children[model] += [{"trial_id": id_, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
            for step, value in trial.intermediate_values.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                children[models.TrialIntermediateValueModel].append(
                    {"trial_id": id_, "step": step, "intermediate_value": stored, "intermediate_value_type": kind}
                )
        for model, values in children.items():
            if values:
                connection.execute(sqlalchemy.insert(model), values)


# ---- a trial's artifacts (Optuna's artifact metadata: system attrs `artifacts:<id>`; here only) ----------------


def set_trial_artifact(study: optuna.Study, trial: int, meta: ArtifactMeta) -> None:
    """Attach artifact `meta` to the unfinished trial with storage id `trial`, as `optuna.artifacts.upload_artifact`
    does (its file is already in the store: `get_all_artifact_meta` and optuna-dashboard list it)."""
    study._storage.set_trial_system_attr(trial, ARTIFACTS_ATTR_PREFIX + meta.artifact_id, json.dumps(asdict(meta)))


def trial_artifacts(trial: FrozenTrial) -> list[ArtifactMeta]:
    """The artifacts attached to `trial` (from the system attrs it was read with: no query)."""
    return [
        ArtifactMeta(**json.loads(value))
        for key, value in trial.system_attrs.items()
        if key.startswith(ARTIFACTS_ATTR_PREFIX)
    ]


def remove_trial_artifact(study: optuna.Study, number: int, artifact_id: str) -> None:
    """Detach artifact `artifact_id` from trial `number`, finished or not (Optuna has no call for it: one
    DELETE of its system attr)."""
    from optuna.storages._rdb import models

    backend = getattr(study._storage, "_backend", study._storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        raise TypeError("removing an artifact needs an RDB storage")
    trial = sqlalchemy.select(models.TrialModel.trial_id).where(
        models.TrialModel.study_id == study._study_id, models.TrialModel.number == number
    )
    with backend.engine.begin() as connection:
        connection.execute(
            sqlalchemy.delete(models.TrialSystemAttributeModel).where(
                models.TrialSystemAttributeModel.trial_id == trial.scalar_subquery(),
                models.TrialSystemAttributeModel.key == ARTIFACTS_ATTR_PREFIX + artifact_id,
            )
        )


# ---- reads of a table of trials (Optuna internals: here only) ------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trial without its intermediate values or datetimes: what a table of trials shows; `user_attrs` holds
    only the keys asked for."""

    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    user_attrs: dict[str, Any]


def trial_rows(storage: optuna.storages.BaseStorage, name: str, attr_keys: Collection[str]) -> list[TrialRow]:
    """Every trial of study `name` in number order, with only the user attrs `attr_keys`: plain SELECTs on
    Optuna's tables (trials, values, params, user attrs), never intermediate values (Optuna reads whole
    trials: 10,000 trials of 20 epochs took 10-16 s cold on PostgreSQL). KeyError for an unknown study; a
    storage that is not an RDB one is read through `get_all_trials`."""
    return TrialRowCache(storage, attr_keys).rows(name)


@dataclass(frozen=True)
class _Table:
    """The rows of one study as last read: `rows` in number order, `by_id` the same by trial id, `open` the ids
    of trials not finished, `last_id` the highest trial id read, `version` a number no other read gave."""

    rows: tuple[TrialRow, ...]
    by_id: dict[int, TrialRow]
    open: frozenset[int]
    last_id: int
    version: int


class TrialRowCache:
    """`trial_rows` keeping the rows of finished trials (COMPLETE, PRUNED, FAIL), which never change again
    (Optuna's own cached storage relies on the same; this project writes a trial's attrs before its end
    state): a read after the first selects, as Optuna's cache does, only the trials added since (a higher trial
    id) and those not finished then, so an unchanged study costs one small query. Safe to share between
    threads."""

    FINISHED = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL})
    CHUNK = 900  # ids per IN (...) list, under SQLite's limit on bound variables

    def __init__(self, storage: optuna.storages.BaseStorage, attr_keys: Collection[str]) -> None:
        self.storage = storage
        self.attr_keys = list(attr_keys)
        self._tables: dict[int, _Table] = {}  # study id -> its rows as last read
        self._versions = itertools.count()
        self._lock = threading.Lock()

    def rows(self, name: str) -> list[TrialRow]:
        """Every trial of study `name` in number order; KeyError for an unknown study."""
        return list(self.table(name)[1])

    def table(self, name: str) -> tuple[int, tuple[TrialRow, ...]]:
        """(a version that changes whenever a row of study `name` changed, every row in number order); KeyError
        for an unknown study."""
        from optuna.storages._rdb import models

        study_id = self.storage.get_study_id_from_name(name)
        backend = getattr(self.storage, "_backend", self.storage)  # the RDBStorage under optuna's cache
        if not isinstance(backend, optuna.storages.RDBStorage):
            trials = self.storage.get_all_trials(study_id, deepcopy=False)
            return next(self._versions), tuple(_row(t, self.attr_keys) for t in trials)
        trial = models.TrialModel
        with self._lock:
            known = self._tables.get(study_id)
        incremental = known is not None and len(known.open) <= self.CHUNK
        with backend.engine.connect() as connection:
            select = sqlalchemy.select(trial.trial_id, trial.number, trial.state).where(trial.study_id == study_id)
            if incremental:
                select = select.where(sqlalchemy.or_(trial.trial_id > known.last_id, trial.trial_id.in_(known.open)))
            listed = connection.execute(select).all()
            if not incremental:  # one select per table over the study
                columns = _columns(
                    connection,
                    self.attr_keys,
                    lambda model: model.trial_id.in_(
                        sqlalchemy.select(trial.trial_id).where(trial.study_id == study_id).scalar_subquery()
                    ),
                )
            else:
                columns = ({}, {}, {})
                ids = [id_ for id_, _, _ in listed]
                for start in range(0, len(ids), self.CHUNK):
                    chunk = ids[start : start + self.CHUNK]
                    part = _columns(connection, self.attr_keys, lambda model, ids=chunk: model.trial_id.in_(ids))
                    for whole, piece in zip(columns, part, strict=True):
                        whole.update(piece)
        values, params, attrs = columns
        fresh = {
            id_: TrialRow(number, state, values.get(id_), params.get(id_, {}), attrs.get(id_, {}))
            for id_, number, state in listed
        }
        if incremental and all(known.by_id.get(id_) == row for id_, row in fresh.items()):
            return known.version, known.rows
        by_id = {**known.by_id, **fresh} if incremental else fresh
        table = _Table(
            tuple(sorted(by_id.values(), key=lambda row: row.number)),
            by_id,
            frozenset(id_ for id_, row in by_id.items() if row.state not in self.FINISHED),
            max(by_id, default=-1),
            next(self._versions),
        )
        with self._lock:
            self._tables[study_id] = table
        return table.version, table.rows


def _columns(
    connection: sqlalchemy.Connection, attr_keys: list[str], of: Any
) -> tuple[dict[int, float], dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """(value, params, user attrs `attr_keys`) per trial id of the trials `of(model)` selects."""
    from optuna.storages._rdb import models

    value_model = models.TrialValueModel
    values = {
        id_: value_model.stored_repr_to_value(stored, kind)
        for id_, stored, kind in connection.execute(
            sqlalchemy.select(value_model.trial_id, value_model.value, value_model.value_type).where(
                of(value_model), value_model.objective == 0
            )
        ).all()
    }
    param_model = models.TrialParamModel
    params: dict[int, dict[str, Any]] = {}
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for id_, param, stored, distribution in connection.execute(
        sqlalchemy.select(
            param_model.trial_id, param_model.param_name, param_model.param_value, param_model.distribution_json
        ).where(of(param_model))
    ).all():
        if distribution not in distributions:
            distributions[distribution] = optuna.distributions.json_to_distribution(distribution)
        params.setdefault(id_, {})[param] = distributions[distribution].to_external_repr(stored)
    attr_model = models.TrialUserAttributeModel
    attrs: dict[int, dict[str, Any]] = {}
    for id_, key, value_json in connection.execute(
        sqlalchemy.select(attr_model.trial_id, attr_model.key, attr_model.value_json).where(
            of(attr_model), attr_model.key.in_(attr_keys)
        )
    ).all():
        attrs.setdefault(id_, {})[key] = json.loads(value_json)
    return values, params, attrs


def trials_by_number(storage: optuna.storages.BaseStorage, name: str, numbers: Collection[int]) -> list[FrozenTrial]:
    """The whole trials (intermediate values included) of study `name` numbered `numbers`, in number order, in
    one query per table as Optuna's own `get_all_trials` builds them. KeyError for an unknown study."""
    from optuna.storages._rdb import models

    study_id = storage.get_study_id_from_name(name)
    backend = getattr(storage, "_backend", storage)
    wanted = set(numbers)
    if not isinstance(backend, optuna.storages.RDBStorage):
        return [t for t in storage.get_all_trials(study_id, deepcopy=False) if t.number in wanted]
    if not wanted:
        return []
    query = (
        sqlalchemy.select(models.TrialModel)
        .options(
            *(
                sqlalchemy.orm.selectinload(relation)
                for relation in (
                    models.TrialModel.params,
                    models.TrialModel.values,
                    models.TrialModel.user_attributes,
                    models.TrialModel.system_attributes,
                    models.TrialModel.intermediate_values,
                )
            )
        )
        .where(models.TrialModel.study_id == study_id, models.TrialModel.number.in_(sorted(wanted)))
        .order_by(models.TrialModel.number)
    )
    with sqlalchemy.orm.Session(backend.engine) as session:
        return [backend._build_frozen_trial_from_trial_model(t) for t in session.scalars(query)]


def _row(trial: FrozenTrial, attr_keys: Collection[str]) -> TrialRow:
    return TrialRow(
        number=trial.number,
        state=trial.state,
        value=trial.value,
        params=dict(trial.params),
        user_attrs={k: v for k, v in trial.user_attrs.items() if k in attr_keys},
    )
