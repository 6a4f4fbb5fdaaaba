"""A run's side of the kept model files (`kept_models.py`): a COMPLETE trial's file is attached to it, an
unfinished one's deleted, and after each COMPLETE the files the answer can no longer pick are pruned."""

from __future__ import annotations

from pathlib import Path

import optuna

from afpe.search.kept_models import attach, discard, kept_numbers, prune


class CheckpointKeeper:
    """The checkpoints of one run in the study's artifact folder `folder`; the top `top_k` trials (the repeats'
    top_k, else 1) keep theirs. `keep` and `prune` write the storage: run them through the storage guard."""

    def __init__(self, folder: Path, direction: str, top_k: int) -> None:
        self.folder = folder
        self.direction = direction
        self.top_k = top_k
        self.removed: set[str] = set()  # artifact ids this run detached (its cached trials still list them)

    def keep(self, study: optuna.Study, optuna_id: int, number: int, artifact: str) -> None:
        """Attach the COMPLETE trial's model file `artifact` to it (before its tell)."""
        attach(study, optuna_id, number, self.folder, artifact)

    def drop(self, artifact: str) -> None:
        """Delete the model file of a trial that did not complete (no storage call)."""
        discard(self.folder, artifact)

    def prune(self, study: optuna.Study) -> None:
        """Keep only the checkpoints the answer can still pick (`checkpoints.kept_numbers`)."""
        keep = kept_numbers(study.get_trials(deepcopy=False), self.direction, self.top_k)
        prune(study, self.folder, keep, self.removed)
