"""Optuna RDB storage: URL handling, engines, schema creation and which spec owns a study name. Trials are written
and read below Optuna's API in `trial_writes.py` and `trial_reads.py`, under the contract written here.

PostgreSQL goes through psycopg 3 with `pool_pre_ping` (a dropped connection is replaced at the next
checkout). The password is never kept in a URL we hand on: libpq reads it from PGPASSWORD / ~/.pgpass; a
password written in the URL is moved into the engine's `connect_args`, which live only in this process
(the DB URL is pickled into Ray's searcher state, so it must not hold one).

**The contract with Optuna's internals** (tested on Optuna 5.0.0; `tests/search/test_optuna_contract.py` fails
on an Optuna that breaks it). `trial_writes.py` and `trial_reads.py` are the only modules that rely on Optuna's
private parts, because Tune, not Optuna's ask/tell objects, drives a trial (written by its storage id), an
import writes its trials in bulk, a table of trials reads only the columns it shows, and a pruned checkpoint's
artifact is detached from its finished trial:

- private attributes: `Study._storage`, `Study._study_id`, `Trial._trial_id`/`FrozenTrial._trial_id`,
  `_CachedStorage._backend` (the RDBStorage under Optuna's cache, `rdb_backend`),
  `RDBStorage._build_frozen_trial_from_trial_model`, `optuna.artifacts._upload.ARTIFACTS_ATTR_PREFIX`
  (an artifact is the trial system attr `artifacts:<id>` holding its `ArtifactMeta` as JSON);
- the table models of `optuna.storages._rdb.models` and their value conversions
  (`TrialValueModel.value_to_stored_repr`/`stored_repr_to_value`,
  `TrialIntermediateValueModel.intermediate_value_to_stored_repr`);
- the tables and columns of `OPTUNA_COLUMNS`, read by SELECTs, written by bulk INSERTs (no other column of
  these tables may be required) and one DELETE of a system attr.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy
from sqlalchemy.engine import Engine, make_url

if TYPE_CHECKING:
    from afpe.search.spec import StudySpec

STORAGE_ENV = "AFPE_STORAGE"
DEFAULT_SQLITE = "~/.afpe/afpe.db"
SQLITE_BUSY_TIMEOUT_S = 60.0

#: Optuna's private tables, and their columns, that `trial_writes.py` and `trial_reads.py` read and write in raw SQL.
OPTUNA_COLUMNS: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_params": ("trial_id", "param_name", "param_value", "distribution_json"),
    "trial_values": ("trial_id", "objective", "value", "value_type"),
    "trial_user_attributes": ("trial_id", "key", "value_json"),
    "trial_system_attributes": ("trial_id", "key", "value_json"),
    "trial_intermediate_values": ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
}


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


def create_tables(metadata: sqlalchemy.MetaData, engine: Engine) -> None:
    """Create `metadata`'s missing tables (afpe's own beside Optuna's: leases, campaigns). Two processes creating
    them at once on a fresh PostgreSQL can race (see `open_storage`): a failed attempt is retried, by which time
    the other has finished."""
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            return
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))


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


def spec_identity(data: dict[str, Any]) -> dict[str, Any]:
    """`StudySpec.identity` of a spec as stored (a JSON dict): task, task options, encoding, metric, direction, axes,
    and `positions` (from `trainer.positions`) when not normalized, so studies from before the option keep theirs."""
    identity = {key: data.get(key) for key in ("task", "task_options", "encoding", "metric", "direction", "axes")}
    positions = (data.get("trainer") or {}).get("positions", "normalized")
    if positions != "normalized":
        identity["positions"] = positions
    return identity


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
        theirs, ours = spec_identity(stored), spec.identity()
        differences = [
            f"{key}: stored {theirs.get(key)!r}, given {ours.get(key)!r}"
            for key in dict.fromkeys([*ours, *theirs])
            if theirs.get(key) != ours.get(key)
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


def rdb_backend(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDBStorage under `storage` (itself, or the one under Optuna's cache), or None for another storage."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None
