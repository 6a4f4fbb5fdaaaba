"""Kept checkpoints: the model file (`afpe.trainers.model_file`) of each COMPLETE trial is an Optuna artifact of
that trial, in a `FileSystemArtifactStore` with one folder per study; only those the study's answer can still
pick are kept.

- Where: $AFPE_ARTIFACT_DIR (the service's `artifact_dir` setting hands its own to its jobs), else beside a
  SQLite database (`<file stem>-artifacts/`), else ~/.afpe/artifacts; then `<study name>/`. The driver, the
  trial workers and the service must all see that folder (docker-compose.yml: the `artifacts` volume). A
  trial's worker writes the file after its last epoch (`trainers.train(model_file=...)`); the driver attaches
  it to the trial (`attach`) before telling it COMPLETE, and removes the file of a trial that did not complete.
- Kept (`kept_numbers`): the top_k best COMPLETE search trials (top 1 without a `repeats` section), every search
  trial with a COMPLETE repeat, and those repeats: so the answer's best configuration, the best mean over
  repeats or else the best single trial (`repeats.best_configuration`), always keeps its checkpoint. Others are
  pruned as trials complete (`prune`); a run that starts removes files no trial refers to (`sweep`).
- The best checkpoint (`best_checkpoint`) is the one of the answer's best configuration's search trial.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path

import optuna
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

from afpe.core.errors import UserError
from afpe.search.analysis import REPEAT_OF, complete_trials, is_repeat
from afpe.search.repeats import best_configuration, ranked
from afpe.search.storage import normalize_url
from afpe.search.trial_writes import remove_trial_artifact, set_trial_artifact, trial_artifacts

ARTIFACT_DIR_ENV = "AFPE_ARTIFACT_DIR"
DEFAULT_ARTIFACT_DIR = "~/.afpe/artifacts"
MIMETYPE = "application/octet-stream"


def artifact_root(storage_url: str, configured: str | os.PathLike | None = None) -> Path:
    """The folder of every study's checkpoints for the storage at `storage_url`: `configured`, else
    $AFPE_ARTIFACT_DIR, else `<sqlite file stem>-artifacts` beside a SQLite file, else ~/.afpe/artifacts."""
    chosen = configured or os.environ.get(ARTIFACT_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    url = make_url(normalize_url(storage_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        return database.with_name(f"{database.stem}-artifacts")
    return Path(DEFAULT_ARTIFACT_DIR).expanduser()


def study_folder(root: Path, study: str) -> Path:
    """The study's artifact folder under `root` (created)."""
    folder = root / study
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_artifact_id(number: int) -> str:
    """A fresh artifact id for trial `number`'s checkpoint (a file name in the study's folder)."""
    return f"trial-{number}-{uuid.uuid4().hex[:12]}.pt"


def attach(study: optuna.Study, trial_id: int, number: int, folder: Path, artifact_id: str) -> bool:
    """Attach the checkpoint file `artifact_id` that trial `number` (storage id `trial_id`, not finished yet)
    wrote in `folder`; False (nothing attached) when this process does not see the file."""
    if not (folder / artifact_id).is_file():
        return False
    meta = ArtifactMeta(artifact_id, f"{study.study_name}-trial-{number}.pt", MIMETYPE, None)
    set_trial_artifact(study, trial_id, meta)
    return True


def discard(folder: Path, artifact_id: str) -> None:
    """Remove a checkpoint file that no trial refers to (none is fine)."""
    try:
        FileSystemArtifactStore(folder).remove(artifact_id)
    except ArtifactNotFound:
        pass


def kept_numbers(trials: Sequence[FrozenTrial], direction: str, top_k: int) -> set[int]:
    """Numbers of the trials whose checkpoints are kept (see the module docstring)."""
    repeated = {t.user_attrs[REPEAT_OF] for t in complete_trials(trials) if is_repeat(t)}
    configurations = {t.number for t in ranked(trials, direction)[:top_k]} | repeated
    repeats = {t.number for t in trials if is_repeat(t) and t.user_attrs[REPEAT_OF] in configurations}
    return configurations | repeats


def prune(study: optuna.Study, folder: Path, keep: Collection[int], removed: set[str]) -> None:
    """Detach and remove the checkpoints of trials not in `keep`, skipping the ids in `removed` (a driver's
    cached trials still list what it detached) and adding those it removes."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number in keep:
            continue
        for meta in trial_artifacts(trial):
            if meta.artifact_id not in removed:
                remove_trial_artifact(study, trial.number, meta.artifact_id)
                discard(folder, meta.artifact_id)
                removed.add(meta.artifact_id)


def sweep(study: optuna.Study, folder: Path) -> int:
    """Remove the files in the study's folder that no trial refers to (left by a driver or worker that died
    between writing and attaching); only while no trial of the study runs. Returns how many."""
    referenced = {meta.artifact_id for t in study.get_trials(deepcopy=False) for meta in trial_artifacts(t)}
    stray = [path for path in folder.iterdir() if path.is_file() and path.name not in referenced]
    for path in stray:
        path.unlink(missing_ok=True)
    return len(stray)


def trial_checkpoint(trial: FrozenTrial) -> ArtifactMeta | None:
    """The checkpoint kept for `trial`, None when it has none."""
    return next(iter(trial_artifacts(trial)), None)


def export_best(study: optuna.Study, root: Path, out: Path) -> FrozenTrial:
    """Copy the best checkpoint of `study` (kept under `root`) to `out` (replaced if it exists); returns its trial.
    UserError saying why when there is none."""
    best = best_checkpoint(study.get_trials(deepcopy=False), study.direction.name.lower())
    if best is None:
        raise UserError(f"study {study.study_name!r} has no COMPLETE trial yet, so no best checkpoint")
    trial, meta = best
    if meta is None:
        raise UserError(
            f"study {study.study_name!r}: its best trial {trial.number} has no kept checkpoint (imported trials, and "
            "trials run before checkpoints were kept, have none)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileSystemArtifactStore(root / study.study_name).open_reader(meta.artifact_id) as reader:
            with out.open("wb") as writer:
                shutil.copyfileobj(reader, writer)
    except ArtifactNotFound:
        raise UserError(
            f"study {study.study_name!r}: the checkpoint of trial {trial.number} is not in {root / study.study_name} "
            f"(set {ARTIFACT_DIR_ENV} to the folder its run kept checkpoints in)"
        ) from None
    return trial


def best_checkpoint(trials: Sequence[FrozenTrial], direction: str) -> tuple[FrozenTrial, ArtifactMeta | None] | None:
    """The search trial of the study's answer and its checkpoint (None when it has none kept); None before the
    first COMPLETE search trial."""
    best = best_configuration(trials, direction)
    return None if best is None else (best, trial_checkpoint(best))
