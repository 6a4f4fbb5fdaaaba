"""The committed oracle (benchmarks/oracle/quickstart.json) agrees with its own runs under the oracle's rules,
the coverage scores judge intervals against it, and both scripts run end to end in a tiny setting."""

from __future__ import annotations

import importlib.util
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    """A benchmark script as a module (`bench_<name>`: `coverage` is also a testing package's name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


oracle_module, coverage = load("oracle"), load("coverage")


COMMITTED = sorted((BENCHMARKS / "oracle").glob("*.json"))
NONE_YET = pytest.param(None, marks=pytest.mark.skip(reason="no oracle committed under benchmarks/oracle/ yet"))


def check_consistent(oracle) -> None:  # noqa: ANN001 - the benchmark's Oracle
    """The stored profiles, best ratios and near-best sets are what the oracle's rules give on its stored runs."""
    assert oracle.fields and set(oracle.fields) == set(oracle.grid["fields"])
    for field, result in oracle.fields.items():
        runs = [run for run in oracle.runs if run.field == field]
        assert len({run.seed for run in runs}) == oracle.grid["seeds"]
        for profiled in result.profile:  # each profiled mean is the best over g of the seeds' means
            means = {
                run.g: statistics.fmean(r.value for r in runs if r.g == run.g and r.ratio == profiled.ratio)
                for run in runs
                if run.ratio == profiled.ratio
            }
            assert profiled.mean == pytest.approx(max(means.values())) == pytest.approx(means[profiled.g])
        assert result.profiled(result.best).mean == max(p.mean for p in result.profile)
        assert result.best in result.near_best and set(result.near_best) <= {p.ratio for p in result.profile}
        assert oracle_module.field_oracle(oracle.runs, field) == result, "the rules give the stored answer"
    assert oracle_module.pooled_oracle(oracle.runs) == oracle.pooled
    assert oracle.pooled.best in oracle.pooled.near_best


@pytest.mark.parametrize("path", COMMITTED or [NONE_YET], ids=lambda p: getattr(p, "stem", "none"))
def test_a_committed_oracle_follows_from_its_runs(path: Path) -> None:
    check_consistent(oracle_module.load_oracle(path.stem, path.parent))


def made_up_oracle():  # noqa: ANN201 - the benchmark's Oracle
    """Field 0, g 0.4 and 0.8, ratios 1..8, 3 seeds: r = 2 best (0.90 at g 0.4), r = 4 a hair below (0.895, seed
    spread 0.01), r = 1 and 8 far below; every g = 0.8 value 0.1 lower."""
    means = {1.0: 0.80, 2.0: 0.90, 4.0: 0.895, 8.0: 0.70}
    runs = [
        oracle_module.Run(0, g, ratio, seed, mean - (0.1 if g == 0.8 else 0.0) + (seed - 1) * 0.01)
        for g in (0.4, 0.8)
        for ratio, mean in means.items()
        for seed in range(3)
    ]
    grid = {"g": [0.4, 0.8], "log2_ratios": [0, 1, 2, 3], "seeds": 3, "fields": [0]}
    return oracle_module.build_oracle("made-up", {}, grid, runs, 2.0, {})


def test_the_oracle_rules_on_made_up_runs() -> None:
    oracle = made_up_oracle()
    check_consistent(oracle)
    field = oracle.fields[0]
    assert field.best == 2.0 and field.near_best == [2.0, 4.0] and {p.g for p in field.profile} == {0.4}
    assert oracle.pooled == field and oracle.log2_step == 1.0
    broken = oracle_module.Oracle(
        **{**oracle.__dict__, "fields": {0: oracle_module.FieldOracle(0, field.profile, 4.0, [4.0])}}
    )
    with pytest.raises(AssertionError):
        check_consistent(broken)


def check_scores(truth, step: float) -> None:  # noqa: ANN001 - a FieldOracle
    best = truth.best
    assert (
        coverage.within_2x(best, truth) and coverage.within_2x(2 * best, truth) and coverage.within_2x(best / 2, truth)
    )
    assert not coverage.within_2x(2.01 * best, truth) and not coverage.within_2x(best / 2.01, truth)
    assert coverage.covered((best, best), truth, step)
    top, bottom = max(truth.near_best), min(truth.near_best)
    reach = 2 ** (step / 2)  # half a grid step
    assert coverage.covered((top * reach * 0.999, top * reach * 4), truth, step)
    assert not coverage.covered((top * reach * 1.001, top * reach * 4), truth, step)
    assert coverage.covered((bottom / reach / 4, bottom / reach * 1.001), truth, step)
    assert not coverage.covered((bottom / reach / 4, bottom / reach * 0.999), truth, step)
    assert not coverage.covered(None, truth, step), "no interval is not covered"


def test_coverage_scores_hand_made_answers_against_an_oracle() -> None:
    oracle = made_up_oracle()
    check_scores(oracle.fields[0], oracle.log2_step)
    assert coverage.covered((5.0, 8.0), oracle.fields[0], 1.0)  # log2 5 - 1/2 = 1.82 reaches 4 (log2 2)
    assert not coverage.covered((6.0, 8.0), oracle.fields[0], 1.0)  # 2.08 does not
    assert coverage.width((0.5, 5.0)) == pytest.approx(1.0)


@pytest.mark.parametrize("path", COMMITTED or [NONE_YET], ids=lambda p: getattr(p, "stem", "none"))
def test_coverage_scores_hand_made_answers_against_a_committed_oracle(path: Path) -> None:
    oracle = oracle_module.load_oracle(path.stem, path.parent)
    for truth in oracle.fields.values():
        check_scores(truth, oracle.log2_step)


def test_covered_needs_a_near_best_ratio_not_just_the_span() -> None:
    """An interval between two near-best ratios that reaches neither (by more than half a step) is not covered."""
    truth = oracle_module.FieldOracle(0, [], best=1.0, near_best=[1.0, 16.0])
    assert not coverage.covered((2.9, 5.5), truth, 1.0)  # log2: 1.54 .. 2.46, widened 1.04 .. 2.96
    assert coverage.covered((1.4, 5.5), truth, 1.0)  # widened from 0.49: reaches 1 (log2 0)


def test_calibration_finds_an_oracle_by_the_name_oracle_py_gives_it(tmp_path: Path) -> None:
    calibration = load("calibration")
    name = oracle_module.setting("quickstart", ["task_options.lengths=[0.3, 0.3, 0.3]"])[1]
    assert name == "quickstart+lengths=0.3,0.3,0.3" and oracle_module.setting("quickstart")[1] == "quickstart"
    (tmp_path / f"{name}.json").write_text("{}")
    assert calibration.oracle_of((0.3, 0.3), tmp_path) == name
    assert calibration.oracle_of((0.4, 0.2), tmp_path) is None
    (tmp_path / "quickstart.json").write_text("{}")
    assert calibration.oracle_of((0.4, 0.2), tmp_path) == "quickstart"


def run(script: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_oracle_and_coverage_run_in_a_tiny_setting(tmp_path: Path) -> None:
    """One-epoch runs of a small field: an oracle of 2 ratios x 2 seeds written and read back by a shipped-protocol
    coverage run of one 6-trial search with one configuration repeated twice."""
    tiny = ["--set", "trainer.epochs=1", "--set", "task_options.n_train=32", "--set", "task_options.n_val=16"]
    out = run("oracle.py", *tiny, "--g", "0.4", "--log2-ratios", "0,1", "--seeds", "2", "--fields", "0",
              "--out-dir", str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert re.search(r"^field 0 +best r=(1|2) +near-best \{", out, re.M) and "theory: r = 2" in out
    check_consistent(oracle_module.load_oracle("quickstart+epochs=1+n_train=32+n_val=16", tmp_path))
    shipped = ["--set", "n_trials=6", "--set", "repeats.top_k=1"]
    name = "quickstart+epochs=1+n_train=32+n_val=16"  # the oracle's setting: the search protocol is not part of it
    out = run("coverage.py", *tiny, *shipped, "--searches", "1", "--oracle", name, "--oracle-dir", str(tmp_path),
              "--out-dir", str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert ": 1 searches, 8 runs," in out, out
    line = out.strip().splitlines()[-1]
    assert re.fullmatch(r"coverage: within_2x=[01]/1 covered=[01]/1 width=(\d+\.\d\d|nan)", line), line
    assert not math.isnan(float(line.rsplit("=", 1)[1])) or "without an interval (not covered): 1/1" in out
    (record,) = tmp_path.glob("*-shipped-field0.json")  # named by the search's setting, its --set included
    again = run("coverage.py", "--rescore", str(record), "--reanswer", "--oracle-dir", str(tmp_path), cwd=tmp_path)
    assert again.strip().splitlines()[-1] == line, "the same trials answered again by the same code"
