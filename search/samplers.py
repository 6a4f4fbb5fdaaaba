"""The samplers a spec's `sampler` names, each seeded: the one place that maps the name to an Optuna sampler
(the driver, the benchmarks and the tests all ask here)."""

from __future__ import annotations

from collections.abc import Callable

import optuna

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
