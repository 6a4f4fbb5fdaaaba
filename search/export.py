"""The one export of a study's trials: rows (one per trial) as CSV or JSON, for `afpe export` and the REST
`GET /api/studies/{name}/trials?format=csv`.

Columns, the same for every row: number, state, value, every `s_*` param (the spec's axes first, in spec
order, then any other), the standard user attrs (encoding, task, seed, pe_seed, epochs, seconds; empty when
a trial lacks one), every other user attr (sorted; text without ANSI colour codes), datetime_start,
datetime_complete; JSON rows add the per-epoch intermediate values as {epoch: value}. A CSV written here imports
again (`POST /api/studies/import`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from afpe.search.spec import SearchSpace
from afpe.search.trial_error import strip_ansi

STANDARD_ATTRS = ("encoding", "task", "seed", "pe_seed", "epochs", "seconds")
FORMATS = ("csv", "json")


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def columns(trials: Sequence[FrozenTrial], space: SearchSpace | None = None) -> list[str]:
    """The export's columns for these trials (see the module docstring)."""
    axes = [axis.param for axis in space.axes] if space is not None else []
    params = axes + sorted({name for trial in trials for name in trial.params} - set(axes))
    attrs = list(STANDARD_ATTRS) + sorted({name for t in trials for name in t.user_attrs} - set(STANDARD_ATTRS))
    return ["number", "state", "value", *params, *attrs, "datetime_start", "datetime_complete"]


def trial_rows(
    trials: Sequence[FrozenTrial], space: SearchSpace | None = None, intermediate: bool = False
) -> list[dict[str, Any]]:
    """One dict per trial over `columns(trials, space)` (missing values None); with `intermediate`, each row
    also holds `intermediate`: {str(epoch): value}."""
    names = columns(trials, space)
    rows = []
    for trial in trials:
        fields = {
            "number": trial.number,
            "state": trial.state.name,
            "value": _number(trial.value),
            **trial.params,
            **{key: strip_ansi(value) if isinstance(value, str) else value for key, value in trial.user_attrs.items()},
            "datetime_start": _iso(trial.datetime_start),
            "datetime_complete": _iso(trial.datetime_complete),
        }
        row = {name: fields.get(name) for name in names}
        if intermediate:
            values = sorted(trial.intermediate_values.items())
            row["intermediate"] = {str(step): _number(value) for step, value in values}
        rows.append(row)
    return rows


def trials_text(trials: Sequence[FrozenTrial], fmt: str, space: SearchSpace | None = None) -> str:
    """The trials as CSV (header + one row per trial) or JSON (the rows plus intermediate values).
    ValueError for another format."""
    if fmt == "json":
        return json.dumps(trial_rows(trials, space, intermediate=True), indent=2)
    if fmt != "csv":
        raise ValueError(f"--format: expected csv or json, got {fmt!r}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(trials, space))
    writer.writeheader()
    writer.writerows(trial_rows(trials, space))
    return buffer.getvalue()


def export_text(study: optuna.Study, fmt: str) -> str:
    """`trials_text` of an Optuna study (its axes order from the `spec` user attr, when it has one)."""
    spec = study.user_attrs.get("spec")
    space = SearchSpace.from_spec(spec) if spec else None
    return trials_text(study.get_trials(deepcopy=False), fmt, space)
