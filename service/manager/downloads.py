"""`StudyDownloads`: what a study lets a user download: its trials as the one CSV export (as `afpe export`) and
its kept checkpoints (`afpe.search.kept_models`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path, PurePath

from afpe.search.export import trials_text
from afpe.search.kept_models import best_checkpoint, trial_checkpoint
from afpe.search.spec import SearchSpace
from afpe.search.trial_reads import trials_by_number
from afpe.service.errors import NotFound
from afpe.service.manager.study_reads import StudyReads


@dataclass(frozen=True)
class CheckpointFile:
    """A kept checkpoint: its file, the name it is downloaded as, and its trial."""

    path: Path
    filename: str
    number: int


class StudyDownloads:
    def __init__(self, reads: StudyReads, artifacts: Path):
        """`artifacts`: the root of the studies' checkpoint folders (`afpe.search.kept_models.artifact_root`)."""
        self.reads = reads
        self.artifacts = artifacts

    def trials_csv(self, name: str) -> str:
        """The study's trials as the one CSV export of `afpe.search.export` (as `afpe export`), their user attrs
        as every read shows them (`StudyReads.shown_attrs`)."""
        record = self.reads.record(name)
        shown = [copy.copy(trial) for trial in self.reads.trials(name)]  # the cached trials stay as stored
        for trial in shown:
            trial.user_attrs = self.reads.shown_attrs(trial.user_attrs)
        return trials_text(shown, "csv", SearchSpace.from_spec(record.spec))

    def checkpoint(self, name: str, number: int | None = None) -> CheckpointFile:
        """The checkpoint kept for trial `number` of study `name`, or with None the one of the search trial of the
        study's answer (`kept_models.best_checkpoint`). NotFound saying why when there is none."""
        record = self.reads.record(name)
        if number is None:
            best = best_checkpoint(self.reads.trials(name), SearchSpace.from_spec(record.spec).direction)
            if best is None:
                raise NotFound(f"name: study {name!r} has no COMPLETE trial yet, so no best checkpoint")
            trial, meta = best
        else:
            found = self.reads.read(lambda: trials_by_number(self.reads.storage, name, [number]), name)
            if not found:
                raise NotFound(f"number: study {name!r} has no trial {number}")
            trial, meta = found[0], trial_checkpoint(found[0])
        if meta is None:
            raise NotFound(
                f"number: trial {trial.number} of study {name!r} has no kept checkpoint (a study keeps those of its "
                "best configurations and their repeats; imported trials have none)"
            )
        path = self.artifacts / name / PurePath(meta.artifact_id).name
        if not path.is_file():
            raise NotFound(
                f"number: the checkpoint of trial {trial.number} of study {name!r} is not in the service's artifact "
                "folder (AFPE_ARTIFACT_DIR: the driver, its workers and the service must share it)"
            )
        return CheckpointFile(path, meta.filename, trial.number)
