"""Issue 14 row 5: `/api/compare` computes each study once and resamples its bootstrap in bounded batches,
which leaves the interval as it was (peak memory before/after: benchmarks/hardening.py)."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from afpe.service.plots import compare


def repeats(n: int) -> list[optuna.trial.FrozenTrial]:
    distributions = {"s_a": FloatDistribution(0.1, 10, log=True)}
    return [
        create_trial(params={"s_a": 1.0}, distributions=distributions, value=0.5 + (i % 17) / 100) for i in range(n)
    ]


def test_batched_bootstrap_gives_the_interval_of_one_pass() -> None:
    trials = repeats(3000)
    batched = compare.best_estimate(trials, "maximize", cells=100_000)  # 33 resamples at a time
    whole = compare.best_estimate(trials, "maximize", cells=compare.N_RESAMPLES * len(trials))  # as before
    assert batched == whole and batched.repeats == 3000 and batched.low < batched.mean < batched.high


def test_a_name_given_twelve_times_is_compared_once(client, auth) -> None:
    csv = "s_a,value\n" + "\n".join(f"1.0,{0.5 + i % 7 / 100}" for i in range(200))
    files = {"file": ("t.csv", csv, "text/csv")}
    assert client.post("/api/studies/import", files=files, data={"name": "same"}, headers=auth).status_code == 201
    result = client.get("/api/compare", params={"names": ["same"] * 12}).json()
    assert [row["name"] for row in result["studies"]] == ["same"] and result["studies"][0]["best"]["repeats"] == 200
