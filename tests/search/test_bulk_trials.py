"""`add_finished_trials` (the CSV import's bulk insert) on real SQLite and PostgreSQL: the study reads back
exactly as one filled by Optuna's own `add_trials`, numbered after the trials already there."""

from __future__ import annotations

import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from afpe.search.storage import open_storage
from afpe.search.trial_writes import add_finished_trials


def finished_trials(n: int) -> list[optuna.trial.FrozenTrial]:
    distributions = {"s_a": FloatDistribution(0.1, 10, log=True), "s_b": FloatDistribution(0.1, 10, log=True)}
    trials = []
    for i in range(n):
        state = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)[i % 3]
        value = (math.inf if i == 3 else 0.5 + i / n) if state == TrialState.COMPLETE else None
        trials.append(
            create_trial(
                state=state,
                value=value,
                params={"s_a": 0.1 + i % 7, "s_b": 10 / (1 + i % 5)},
                distributions=distributions,
                user_attrs={"seed": i, "repeat_of": i // 2, "note": f"row {i}"},
                system_attrs={"imported": True},
                intermediate_values={1: 0.1 * i, 2: -math.inf if i == 4 else 0.2 * i},
            )
        )
    return trials


def readable(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [
        (t.number, t.state, t.values, t.params, t.user_attrs, t.system_attrs, t.intermediate_values, t.distributions)
        for t in trials
    ]


def test_bulk_insert_reads_back_as_optunas_add_trials(storage_url):
    storage = optuna.storages.get_storage(open_storage(storage_url))  # the service's cached storage, as in the app
    trials = finished_trials(60)
    reference = optuna.create_study(study_name="one-by-one", storage=storage)
    reference.add_trials(trials[:10])
    reference.add_trials(trials[10:])
    bulk = optuna.create_study(study_name="bulk", storage=storage)
    bulk.add_trials(trials[:10])  # trials already there: the bulk ones are numbered after them
    add_finished_trials(bulk, trials[10:])
    assert readable(bulk.get_trials()) == readable(reference.get_trials())
    assert [t.number for t in bulk.get_trials()] == list(range(60))
    fresh = optuna.load_study(study_name="bulk", storage=open_storage(storage_url))
    assert readable(fresh.get_trials()) == readable(reference.get_trials())
    assert bulk.best_trial.number == reference.best_trial.number
