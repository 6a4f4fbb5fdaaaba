"""The smoothed optimum: where the objective is best as a function of the scales, and how sure that is.

A Gaussian process is fitted to every COMPLETE trial (search trials and repeats alike) of a study, with inputs
u_j = log10(s_j) mapped to [0, 1] over each searched axis's [low, high] and the objective (standardised) as
target; the kernel is C * RBF(one length per axis) + white noise, so trial-to-trial noise is estimated, not
interpolated. The posterior mean m(u) is the response surface; the trials are the candidates, so no optimum is
claimed where no trial looked (between and beyond them a GP's optimum is its prior's, not the data's).
Uncertainty: `DRAWS` joint posterior draws over the tried configurations; each draw's optimum gives a ratio
s_a / s_b. The reported optimum is the tried configuration at the median of those ratios (a sample median, so one
draw's ratio, hence a tried one; among configurations with that ratio the one with the best m(u)): its `scales`
give exactly its `ratio`. The 2.5 / 97.5 % quantiles of the drawn ratios are the 95 % interval; when they
coincide (every draw picks the same tried ratio, as with a handful of trials) no interval is claimed
(`ci_note` says why). On a flat stretch of the surface the best mean's own ratio is an arbitrary point of it,
the median its centre. Without a ratio, the optimum is the tried configuration where m(u) is best.

Why beside the best configuration (`repeats.study_answer`): the best trial is the extreme of noisy values
(the winner's curse), so its ratio moves with the seed; the surface pools neighbouring trials, and its
interval says how far the data pin the ratio down. Written here because neither Optuna (its GP sampler
keeps its model internal) nor scikit-learn reports an optimum with an interval; the GP itself is
scikit-learn's.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial

from afpe.search.analysis import complete_trials
from afpe.search.spec import SearchSpace

MIN_TRIALS = 6  # fewer COMPLETE trials than this: no surface (too few points for one length per axis + noise)
DRAWS = 256
MAX_TRIALS = 400  # above this many complete trials the GP is fitted to a seeded random subset of this size


@dataclass(frozen=True)
class Optimum:
    """`scales` (per searched axis): the tried configuration at the posterior median of the optimum's ratio,
    `ratio` = scales[a] / scales[b] exactly, its 95 % interval `ci` (None, with `ci_note` saying why, when the
    draws do not spread), the posterior mean there (`value`); over `n` trials."""

    scales: dict[str, float]
    ratio: float | None
    ci: tuple[float, float] | None
    value: float
    n: int
    ci_note: str | None = None


def smoothed_optimum(trials: Sequence[FrozenTrial], space: SearchSpace, seed: int = 0) -> Optimum | None:
    """The optimum of a GP fitted to the COMPLETE trials (at most MAX_TRIALS of them, a seeded random subset
    beyond: 20,000 imported trials took 24 GB in one fit) over `space`'s axes; None when the space has no axes
    or fewer than `MIN_TRIALS` trials have every searched scale and a finite value. Deterministic for a seed."""
    axes = space.axes
    rows = tuple(
        (tuple(t.params[a.param] for a in axes), t.value)
        for t in complete_trials(trials)
        if t.value is not None and math.isfinite(t.value) and all(a.param in t.params for a in axes)
    )
    if not axes or len(rows) < MIN_TRIALS:
        return None
    if len(rows) > MAX_TRIALS:  # a GP fit is cubic in time and quadratic in memory: a seeded random subset
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), MAX_TRIALS, replace=False))
        rows = tuple(rows[i] for i in keep)
    bounds = tuple((a.name, a.low, a.high) for a in axes)
    return _fit(rows, bounds, space.ratio, space.direction, seed)


@functools.lru_cache(maxsize=64)
def _fit(
    rows: tuple[tuple[tuple[float, ...], float], ...],
    bounds: tuple[tuple[str, float, float], ...],
    ratio: tuple[str, str] | None,
    direction: str,
    seed: int,
) -> Optimum:
    """`smoothed_optimum` on hashable inputs, cached: a study page polls its status every few seconds and a
    fit takes ~1 s, while the trials change only when one ends."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    names = [name for name, _, _ in bounds]
    low = np.log10([lo for _, lo, _ in bounds])
    span = np.log10([hi for _, _, hi in bounds]) - low
    span[span == 0] = 1.0
    x = (np.log10([scales for scales, _ in rows]) - low) / span
    y = np.array([value for _, value in rows])
    sign = -1.0 if direction == "maximize" else 1.0
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF([0.3] * len(names), (0.03, 10.0)) + WhiteKernel(0.1, (1e-6, 10.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1, random_state=seed)
    with warnings.catch_warnings():  # a length at its bound is a flat axis, an answer, not a problem
        warnings.simplefilter("ignore")
        gp.fit(x, sign * y)
    tried = np.unique(np.array([scales for scales, _ in rows]), axis=0)  # repeats share their configuration's point
    candidates = (np.log10(tried) - low) / span
    mean = gp.predict(candidates)
    pick = int(np.argmin(mean))
    optimum_ratio = ci = note = None
    if ratio is not None:
        ia, ib = (names.index(name) for name in ratio)
        log_ratios = np.log10(tried[:, ia]) - np.log10(tried[:, ib])
        drawn = log_ratios[np.argmin(_posterior_draws(gp, candidates, seed), axis=0)]
        centre = np.quantile(drawn, 0.5, method="inverted_cdf")  # one draw's optimum: a tried ratio
        at_centre = np.flatnonzero(log_ratios == centre)
        pick = int(at_centre[np.argmin(mean[at_centre])])
        optimum_ratio = float(tried[pick, ia] / tried[pick, ib])
        low_q, high_q = np.quantile(drawn, [0.025, 0.975])
        if high_q - low_q > 1e-12:
            ci = (float(10**low_q), float(10**high_q))
        else:
            note = (
                f"interval not estimable: all {DRAWS} posterior draws put the optimum at this one tried ratio "
                f"({len(rows)} trials, {len(tried)} configurations: too few to bound it)"
            )
    scales = {name: float(tried[pick, i]) for i, name in enumerate(names)}
    return Optimum(scales, optimum_ratio, ci, float(sign * mean[pick]), len(rows), note)


def _posterior_draws(gp, candidates: np.ndarray, seed: int) -> np.ndarray:  # noqa: ANN001 - a fitted GP
    """(candidates, DRAWS) joint posterior draws: mean + L z with L L^T the posterior covariance (a Cholesky
    factor, jittered; scikit-learn's `sample_y` takes an SVD, ~100x slower at this size)."""
    mean, cov = gp.predict(candidates, return_cov=True)
    jitter = 1e-9 * max(float(np.trace(cov)) / len(cov), 1e-12)
    for _ in range(6):
        try:
            factor = np.linalg.cholesky(cov + jitter * np.eye(len(cov)))
            break
        except np.linalg.LinAlgError:
            jitter *= 100
    else:
        eigenvalues, vectors = np.linalg.eigh(cov)
        factor = vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    return mean[:, None] + factor @ np.random.default_rng(seed).standard_normal((len(cov), DRAWS))
