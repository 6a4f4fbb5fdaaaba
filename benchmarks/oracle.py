"""The oracle of a known-answer setting (issue 28): which scale ratio s_a / s_b is best, measured densely, and
which ratios cannot be told from it, per field draw and pooled over draws.

A setting is a study spec (default: the shipped quickstart) with `--set key=value` overrides, as `afpe run`
takes them (e.g. `--set task_options.lengths=[0.3,0.3,0.3]`); its two searched axes a, b are the spec's
`ratio`. The grid: overall scale g (log-spaced, `--g`) x ratio r = s_a / s_b (log2-spaced, `--log2-ratios`),
with s_a = g sqrt(r) and s_b = g / sqrt(r) (so g = sqrt(s_a s_b)); a cell whose scale falls outside its axis's
[low, high] is skipped. Every cell is trained with seeds k = 0 .. `--seeds`-1 (seed = pe_seed = k: the data
order, the model's init and the encoding's frequency draw) on every field draw f in `--fields`
(`task_options.data_seed` = f: the field, the cell split and the inputs), with the spec's trainer, each run's
value being what a study records (the best epoch's metric).

Rules (per field f):
- mean(g, r) = the mean over seeds; the profile of r is its best overall scale: g*(r) = argmax_g mean(g, r), and
  the profiled mean m(r) = mean(g*(r), r) with the seeds' values there (a max over g: biased upward alike for
  every r with the same number of g's).
- best ratio r* = argmax_r m(r).
- near-best set = {r : a one-sided Welch t-test of "r*'s mean > r's mean" over the seeds' values at their profiled
  g does not reject at 0.05} (r* included). Two values with zero spread on both sides: near-best iff equal means.
Pooled over fields: m(r) = max over g of the mean over fields and seeds; near-best = {r : a one-sided paired
t-test over fields of the per-field means (r* at its pooled g*, r at its pooled g*) does not reject at 0.05}
(fields are the unit: a field draw shifts every value alike, seeds within a field do not). With one field the
pooled result is that field's.

Output: a table per field and pooled (every profiled mean, best, near-best), the theory's prediction (the spec's
`prediction`) beside it, and `benchmarks/oracle/<setting>.json` (`<setting>-quick.json` with --quick), rewritten
after each field (`grid.fields`: those measured so far; `grid.fields_planned`): the setting, the grid, every
run's value, the per-field and pooled profiles, best and near-best sets, machine, load and seconds.
`load_oracle(name)` reads it back, so other benchmarks and tests compare against it without recomputing. The
setting's name: the spec's name, plus the overrides (e.g. `quickstart+lengths=0.3,0.3,0.3`), or `--name`.

Cost: a quickstart run takes ~9 s on one core; the default grid (3 g x 6 ratios, 17 cells within [0.1, 3]) x 3
seeds x 4 fields is 204 runs (~15 min on 2 idle cores); --quick (2 seeds, fields 0-1) is 68 runs (~5 min).

Prediction, written before the first full run at the quickstart (lengths 0.4, 0.2; theory: r = l0 / l1 = 2),
from a hand check at g = 0.4 with 2 seeds (field 0: r = 1/2/4/8 gave 0.755/0.838/0.831/0.771; field 1:
0.959/0.972/0.913/0.865; field 2: 0.920/0.959/0.965/0.958; field 3: 0.926/0.965/0.935/0.884): best ratio per
field 0: 2 (near-best {2, 4}); 1: 2 ({1, 2}); 2: 4 ({2, 4, 8}); 3: 2 ({2} or {1, 2, 4}); pooled: 2 ({2, 4}).
Prediction for the mirrored setting (lengths 0.2, 0.4: theory r = 0.5), written before its first run: the task
is the quickstart with d0 and d1 swapped (same grid, same range on both axes, the ratio inverted), so up to the
field draws (a data_seed draws another field there) its pooled oracle mirrors the quickstart's: best 0.5,
near-best {0.25, 0.5}; at least 3 of its 4 fields best at a ratio <= 1.

    python benchmarks/oracle.py --set 'task_options.lengths=[0.2,0.4,0.3]' --set prediction.ratio=0.5 \
        --set 'prediction.label=predicted l0 / l1 = 0.5' --log2-ratios=-4,-3,-2,-1,0,1 --name mirrored

Measured (2026-12-07, 2 cores, nothing else running; `oracle/quickstart.json`, `oracle/mirrored.json`):
- quickstart (192 runs, 1422 s): best per field 2 / 2 / 4 / 2, near-best {1, 2, 4, 8} / {1, 2} / {2, 4, 8, 16} /
  {2, 4}; pooled 2, near-best {2, 4}: every best as predicted, fields 0 and 2 flatter than predicted.
- mirrored (204 runs, 1502 s): best per field 0.125 / 0.25 / 1 / 2, pooled 1 with near-best {0.0625 .. 2}: the
  prediction failed (not a mirror: four field draws do not pin the pooled ratio here; 3 of 4 fields best <= 1 held).
- 13 of the quickstart's 24 per-field profiled g lie at an edge of the default g grid (a factor 2 wide): a profile
  needs a wider one (`--g`).

    python benchmarks/oracle.py [--quick] [SPEC] [--set KEY=VALUE ...] [--g 0.2828,0.4,0.5657]
        [--log2-ratios -1,0,1,2,3,4] [--seeds 3] [--fields 0,1,2,3] [--workers 2] [--name NAME] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from scipy import stats

from afpe.search import StudySpec, validate_spec
from afpe.search.driver import base_train_config
from afpe.search.shipped_specs import spec_path
from afpe.search.spec_loading import apply_overrides
from afpe.trainers import train

ORACLE_DIR = Path(__file__).resolve().parent / "oracle"
ALPHA = 0.05
DEFAULT_G = (0.4 / math.sqrt(2), 0.4, 0.4 * math.sqrt(2))
DEFAULT_LOG2_RATIOS = (-1, 0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Run:
    """One training run: field draw, overall scale g, ratio r, seed (= pe_seed) and its recorded value."""

    field: int
    g: float
    ratio: float
    seed: int
    value: float


@dataclass(frozen=True)
class Profiled:
    """Ratio r at its best overall scale g: the mean there and the values it is the mean of."""

    ratio: float
    g: float
    mean: float
    values: list[float]


@dataclass(frozen=True)
class FieldOracle:
    """One field's (or the pooled, `field` None) profile over ratios (ascending), best ratio and near-best set."""

    field: int | None
    profile: list[Profiled]
    best: float
    near_best: list[float]

    def profiled(self, ratio: float) -> Profiled:
        return next(p for p in self.profile if math.isclose(p.ratio, ratio))


@dataclass(frozen=True)
class Oracle:
    name: str
    setting: dict[str, Any]
    grid: dict[str, Any]
    runs: list[Run]
    fields: dict[int, FieldOracle]
    pooled: FieldOracle
    prediction: float | None
    machine: dict[str, Any]

    @property
    def log2_step(self) -> float:
        """The ratio grid's smallest step in log2 (its half is what `coverage.py` allows around a ratio)."""
        logs = sorted(self.grid["log2_ratios"])
        return min((b - a for a, b in zip(logs, logs[1:], strict=False)), default=1.0)


def _objective(config: dict[str, Any]) -> float:
    return float(train(config)["objective"])


def train_all(jobs: list[dict[str, Any]], workers: int) -> list[float]:
    """Each TrainConfig dict's objective (its best epoch's value, as a study records it), in order, over a fork
    pool of `workers` processes (Ray's start and daemons cost more than these ~9 s trials: `calibration.py`)."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_objective, jobs, chunksize=1)


def setting_name(spec_name: str, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The spec's name joined by '+' with each override's last key and value (`quickstart+lengths=0.3,0.3,0.3`)."""
    parts = [spec_name]
    for override in overrides:
        key, _, value = override.partition("=")
        parts.append(f"{key.split('.')[-1]}={re.sub(r'[^0-9A-Za-z.,_-]', '', value)}")
    return "+".join(parts)


def setting(spec: str = "quickstart", overrides: list[str] | tuple[str, ...] = ()) -> tuple[StudySpec, str]:
    """The setting's spec (a shipped name or a path, with `--set` overrides) and its `setting_name`."""
    data = yaml.safe_load(spec_path(spec).read_text()) or {}
    parsed = validate_spec(apply_overrides(data, list(overrides)), source=spec)
    if len(parsed.axes) != 2 or parsed.ratio is None:
        raise SystemExit(f"{spec}: the oracle needs exactly two searched axes and a `ratio`")
    return parsed, setting_name(parsed.name, overrides)


def cell_params(spec: StudySpec, g: float, ratio: float) -> dict[str, float] | None:
    """The params (s_a = g sqrt(r), s_b = g / sqrt(r)) of cell (g, r), or None when a scale leaves its range."""
    a, b = spec.ratio
    scales = {a: g * math.sqrt(ratio), b: g / math.sqrt(ratio)}
    axes = {axis.name: axis for axis in spec.axes}
    if any(not axes[name].low <= value <= axes[name].high for name, value in scales.items()):
        return None
    return {axes[name].param: value for name, value in scales.items()}


def measure(
    spec: StudySpec,
    gs: list[float],
    log2_ratios: list[float],
    seeds: int,
    fields: list[int],
    workers: int = 2,
) -> list[Run]:
    """Train every feasible cell x seed x field (see the module docstring)."""
    base = base_train_config(spec)
    keys, jobs = [], []
    for field in fields:
        for g in gs:
            for log2_ratio in log2_ratios:
                ratio = 2.0**log2_ratio
                params = cell_params(spec, g, ratio)
                if params is None:
                    continue
                for seed in range(seeds):
                    keys.append((field, g, ratio, seed))
                    jobs.append({
                        **base,
                        "task_options": {**spec.task_options, "data_seed": field},
                        "seed": seed,
                        "pe_seed": seed,
                        "scales": spec.scales_for(params),
                    })  # fmt: skip
    return [Run(*key, value) for key, value in zip(keys, train_all(jobs, workers), strict=True)]


def _profile(groups: dict[tuple[float, float], list[float]]) -> list[Profiled]:
    """Per ratio, the g with the best mean of its values (ratios ascending)."""
    best: dict[float, Profiled] = {}
    for (g, ratio), values in groups.items():
        mean = statistics.fmean(values)
        if ratio not in best or mean > best[ratio].mean:
            best[ratio] = Profiled(ratio, g, mean, list(values))
    return [best[ratio] for ratio in sorted(best)]


def _not_below(p_value: float, top: Profiled, other: Profiled) -> bool:
    """The one-sided test cannot reject `other` being as good as `top` (nan, zero spread: equal means)."""
    return top.mean == other.mean if math.isnan(p_value) else p_value >= ALPHA


def field_oracle(runs: list[Run], field: int) -> FieldOracle:
    """One field's profile, best ratio and near-best set (Welch, one-sided, over seeds)."""
    groups: dict[tuple[float, float], list[float]] = {}
    for run in runs:
        if run.field == field:
            groups.setdefault((run.g, run.ratio), []).append(run.value)
    profile = _profile(groups)
    top = max(profile, key=lambda p: p.mean)
    near = [
        p.ratio
        for p in profile
        if p is top
        or _not_below(stats.ttest_ind(top.values, p.values, equal_var=False, alternative="greater").pvalue, top, p)
    ]
    return FieldOracle(field, profile, top.ratio, near)


def pooled_oracle(runs: list[Run]) -> FieldOracle:
    """Pooled over fields: profile of the mean over fields and seeds; near-best by a one-sided paired t-test
    over fields of the per-field means (the profile's `values` are those per-field means, fields ascending)."""
    fields = sorted({run.field for run in runs})
    if len(fields) == 1:
        return field_oracle(runs, fields[0])
    cells: dict[tuple[float, float], dict[int, list[float]]] = {}
    for run in runs:
        cells.setdefault((run.g, run.ratio), {}).setdefault(run.field, []).append(run.value)
    groups = {
        key: [statistics.fmean(per_field[f]) for f in fields]
        for key, per_field in cells.items()
        if len(per_field) == len(fields)
    }
    profile = _profile(groups)
    top = max(profile, key=lambda p: p.mean)
    near = [
        p.ratio
        for p in profile
        if p is top or _not_below(stats.ttest_rel(top.values, p.values, alternative="greater").pvalue, top, p)
    ]
    return FieldOracle(None, profile, top.ratio, near)


def build_oracle(
    name: str, setting_data: dict[str, Any], grid: dict[str, Any], runs: list[Run], prediction: float | None,
    machine: dict[str, Any],
) -> Oracle:  # fmt: skip
    fields = sorted({run.field for run in runs})
    per_field = {field: field_oracle(runs, field) for field in fields}
    return Oracle(name, setting_data, grid, runs, per_field, pooled_oracle(runs), prediction, machine)


def oracle_json(oracle: Oracle) -> dict[str, Any]:
    """The oracle as JSON data (fields keyed by their data_seed as a string)."""
    return {
        "name": oracle.name,
        "setting": oracle.setting,
        "grid": oracle.grid,
        "prediction": oracle.prediction,
        "machine": oracle.machine,
        "fields": {str(f): asdict(o) for f, o in oracle.fields.items()},
        "pooled": asdict(oracle.pooled),
        "runs": [asdict(run) for run in oracle.runs],
    }


def _field_from(data: dict[str, Any]) -> FieldOracle:
    return FieldOracle(data["field"], [Profiled(**p) for p in data["profile"]], data["best"], data["near_best"])


def load_oracle(name: str = "quickstart", directory: Path = ORACLE_DIR) -> Oracle:
    """The committed oracle of setting `name` (`benchmarks/oracle/<name>.json`). Raises FileNotFoundError."""
    data = json.loads((directory / f"{name}.json").read_text())
    return Oracle(
        data["name"],
        data["setting"],
        data["grid"],
        [Run(**run) for run in data["runs"]],
        {int(f): _field_from(o) for f, o in data["fields"].items()},
        _field_from(data["pooled"]),
        data["prediction"],
        data["machine"],
    )


def table(oracle: Oracle) -> list[str]:
    """One line per field and one pooled: every profiled mean (its g), the best ratio and the near-best set."""
    lines = []
    for label, fo in [*((f"field {f}", o) for f, o in oracle.fields.items()), ("pooled", oracle.pooled)]:
        means = "  ".join(f"r={p.ratio:g}: {p.mean:.3f} (g={p.g:.3g})" for p in fo.profile)
        near = ", ".join(f"{r:g}" for r in fo.near_best)
        lines.append(f"{label:8s} best r={fo.best:g}  near-best {{{near}}}  |  {means}")
    if oracle.prediction is not None:
        lines.append(f"theory: r = {oracle.prediction:g}; oracle (pooled): r = {oracle.pooled.best:g}")
    return lines


def _floats(text: str) -> list[float]:
    return [float(item) for item in text.split(",") if item.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="quickstart", help="a spec file or a shipped spec's name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quick", action="store_true", help="2 seeds x fields 0-1 (<= 10 min on 2 cores)")
    parser.add_argument("--g", type=_floats, default=list(DEFAULT_G), help="overall scales, comma-separated")
    parser.add_argument("--log2-ratios", type=_floats, default=list(DEFAULT_LOG2_RATIOS), help="log2 of r")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 3, quick 2)")
    parser.add_argument("--fields", type=lambda t: [int(x) for x in _floats(t)], default=None, help="data_seeds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--name", default=None, help="the setting's name (default: from the spec and --set)")
    parser.add_argument("--out-dir", type=Path, default=ORACLE_DIR)
    args = parser.parse_args()
    spec, name = setting(args.spec, args.overrides)
    name = args.name or name
    seeds = args.seeds or (2 if args.quick else 3)
    fields = args.fields or ([0, 1] if args.quick else [0, 1, 2, 3])
    setting_data = {
        "spec": args.spec,
        "overrides": args.overrides,
        "task": spec.task,
        "task_options": spec.task_options,
        "trainer": spec.trainer.model_dump(mode="json"),
        "ratio": list(spec.ratio),
        "axes": [axis.model_dump(mode="json") for axis in spec.axes],
    }
    prediction = spec.prediction.ratio if spec.prediction is not None else None
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}{'-quick' if args.quick else ''}.json"
    started, runs = time.perf_counter(), []
    for done, field in enumerate(fields, 1):  # the file rewritten after each field: an interrupted run keeps them
        runs += measure(spec, args.g, args.log2_ratios, seeds, [field], args.workers)
        seconds = time.perf_counter() - started
        machine = {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "load_at_end": [round(x, 2) for x in os.getloadavg()],
            "seconds": round(seconds, 1),
        }
        grid = {"g": args.g, "log2_ratios": args.log2_ratios, "seeds": seeds, "fields": fields[:done]}
        oracle = build_oracle(name, setting_data, {**grid, "fields_planned": fields}, runs, prediction, machine)
        path.write_text(json.dumps(oracle_json(oracle), indent=1) + "\n")
        print(f"field {field} done: {seconds:.0f} s, load {machine['load_at_end']}", flush=True)
    print(
        f"oracle {name}: {len(runs)} runs ({len(args.g)} g x {len(args.log2_ratios)} ratios, feasible cells only, "
        f"x {seeds} seeds x fields {fields}), {seconds:.0f} s, load {machine['load_at_end']}"
    )
    for line in table(oracle):
        print(line)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
