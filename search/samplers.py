"""The samplers a spec's `sampler` names, each seeded, and the distributions they draw from: the one place that
maps a spec to an Optuna sampler and its axes to Optuna distributions (the driver's recorder, the benchmarks and
the tests all ask here)."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.distributions import FloatDistribution

from afpe.search.spec import StudySpec

#: `spec.sampler` -> Optuna sampler given a seed: random (the paper's protocol), TPE (constant liar, so trials
#: running side by side are not proposed twice), and Optuna's Gaussian-process sampler (log-EI; both adaptive ones
#: start with 10 random trials).
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, constant_liar=True),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
}


def make_sampler(spec: StudySpec, offset: int) -> optuna.samplers.BaseSampler:
    """Seeded sampler; `offset` (trials already in the study) keeps a resumed random search from replaying
    the draws it already made."""
    return SAMPLERS[spec.sampler](spec.seed + offset)


def search_distributions(spec: StudySpec) -> dict[str, FloatDistribution]:
    """{`s_<axis>`: log-uniform on [low, high]} for each searched axis: what every trial of the spec is drawn from."""
    return {axis.param: FloatDistribution(axis.low, axis.high, log=True) for axis in spec.axes}
