"""Coverage and width of single searches against the oracle (issue 28): how often one search's answer lands
near the oracle's best ratio, and how often its 95 % interval reaches the oracle's near-best set.

Per setting (a spec plus `--set` overrides, named as `oracle.py` names it, whose committed oracle
`benchmarks/oracle/<setting>.json` is read with `oracle.load_oracle`), `--searches` N independent searches run
under a protocol, all on one field draw the oracle measured (`--field`, `task_options.data_seed`; default 0,
the quickstart's):
- `shipped`: the spec's own search, as `afpe run` runs it: `n_trials` trials, the first of them the spec's priors
  when `prior` is on (`prior_results.enqueue_priors`), the rest draws of the spec's sampler, then the repeats
  `repeats.plan_repeats` plans (top_k configurations x seeds, each with `repeats.repeat_seeds`);
- `paper`: 50 random trials, no priors, no repeats.
Search i has seed = pe_seed = `--first-seed` + i and the sampler seeded as a study with that seed
(`samplers.make_sampler`), so search 0 at the default is the quickstart itself. Trials run in a fork pool
(`oracle.train_all`: the same TrainConfig a study's trial gets, its value the best epoch's metric) instead
of Ray Tune; a random sampler's draws do not depend on results, so each phase's trials are asked first and
told after, as in `calibration.py`; an adaptive sampler's (`--set sampler=tpe` or `gp`) are asked `--workers` at a
time, each batch told before the next is asked, as a study running that many trials side by side (one that waits
for the slower of each pair: a little slower than Ray Tune's refill). Searches run one after another; the record is
rewritten after each.

A search's answer is what a user sees (`summary.summarize_trials`): the ratio of the scales to use
(`summary.scales_to_use`: the smoothed optimum's, else the best configuration's) and the smoothed optimum's 95 %
ratio interval [lo, hi] (none when there is no optimum or its draws coincide). Scores, against the oracle's
field f (best ratio r*, near-best set R, ratio grid step h in log2):
- within 2x: |log2(answer / r*)| <= 1;
- covered: the interval, widened by half a grid step on each side, holds a near-best ratio:
  log2(lo) - h/2 <= log2(r) <= log2(hi) + h/2 for some r in R (the oracle measures only its grid, so a ratio
  within half a step of a near-best grid ratio is as near-best as the grid can tell). A search without an
  interval counts as not covered (the count is printed);
- width: log10(hi / lo) in decades, the median over the searches that gave an interval.
The searches' trials and answers are written to `benchmarks/coverage/<setting>-<protocol>-field<f>.json`
first (`--rescore FILE` scores such a record again, against the oracle as committed now, running nothing), then
the per-search lines and the last line `coverage: within_2x=<k>/<n> covered=<k>/<n> width=<decades>`.
`--rescore FILE --reanswer` first answers each search again from its recorded trials with the estimator as the
code stands now (the record's spec and overrides, else the command line's): an estimator change is scored on
the same searches, before against after, without training anything again.

Prediction, written before the first run (quickstart, shipped protocol, 10 searches, field 0), from the
quickstart's searches at seeds 0-2 (smoothed optimum 5.66 [2.13, 5.9], 3.0, 4.1) and the hand check (field 0 best
r = 2, with 4 within 0.007 r2): `coverage: within_2x=5/10 covered=7/10 width=0.50`.
Measured (2026-12-07, 1719 s on 2 cores, nothing else running; the protocol then ran no priors, so its record is
`quickstart+prior=false-shipped-field0.json`, what `--set prior=false --oracle quickstart` writes now):
`coverage: within_2x=7/10 covered=10/10 width=0.71`. Field 0's oracle turned out flat (near-best {1, 2, 4, 8}), so
covering it is easy; the intervals are wider than predicted (0.71 decades, a factor 5 between their ends).

Prediction for the sampler comparison (issue 28 item 4; written 2026-12-07 before any run with `tpe` or `gp`):
quickstart, shipped protocol as it stands (priors on: 3 enqueued trials, then 13 drawn, then 3 x 2 repeats), 10
searches on field 0 each, `--set sampler=random|tpe|gp`. Both adaptive samplers draw their first 10 trials at random
(Optuna's default), so only the last 3 of 16 trials differ from a random search: the differences are small.
random `within_2x=7/10 covered=10/10 width=0.70`, tpe `within_2x=7/10 covered=10/10 width=0.65`, gp
`within_2x=8/10 covered=10/10 width=0.55` (GP's last trials cluster near the surface's optimum and pin it a
little more); no sampler's within-2x count differs from random's by more than 2.

    python benchmarks/coverage.py [--quick] [SPEC] [--set KEY=VALUE ...] [--protocol shipped|paper]
        [--searches 10] [--field 0] [--first-seed 0] [--workers 2] [--oracle NAME] [--oracle-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from afpe.search import StudySpec, validate_spec
from afpe.search.analysis import REPEAT_OF
from afpe.search.driver import base_train_config
from afpe.search.prior_results import enqueue_priors
from afpe.search.repeats import plan_repeats
from afpe.search.samplers import make_sampler, search_distributions
from afpe.search.summary import summarize_trials

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import ORACLE_DIR, FieldOracle, Oracle, load_oracle, setting, train_all  # noqa: E402 - a sibling script

COVERAGE_DIR = Path(__file__).resolve().parent / "coverage"
PAPER_TRIALS = 50


@dataclass(frozen=True)
class SearchAnswer:
    """One search's answer: the ratio of the scales to use, where it comes from, the smoothed optimum's 95 %
    interval (None without one, `note` saying why), the best configuration's ratio and the tied ratio range."""

    seed: int
    ratio: float
    source: str
    interval: tuple[float, float] | None
    note: str | None
    best_ratio: float | None
    tied_range: tuple[float, float] | None


def within_2x(ratio: float, oracle: FieldOracle) -> bool:
    """The answer is within a factor 2 of the oracle's best ratio."""
    return abs(math.log2(ratio / oracle.best)) <= 1.0


def covered(interval: tuple[float, float] | None, oracle: FieldOracle, log2_step: float) -> bool:
    """The interval, widened by half the oracle's grid step (log2) each side, holds a near-best ratio; no
    interval is not covered."""
    if interval is None:
        return False
    low, high = math.log2(interval[0]) - log2_step / 2, math.log2(interval[1]) + log2_step / 2
    return any(low <= math.log2(ratio) <= high for ratio in oracle.near_best)


def width(interval: tuple[float, float]) -> float:
    """The interval's width in decades, log10(high / low)."""
    return math.log10(interval[1] / interval[0])


def search_spec(spec: StudySpec, protocol: str, seed: int, field: int) -> StudySpec:
    """Search `seed`'s spec under `protocol` (module docstring) on field draw `field`."""
    data = spec.model_dump(mode="json", exclude_unset=True)
    data |= {"name": f"{spec.name}-{protocol}-{seed}", "seed": seed, "pe_seed": seed}
    data["task_options"] = {**spec.task_options, "data_seed": field}
    if protocol == "paper":
        data |= {"n_trials": PAPER_TRIALS, "sampler": "random", "repeats": None, "prior": False}
    return validate_spec(data)


def run_search(spec: StudySpec, workers: int = 2) -> list[FrozenTrial]:
    """The spec's search trials (its priors first with `prior`; asked at once, trained, told), then the repeats
    `plan_repeats` plans."""
    study = optuna.create_study(direction=spec.direction, sampler=make_sampler(spec, offset=0))
    distributions = search_distributions(spec)
    if spec.prior:
        enqueue_priors(study, spec.search_space().priors, spec.n_trials)
    batch = spec.n_trials if spec.sampler == "random" else workers  # an adaptive sampler learns between batches
    for start in range(0, spec.n_trials, batch):
        asked = [study.ask(distributions) for _ in range(min(batch, spec.n_trials - start))]
        jobs = [{**base_train_config(spec), "scales": spec.scales_for(t.params)} for t in asked]
        for trial, value in zip(asked, train_all(jobs, workers), strict=True):
            study.tell(trial, value)
    asked, jobs = [], []
    for repeat in plan_repeats(spec, study.get_trials(deepcopy=False)):
        attrs = {REPEAT_OF: repeat.repeat_of, "repeat": repeat.index, "seed": repeat.seed, "pe_seed": repeat.pe_seed}
        study.enqueue_trial(repeat.params, user_attrs=attrs)
        asked.append(study.ask(distributions))
        jobs.append({
            **base_train_config(spec),
            "seed": repeat.seed,
            "pe_seed": repeat.pe_seed,
            "scales": spec.scales_for(repeat.params),
        })  # fmt: skip
    for trial, value in zip(asked, train_all(jobs, workers) if jobs else [], strict=True):
        study.tell(trial, value)
    return study.get_trials(deepcopy=False)


def answer(spec: StudySpec, trials: list[FrozenTrial]) -> SearchAnswer:
    """What `afpe status` would answer for these trials (module docstring)."""
    summary = summarize_trials(spec.name, trials, spec.search_space())
    if summary.use is None or summary.use.ratio is None or summary.answer is None:
        raise RuntimeError(f"{spec.name}: no answer (no COMPLETE trial with a ratio)")
    optimum = summary.optimum
    interval = optimum.ci if optimum is not None else None
    note = summary.optimum_note if optimum is None else optimum.ci_note
    return SearchAnswer(
        spec.seed,
        summary.use.ratio,
        summary.use.source,
        interval,
        note,
        summary.answer.best.ratio,
        summary.answer.ratio_range,
    )


def _trial_json(trial: FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "params": trial.params, "value": trial.value, "attrs": trial.user_attrs}


def _answer_from(data: dict[str, Any]) -> SearchAnswer:
    tuples = {key: tuple(data[key]) if data[key] is not None else None for key in ("interval", "tied_range")}
    return SearchAnswer(**{**data, **tuples})


def recorded_trials(spec: StudySpec, trials: list[dict[str, Any]]) -> list[FrozenTrial]:
    """A search's trials from its record (`_trial_json`), numbered in their recorded order as the study did."""
    distributions = search_distributions(spec)
    study = optuna.create_study(direction=spec.direction)
    study.add_trials([
        optuna.trial.create_trial(
            params=t["params"], distributions=distributions, value=t["value"], user_attrs=t["attrs"]
        )
        for t in trials
    ])  # fmt: skip
    return study.get_trials(deepcopy=False)


def reanswer(record: dict[str, Any], spec: StudySpec) -> dict[str, Any]:
    """The record with each search's answer derived again from its trials (`answer` as the code stands now)."""
    answers = []
    for old, trials in zip(record["answers"], record["trials"], strict=True):
        search = search_spec(spec, record["protocol"], old["seed"], record["field"])
        answers.append(asdict(answer(search, recorded_trials(search, trials))))
    return {**record, "answers": answers}


def score(record: dict[str, Any], oracle: Oracle) -> list[str]:
    """The per-search lines and the last line `coverage: ...` of a run's record against the oracle."""
    field, answers = record["field"], [_answer_from(a) for a in record["answers"]]
    if field not in oracle.fields:
        raise SystemExit(f"the oracle {oracle.name} measured fields {sorted(oracle.fields)}, not {field}")
    truth, n = oracle.fields[field], len(answers)
    done = "" if n == record["searches"] else f" (of {record['searches']} planned: an interrupted run)"
    near = ", ".join(f"{r:g}" for r in truth.near_best)
    lines = [
        f"coverage {record['setting']}, protocol {record['protocol']}, field {field}: {n} searches{done}, "
        f"{record['runs']} runs, {record['seconds']:.0f} s; oracle {oracle.name}: best r={truth.best:g}, "
        f"near-best {{{near}}}, grid step 2^{oracle.log2_step:g}"
    ]
    for a in answers:
        ci = f"95% CI [{a.interval[0]:.3g}, {a.interval[1]:.3g}]" if a.interval else f"no interval ({a.note})"
        tied = f"[{a.tied_range[0]:.3g}, {a.tied_range[1]:.3g}]" if a.tied_range else "none"
        lines.append(
            f"search seed {a.seed}: use r={a.ratio:.3g} ({a.source}), {ci}; best configuration r={a.best_ratio:.3g}, "
            f"tied {tied}; within_2x={'yes' if within_2x(a.ratio, truth) else 'no'} "
            f"covered={'yes' if covered(a.interval, truth, oracle.log2_step) else 'no'}"
        )
    widths = [width(a.interval) for a in answers if a.interval]
    lines.append(f"searches without an interval (not covered): {n - len(widths)}/{n}")
    k_2x = sum(within_2x(a.ratio, truth) for a in answers)
    k_cov = sum(covered(a.interval, truth, oracle.log2_step) for a in answers)
    median = f"{statistics.median(widths):.2f}" if widths else "nan"
    return [*lines, f"coverage: within_2x={k_2x}/{n} covered={k_cov}/{n} width={median}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="quickstart", help="a spec file or a shipped spec's name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--protocol", choices=("shipped", "paper"), default="shipped")
    parser.add_argument("--quick", action="store_true", help="3 searches")
    parser.add_argument("--searches", type=int, default=None, help="independent searches (default 10, quick 3)")
    parser.add_argument("--field", type=int, default=0, help="the field draw (data_seed) the oracle measured")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--oracle", default=None, help="the oracle's setting name (default: the setting's)")
    parser.add_argument("--oracle-dir", type=Path, default=ORACLE_DIR)
    parser.add_argument("--out-dir", type=Path, default=COVERAGE_DIR)
    parser.add_argument("--rescore", type=Path, default=None, help="score a written record again, running nothing")
    parser.add_argument("--reanswer", action="store_true", help="with --rescore: answer again from the trials")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.reanswer and args.rescore is None:
        parser.error("--reanswer answers a recorded run again: give it with --rescore FILE")
    if args.rescore is not None:
        record = json.loads(args.rescore.read_text())
        if args.reanswer:
            spec = setting(record.get("spec", args.spec), record.get("overrides", args.overrides))[0]
            record = reanswer(record, spec)
        print("\n".join(score(record, load_oracle(args.oracle or record["oracle"], args.oracle_dir))))
        return
    spec, name = setting(args.spec, args.overrides)
    n = args.searches or (3 if args.quick else 10)
    specs = [search_spec(spec, args.protocol, args.first_seed + i, args.field) for i in range(n)]
    started = time.perf_counter()
    record: dict[str, Any] = {
        "setting": name,
        "spec": args.spec,
        "overrides": args.overrides,
        "oracle": args.oracle or name,
        "protocol": args.protocol,
        "field": args.field,
        "searches": n,
        "runs": 0,
        "answers": [],
        "trials": [],
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}-{args.protocol}-field{args.field}.json"
    for search in specs:  # one at a time, the record rewritten after each: an interrupted run keeps what it did
        trials = run_search(search, args.workers)
        record["answers"].append(asdict(answer(search, trials)))
        record["trials"].append([_trial_json(t) for t in trials])
        record["runs"] += len(trials)
        record["seconds"] = round(time.perf_counter() - started, 1)
        record["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        path.write_text(json.dumps(record, indent=1) + "\n")  # `--rescore` reads it again
        print(f"search seed {search.seed} done, {record['seconds']:.0f} s (load {record['load_at_end']})", flush=True)
    print(f"written: {path}")
    print("\n".join(score(record, load_oracle(record["oracle"], args.oracle_dir))))


if __name__ == "__main__":
    main()
