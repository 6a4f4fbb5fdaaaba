"""Priors: the scales a user could set from a task's geometry without searching, run as a study's first trials
(`StudySpec.prior`), so that its answer says what searching gained over them (`prior_results.py`).

Geometry (`TaskInfo` with the spec's patch): per grid axis j the token count n_j, the token spacing h_j (voxel
spacing v_j · patch_j, in the unit u_j) and the extent between the first and last token centres E_j = (n_j − 1) h_j.
With normalized positions (p_j = i / (n_j − 1), `linspace(0, 1)`) a token at x_j = i h_j (in units) sits at
p_j = x_j / E_j, so the Fourier kernel E[γ(p)·γ(q)] ∝ exp(−2π² Σ_j s_j² Δp_j²) = exp(−2π² Σ_j (s_j / E_j)² Δx_j²).

Each rule first gives σ_j, the scale of grid axis j for normalized positions:
- `extent` (similarity isotropic in the task's unit): the same decay per unit on every axis, s_j / E_j equal, so
  σ_j ∝ E_j. A shape only, no level. (With the field of view n_j h_j instead of E_j, the published (1, 1, 4) volume
  would give ratio 1; its 8 x 8 x 4 tokens span E = (14, 14, 12) voxels, so the exact rule gives 12 / 14.)
- `grid/max` (the AFPE authors' default `variance_factors`): σ_j = n_j / max_k n_k.
- `0.5/anisotropy` (the AFPE authors' OrganMNIST3D script): σ_j = 0.5 / a_j, a_j = v_j / min_k v_k (the voxel
  spacing in units of the finest; the stride of a simulated anisotropy).

Positions. Physical positions (`trainer.positions: physical`, p_j = i h_j / L, L the reference length) give the grid
the same table as normalized ones when s_j = σ_j L / E_j, so every rule keeps its table there: `extent` becomes equal
scales (physical positions already measure every axis in one unit: "isotropic in mm" is s_j equal), the authors'
rules the table they would have built on `linspace` positions. A grid axis with one token has no extent: no rule
sets it (its scale changes nothing).

Onto the searched axes. A searched axis driving several grid axes takes the geometric mean of their values (those
with more than one token); grid axes no searched axis drives keep their `fixed` scale. The authors' rules are
absolute scales, kept at their published level; `extent` is placed at the geometric centre of the search: the
geometric mean of its scales equals that of the searched axes' centres √(low_a high_a). A searched axis no rule
sets takes its centre. Every scale is then clipped to its axis's [low, high] (named in `Prior.clipped`) and rounded
to 6 significant digits. Rules giving the same configuration (e.g. `extent` centred at 1 and `grid/max` on an
isotropic grid) are one prior with all their names, run once.

When there are none (`Priors.note` says why): an encoding without per-axis scales, fewer than two searched axes
with more than one token (the rules set ratios between axes), a task not registered here. `extent` and
`0.5/anisotropy` compare lengths across axes: they are left out when the grid axes' units differ (e.g. frames and
pixels), saying so."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The trial user attr marking a prior: the list of its rules' names.
PRIOR_KEY = "prior"
#: The rules in words, by name (`Prior.names`), in the order they are enqueued.
RULES = {
    "extent": "scales proportional to each axis's extent (n - 1) x token spacing: similarity isotropic in the "
    "task's unit, placed at the geometric centre of the searched range",
    "grid/max": "the AFPE authors' default: s = grid / max(grid)",
    "0.5/anisotropy": "the AFPE authors' OrganMNIST3D rule: s = 0.5 / anisotropy (voxel spacing / the finest)",
}
RELATIVE_RULES = frozenset({"extent"})  # shapes only: placed at the search's geometric centre
LENGTH_RULES = ("extent", "0.5/anisotropy")  # compare lengths across axes: need one unit
DIGITS = 6


class SearchedAxis(Protocol):
    """What a prior needs of a searched axis (`spec.AxisSpec`)."""

    name: str
    grid_axes: list[int]
    low: float
    high: float

    @property
    def param(self) -> str: ...


@dataclass(frozen=True)
class Prior:
    """One prior configuration: the rules that give it (`names`, keys of `RULES`), its trial params (s_<axis> of
    the searched axes) and the params clipped to their axis's range."""

    names: tuple[str, ...]
    params: dict[str, float]
    clipped: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """'extent = grid/max'."""
        return " = ".join(self.names)


@dataclass(frozen=True)
class RuleValues:
    """Each applicable rule's scale per grid axis for the spec's positions (None on an axis with one token), and
    why rules were left out (None when none were)."""

    values: dict[str, tuple[float | None, ...]] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class Priors:
    """The prior configurations of a search space, and why there are none or fewer than the rules (else None)."""

    priors: tuple[Prior, ...] = ()
    note: str | None = None


def rule_values(
    grid: Sequence[int],
    token_spacing: Sequence[float],
    patch: Sequence[int],
    units: Sequence[str],
    positions: str,
    reference_length: float,
) -> RuleValues:
    """The rules' scales per grid axis (module docstring): σ_j, carried to physical positions as σ_j L / E_j with
    L = `reference_length` (in the task's units). ValueError for a geometry that is not positive."""
    if any(n < 1 for n in grid) or any(not h > 0 for h in token_spacing) or any(p < 1 for p in patch):
        raise ValueError(f"a geometry needs tokens, spacing and patch > 0, got {grid}, {token_spacing}, {patch}")
    extents = [(n - 1) * h for n, h in zip(grid, token_spacing, strict=True)]
    voxel = [h / p for h, p in zip(token_spacing, patch, strict=True)]
    sigma = {
        "extent": extents,
        "grid/max": [n / max(grid) for n in grid],
        "0.5/anisotropy": [0.5 * min(voxel) / v for v in voxel],
    }
    note = None
    if len(set(units)) > 1:
        sigma = {name: values for name, values in sigma.items() if name not in LENGTH_RULES}
        note = f"{' and '.join(LENGTH_RULES)} left out: the grid axes' units differ ({', '.join(units)})"
    values = {}
    for name, normalized in sigma.items():
        if positions == "physical":
            normalized = [s * reference_length / e if e > 0 else s for s, e in zip(normalized, extents, strict=True)]
        values[name] = tuple(s if e > 0 else None for s, e in zip(normalized, extents, strict=True))
    return RuleValues(values, note)


def place_priors(rules: RuleValues, axes: Sequence[SearchedAxis], per_axis: bool) -> Priors:
    """The prior configurations of the searched `axes` from the rules' per-grid-axis values (module docstring);
    `per_axis`: whether the encoding has per-axis scales."""
    if not per_axis:
        return Priors(note="none: the encoding has no per-axis scales (the rules set ratios between axes)")
    if len(axes) < 2:
        return Priors(note="none: one searched axis (the rules set ratios between searched axes)")
    if not rules.values:
        return Priors(note=rules.note or "none: no rule applies")
    centres = [math.sqrt(axis.low * axis.high) for axis in axes]
    placed: dict[tuple, tuple[list[str], dict[str, float], tuple[str, ...]]] = {}
    for name, per_grid in rules.values.items():
        raw = [_geometric_mean(per_grid[g] for g in axis.grid_axes) for axis in axes]
        set_by_rule = [i for i, value in enumerate(raw) if value is not None]
        if len(set_by_rule) < 2:
            return Priors(note="none: fewer than two searched axes span more than one token")
        level = 1.0
        if name in RELATIVE_RULES:
            level = _geometric_mean(centres[i] for i in set_by_rule) / _geometric_mean(raw[i] for i in set_by_rule)
        params, clipped = {}, []
        for axis, value, centre in zip(axes, raw, centres, strict=True):
            scale = centre if value is None else level * value
            inside = min(max(scale, axis.low), axis.high)
            if inside != scale:
                clipped.append(axis.param)
            params[axis.param] = float(f"{inside:.{DIGITS}g}")
        key = tuple(sorted(params.items()))
        if key in placed:
            placed[key][0].append(name)
        else:
            placed[key] = ([name], params, tuple(clipped))
    priors = tuple(Prior(tuple(names), params, clipped) for names, params, clipped in placed.values())
    return Priors(priors, rules.note)


def _geometric_mean(values: Iterable[float | None]) -> float | None:
    """exp(mean(log v)) over the values that are not None; None when there are none."""
    logs = [math.log(v) for v in values if v is not None]
    return math.exp(sum(logs) / len(logs)) if logs else None


def names_of(attrs: dict[str, Any]) -> tuple[str, ...]:
    """The rules' names a trial's user attrs mark it a prior of (empty: not a prior)."""
    value = attrs.get(PRIOR_KEY)
    return tuple(str(name) for name in value) if isinstance(value, list) else ()


def to_run(priors: Sequence[Prior], finished_names: Iterable[tuple[str, ...]]) -> list[Prior]:
    """The priors no finished search trial ran (`finished_names`: the rules' names of each such trial): a prior a
    dead driver left unfinished is run again on resume, a finished one never."""
    done = {name for names in finished_names for name in names}
    return [prior for prior in priors if not done & set(prior.names)]


def plan_line(on: bool, priors: Priors) -> str:
    """One line for the start of a run: the priors it runs first, or why none."""
    if not on:
        return "priors: off (the spec's `prior` is false)"
    if not priors.priors:
        return f"priors: {priors.note}"
    shown = ", ".join(f"{p.label} ({', '.join(f'{k}={v:.4g}' for k, v in p.params.items())})" for p in priors.priors)
    return f"priors (the first trials, unless a finished trial ran them): {shown}" + (
        f"; {priors.note}" if priors.note else ""
    )
