"""Every afpe study of an Optuna storage, with where it came from and whether a driver runs it now: what
`afpe studies` and `afpe status` (without a name) print, and what the service lists beside its own records.

The origin contract. A study records where it was started in its Optuna user attr `origin` (`ORIGIN_KEY`) when it
is created: `cli` for `afpe run` (the driver writes `$AFPE_ORIGIN` when set, else `cli`; the service's jobs set
`AFPE_ORIGIN=service`), `service` for the service's create, `import` for a CSV import. A study without the attr
(made before the contract) is `service` or `import` when the service's own table has it (the service knows),
else `cli` (`origin_of`).

The state of a study that no service runs is read from its lease and its trials (`driver_state`): `running` while
a driver holds its lease (`search/lease.py`), else `succeeded` when `n_trials` search trials finished, else `failed`
(no trial finished, or its driver stopped early; `afpe run --resume` or a REST resume continues it).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from afpe.search.analysis import finished_count, search_trials
from afpe.search.lease import StudyLeases
from afpe.search.repeats import study_answer
from afpe.search.spec import SearchSpace
from afpe.search.storage import ORIGIN_KEY

ORIGIN_ENV = "AFPE_ORIGIN"


class Origin(StrEnum):
    """Where a study was started."""

    SERVICE = "service"
    CLI = "cli"
    IMPORT = "import"


def run_origin() -> str:
    """The origin a driver records on a study it creates: `$AFPE_ORIGIN` when set, else `cli`."""
    return os.environ.get(ORIGIN_ENV) or Origin.CLI.value


def origin_of(user_attrs: dict[str, Any], recorded: str | None = None) -> str:
    """A study's origin: its `origin` attr, else `recorded` (what the service's table says: `service` or
    `import`), else `cli`."""
    return user_attrs.get(ORIGIN_KEY) or recorded or Origin.CLI.value


def driver_state(finished: int, n_trials: int, holder: str | None) -> tuple[str, str | None]:
    """(state, error) of a study no service runs: `running` while `holder` holds its lease, `succeeded` once
    `n_trials` (> 0) search trials finished, else `failed` with why."""
    if holder is not None:
        return "running", None
    if finished and finished >= n_trials:
        return "succeeded", None
    if not finished:
        return "failed", "no trial finished (its driver ended or was stopped); resume it to run trials"
    return "failed", f"its driver stopped with {finished} of {n_trials} trials finished; resume it to continue"


@dataclass(frozen=True)
class StudyEntry:
    """One study as the list shows it: `state`/`error` by `driver_state`, `holder` the lease holder running it
    (None when none), `answer` the best configuration's mean (None before a COMPLETE search trial), `ratio` its
    scale ratio (None without ratio axes `ratio_axes`), `created_at` its first trial's start (None without trials)."""

    name: str
    origin: str
    spec: dict[str, Any]
    state: str
    error: str | None
    holder: str | None
    finished: int
    failed: int
    n_trials: int
    metric: str
    answer: float | None
    ratio: float | None
    ratio_axes: tuple[str, str] | None
    created_at: dt.datetime | None


def study_entry(name: str, user_attrs: dict[str, Any], trials: Sequence[FrozenTrial], holder: str | None) -> StudyEntry:
    """The entry of study `name` from its user attrs (`spec` required), trials and lease holder."""
    space = SearchSpace.from_spec(user_attrs["spec"])
    searched = search_trials(trials)
    finished = finished_count(searched)
    n_trials = int(user_attrs["spec"].get("n_trials") or 0)
    state, error = driver_state(finished, n_trials, holder)
    answer = study_answer(trials, space.direction, space.ratio)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    return StudyEntry(
        name=name,
        origin=origin_of(user_attrs),
        spec=user_attrs["spec"],
        state=state,
        error=error,
        holder=holder,
        finished=finished,
        failed=sum(t.state == TrialState.FAIL for t in searched),
        n_trials=n_trials,
        metric=space.metric,
        answer=None if answer is None else answer.best.mean,
        ratio=None if answer is None else answer.best.ratio,
        ratio_axes=space.ratio,
        created_at=min(starts) if starts else None,
    )


def afpe_studies(storage: optuna.storages.BaseStorage) -> list[tuple[str, dict[str, Any]]]:
    """(name, user attrs) of every study of `storage` that afpe made (one with a `spec` attr), by name; reads no
    trial (`get_all_study_summaries` reads every trial of every study: minutes at 100,000 trials)."""
    studies = storage.get_all_studies()
    return sorted((s.study_name, s.user_attrs) for s in studies if isinstance(s.user_attrs.get("spec"), dict))


def list_studies(storage: optuna.storages.BaseStorage, leases: StudyLeases) -> list[StudyEntry]:
    """Every afpe study of `storage`, by name, with its lease holder from `leases` (the same database)."""
    entries = []
    for name, attrs in afpe_studies(storage):
        trials = storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False)
        holder = leases.holder(name)
        entries.append(study_entry(name, attrs, trials, None if holder is None else str(holder)))
    return entries


def entry_json(entry: StudyEntry) -> dict[str, Any]:
    """An entry as JSON data (`afpe studies --json`), without its spec."""
    data = {key: value for key, value in asdict(entry).items() if key != "spec"}
    data["created_at"] = None if entry.created_at is None else entry.created_at.isoformat()
    return data


def table_lines(entries: Sequence[StudyEntry]) -> list[str]:
    """The entries as an aligned text table (`afpe studies`): name, origin, state, finished, answer."""
    if not entries:
        return ["no studies in this storage (`afpe run quickstart` makes one)"]
    rows = [("name", "origin", "state", "finished", "answer")]
    for e in entries:
        answer = "-" if e.answer is None else f"{e.metric} {e.answer:.4g}"
        if e.answer is not None and e.ratio is not None:
            answer += f" ({'/'.join(e.ratio_axes or ())} = {e.ratio:.3g})"
        failed = f", {e.failed} failed" if e.failed else ""
        state = f"{e.state} by {e.holder.split()[0]}" if e.holder else e.state
        rows.append((e.name, e.origin, state, f"{e.finished}/{e.n_trials}{failed}", answer))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]) for row in rows]
