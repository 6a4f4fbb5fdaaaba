"""Trials written below Optuna's API (the contract: `storage.py`): by storage id while Tune drives them, their end
state, stale ones failed on resume, finished ones added in bulk, and a trial's artifacts attached and detached."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import optuna
import sqlalchemy
from optuna.artifacts import ArtifactMeta
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from afpe.search.storage import rdb_backend


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

    backend = rdb_backend(study._storage)
    if backend is None:
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

    backend = rdb_backend(study._storage)
    if backend is None:
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
