"""A trial's warnings: every one is shown and kept (a reused actor would otherwise hide repeats), except those a
filter silences by message, as `afpe.trainers` silences MONAI's import-time deprecation (that one end to end:
tests/search/test_segmentation_study.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

from afpe.search.trial_log import captured_trial_output


def test_every_warning_is_kept_twice_over_but_a_silenced_one_is_not(tmp_path: Path) -> None:
    log = tmp_path / "trial-00000.log"
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning)
    with captured_trial_output(log) as trial:
        for _ in range(2):
            warnings.warn("fold 3 is empty", UserWarning, stacklevel=1)
            warnings.warn(
                "`torch.jit.interface` is deprecated. Please use `torch.compile`", FutureWarning, stacklevel=1
            )
            warnings.warn("old call", DeprecationWarning, stacklevel=1)
        taken = trial.take()
    assert taken == ["UserWarning: fold 3 is empty", "DeprecationWarning: old call"] * 2
    assert "FutureWarning" not in log.read_text() and log.read_text().count("UserWarning: fold 3 is empty") == 2
    assert warnings.filters[0][0] == "ignore"  # the capture restored the filters it changed
