"""Reads of a table of trials below Optuna's API (the contract: `storage.py`): rows without learning curves, kept
while their trials are finished, and whole trials by number."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.orm
from optuna.trial import FrozenTrial, TrialState

from afpe.search.storage import rdb_backend


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
        backend = rdb_backend(self.storage)
        if backend is None:
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
    backend = rdb_backend(storage)
    wanted = set(numbers)
    if backend is None:
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


#: a trial not yet ended: (number, its state's value, its value, the epochs it reported)
OpenTrial = tuple[int, int, float | None, int]


def trial_count_and_open(storage: optuna.storages.BaseStorage, name: str) -> tuple[int, list[OpenTrial]]:
    """(the number of trials of study `name`, each trial not yet ended as an `OpenTrial`, in number order): a
    count and a select of the open trials only, never a whole trial (what `study_reads.study_version` hashes,
    without the cold read of every trial: 100,000 trials took 30 s and more). KeyError for an unknown study; a
    storage that is not an RDB one is read through `get_all_trials`."""
    from optuna.storages._rdb import models

    study_id = storage.get_study_id_from_name(name)
    backend = rdb_backend(storage)
    if backend is None:
        trials = storage.get_all_trials(study_id, deepcopy=False)
        ended = TrialRowCache.FINISHED
        opened = [
            (t.number, t.state.value, t.value, len(t.intermediate_values)) for t in trials if t.state not in ended
        ]
        return len(trials), opened
    trial, value, step = models.TrialModel, models.TrialValueModel, models.TrialIntermediateValueModel
    with backend.engine.connect() as connection:
        count = connection.execute(
            sqlalchemy.select(sqlalchemy.func.count()).select_from(trial).where(trial.study_id == study_id)
        ).scalar_one()
        steps = sqlalchemy.select(sqlalchemy.func.count()).where(step.trial_id == trial.trial_id).scalar_subquery()
        rows = connection.execute(
            sqlalchemy.select(trial.number, trial.state, value.value, value.value_type, steps)
            .outerjoin(value, sqlalchemy.and_(value.trial_id == trial.trial_id, value.objective == 0))
            .where(trial.study_id == study_id, trial.state.not_in(TrialRowCache.FINISHED))
            .order_by(trial.number)
        ).all()
    opened = [
        (number, state.value, None if stored is None else value.stored_repr_to_value(stored, kind), epochs)
        for number, state, stored, kind, epochs in rows
    ]
    return count, opened


def _row(trial: FrozenTrial, attr_keys: Collection[str]) -> TrialRow:
    return TrialRow(
        number=trial.number,
        state=trial.state,
        value=trial.value,
        params=dict(trial.params),
        user_attrs={k: v for k, v in trial.user_attrs.items() if k in attr_keys},
    )
