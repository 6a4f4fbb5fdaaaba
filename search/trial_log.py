"""What a trial prints, logs and warns goes to its own log file under the study's Tune folder, which outlives the
private Ray (whose temp dir, with Ray's own worker logs, is deleted when `afpe run` ends).

Warnings are also collected so the trial can report them with its next result: the driver stores them on the
Optuna trial (user attr `warnings`) and shows each distinct one once. Python shows a warning once per code
location and process, so a reused Ray actor would hide it from every later trial: inside the capture every
warning is shown ("always"), except those an `ignore` filter names by message (a deliberate silencing of one known
warning, such as MONAI's import-time deprecation in `afpe.trainers`).
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import IO, Any, TextIO


def trial_log_path(log_dir: Path, number: int) -> Path:
    """The log of Optuna trial `number` in `log_dir` (one file per trial; a retry appends to it)."""
    return log_dir / f"trial-{number:05d}.log"


class _Tee:
    """A text stream writing to the original stream and to the log."""

    def __init__(self, original: TextIO, log: IO[str]) -> None:
        self.original, self.log = original, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.original.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class TrialLog:
    """The warnings raised since the last `take()`."""

    def __init__(self, log: IO[str]) -> None:
        self.log = log
        self.pending: list[str] = []

    def show(self, message: Any, category: type[Warning], filename: str, lineno: int, *_: Any, **__: Any) -> None:
        self.log.write(warnings.formatwarning(message, category, filename, lineno))
        self.pending.append(f"{category.__name__}: {message}")

    def take(self) -> list[str]:
        taken, self.pending = self.pending, []
        return taken


@contextmanager
def captured_trial_output(path: Path) -> Iterator[TrialLog]:
    """Within the block, stdout, stderr, log records and warnings also go to `path` (appended), and an exception
    leaving the block is written there with its traceback before it propagates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log:
        trial = TrialLog(log)
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            with (
                redirect_stdout(_Tee(sys.stdout, log)),
                redirect_stderr(_Tee(sys.stderr, log)),
                warnings.catch_warnings(),
            ):
                silenced = [spec for spec in warnings.filters if spec[0] == "ignore" and spec[1] is not None]
                warnings.simplefilter("always")
                for _, message, category, module, lineno in reversed(silenced):
                    warnings.filterwarnings(
                        "ignore", message.pattern, category, module.pattern if module else "", lineno
                    )
                warnings.showwarning = trial.show
                yield trial
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            root.removeHandler(handler)
