"""No benchmark rots (issue 30): every script under benchmarks/ runs its smallest mode here and prints its
figures, so a change that breaks one (e.g. `benchmarks/service.py`'s hard-coded axes of an older quickstart,
`KeyError: 's_z'`) fails the suite. calibration, gpu and cache_memory run in test_benchmarks.py, oracle and
coverage in test_oracle_coverage.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
#: run by test_benchmarks.py and test_oracle_coverage.py
ELSEWHERE = {"calibration", "gpu", "cache_memory", "oracle", "coverage"}
NUMBER = r"[-+]?\d+(\.\d+)?"

#: script -> what its smallest run must print (a regex per figure line)
EXPECTED = {
    "asha": [rf"^random\+asha +best {NUMBER} \(trial \d+\), epochs \d+", rf"^ASHA: best {NUMBER} vs random"],
    "convergence": [rf"^ICC\(1\) = ({NUMBER}|nan) .*\(2 configurations x 2 seeds"],
    "hardening": [rf"^import of 200 rows over HTTP: {NUMBER} s", rf"^GET /api/compare, 12 x one name.*: {NUMBER} s"],
    "orchestration": [rf"^per-trial overhead .*: {NUMBER} s", rf"^total-time ratio driver/plain: {NUMBER}x"],
    "service": [
        rf"^  status +first +{NUMBER} ms \| p50",
        rf"^  plots/importance +first +{NUMBER} ms",
        rf"^  GET /api/studies \(both at once\) +{NUMBER} s \| ratio +{NUMBER}",
        rf"^  status +{NUMBER} s \| ratio +{NUMBER}",
    ],
    "storage_retry": [rf"^write: direct {NUMBER} ms/call", rf"^read: direct {NUMBER} ms/call"],
    "trainer_step": [rf"ratio {NUMBER} \(goal <= 1.05\)", rf"^synthetic_video: .* {NUMBER} s/epoch"],
    "trials_table": [
        rf"^trial_reads.trial_rows +p50 +{NUMBER} ms",
        rf"^GET /studies/.../trials/100 page .*p95 +{NUMBER} ms",
    ],
}


def test_every_benchmark_has_a_smoke_run() -> None:
    scripts = {path.stem for path in BENCHMARKS.glob("*.py")}
    assert scripts == set(EXPECTED) | ELSEWHERE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_benchmark_runs_in_its_smallest_mode(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for pattern in EXPECTED[name]:
        assert re.search(pattern, result.stdout, re.M), (pattern, result.stdout[-3000:])
