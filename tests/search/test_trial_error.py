"""A failed trial's stored error (`search/trial_error.py`): the cause's `<ExceptionType>: <message>` first, then
the traceback's last whole lines within the bound, no ANSI codes; from a real run through `afpe run`, whose
every trial fails: exit code 1 and the cause as each stored error's first line, nothing coloured in the export."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

from afpe.search.testing import spec_failing_in_training
from afpe.search.trial_error import cause_line, error_text, last_exception_line

RAY_TRACEBACK = (
    "Failure # 1 (occurred at 2026-12-07_04-40-10)\n"
    + "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=14588, ip=192.0.2.2)\n"
    + '  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/trainable.py", line 329, in train\n' * 80
    + "afpe.trainers.tasks.base.DataError: data_root /nonexistent of task 'medmnist3d' is not a directory\n"
)


def test_the_cause_comes_first_then_whole_lines_of_the_tail_within_the_bound() -> None:
    head = last_exception_line(RAY_TRACEBACK)
    assert head == "DataError: data_root /nonexistent of task 'medmnist3d' is not a directory"
    text = error_text(head, RAY_TRACEBACK, 2000)
    lines = text.splitlines()
    assert len(text) <= 2000 and lines[0] == head and lines[1] == "…"
    assert lines[2].startswith('  File "') and lines[-1].startswith("afpe.trainers.tasks.base.DataError: ")
    assert "\x1b" not in error_text(RAY_TRACEBACK, RAY_TRACEBACK, 2000)


def test_a_wrapped_exception_is_named_by_its_cause() -> None:
    class Wrapper(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("\x1b[36mray::train()\x1b[39m traceback ...")
            self.cause = cause

    assert cause_line(Wrapper(KeyError("s_rows"))) == "KeyError: 's_rows'"
    assert cause_line(Wrapper(MemoryError())) == "MemoryError"


def test_a_run_whose_every_trial_fails_exits_1_with_the_cause_first(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    """A generated dataset too large for memory (30 TiB): each trial fails inside, past the data check."""
    storage = f"sqlite:///{tmp_path / 'afpe.db'}"
    spec = spec_failing_in_training("all-fail")
    (tmp_path / "all-fail.json").write_text(json.dumps(spec))
    run = subprocess.run(
        [afpe_executable, "run", str(tmp_path / "all-fail.json"), "--storage", storage],
        env=user_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert "afpe: no trial of study all-fail finished; each trial's error: afpe export all-fail" in run.stderr
    export = subprocess.run(
        [afpe_executable, "export", "all-fail", "--storage", storage], env=user_env, capture_output=True, text=True
    )
    assert export.returncode == 0 and "\x1b" not in export.stdout
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [row["state"] for row in rows] == ["FAIL"]
    for row in rows:
        first = row["error"].splitlines()[0]
        assert re.fullmatch(r"_?(Array)?MemoryError: Unable to allocate 30.5 TiB for an array with shape .*", first)
        assert len(row["error"]) <= 2000 + len(f"\n(full log: {row['log']})")
