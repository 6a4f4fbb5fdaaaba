"""`trial_rows`, `TrialRowCache` and `trials_by_number` (the trials table's reads) on real SQLite and
PostgreSQL: the same numbers, states, values, params and chosen attrs as Optuna's own `get_all_trials`,
infinite values included, also after trials were added and a running one finished."""

from __future__ import annotations

import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from afpe.search.storage import open_storage
from afpe.search.trial_reads import TrialRowCache, trial_rows, trials_by_number


def test_rows_and_whole_trials_read_back_as_optuna_reads_them(storage_url):
    storage = optuna.storages.get_storage(open_storage(storage_url))
    study = optuna.create_study(study_name="table", storage=storage, direction="maximize")
    distributions = {"s_a": FloatDistribution(0.1, 10, log=True), "s_b": FloatDistribution(0.1, 10, log=True)}
    for i in range(12):
        state = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)[i % 3]
        study.add_trial(
            create_trial(
                state=state,
                value=(math.inf if i == 3 else 0.5 + i / 12) if state == TrialState.COMPLETE else None,
                params={"s_a": 0.1 + i % 7, "s_b": 10 / (1 + i % 5)},
                distributions=distributions,
                user_attrs={"seed": i, "repeat_of": i // 2, "error": "x" * i},
                intermediate_values={1: 0.1 * i, 2: 0.2 * i},
            )
        )
    expected = storage.get_all_trials(study._study_id)
    rows = trial_rows(storage, "table", ("seed", "repeat_of"))
    assert [(r.number, r.state, r.value, r.params) for r in rows] == [
        (t.number, t.state, t.value, t.params) for t in expected
    ]
    assert [r.user_attrs for r in rows] == [{"seed": t.number, "repeat_of": t.number // 2} for t in expected]

    cache = TrialRowCache(storage, ("seed",))
    running = study.ask(distributions)
    running.set_user_attr("seed", 7)
    assert [(r.number, r.state) for r in cache.rows("table")][-1] == (12, TrialState.RUNNING)
    study.tell(running, 0.25)
    study.add_trial(create_trial(value=0.5, params={"s_a": 1.0, "s_b": 2.0}, distributions=distributions))
    again = cache.rows("table")
    assert [(r.number, r.state, r.value, r.params, r.user_attrs.get("seed")) for r in again] == [
        (t.number, t.state, t.value, t.params, t.user_attrs.get("seed"))
        for t in storage.get_all_trials(study._study_id)
    ]
    assert all(kept is read for kept, read in zip(cache.rows("table"), again, strict=True)), "finished rows kept"
    version, rows = cache.table("table")
    assert cache.table("table") == (version, rows), "an unchanged study keeps its version"
    study.add_trial(create_trial(value=0.75, params={"s_a": 1.0, "s_b": 2.0}, distributions=distributions))
    newer, more = cache.table("table")
    assert newer != version and [r.value for r in more[-2:]] == [0.5, 0.75]
    whole = trials_by_number(storage, "table", [7, 2, 99])
    assert [t.number for t in whole] == [2, 7]
    assert [(t.intermediate_values, t.user_attrs, t.params) for t in whole] == [
        (expected[n].intermediate_values, expected[n].user_attrs, expected[n].params) for n in (2, 7)
    ]
    assert trials_by_number(storage, "table", []) == []
