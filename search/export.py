"""A study's trials as plain rows (one per trial) for CSV/JSON export and the service."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import optuna


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def trial_rows(study: optuna.Study, intermediate: bool = False) -> list[dict[str, Any]]:
    """number, state, value, every `s_*` param, every user attr (and with `intermediate`, the per-epoch
    values as {epoch: value}); columns are the same for every row."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for trial in trials for name in trial.params})
    attrs = sorted({name for trial in trials for name in trial.user_attrs})
    rows = []
    for trial in trials:
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": _number(trial.value),
            "datetime_start": trial.datetime_start.isoformat() if trial.datetime_start else None,
            "datetime_complete": trial.datetime_complete.isoformat() if trial.datetime_complete else None,
        }
        row.update({name: trial.params.get(name) for name in params})
        row.update({name: trial.user_attrs.get(name) for name in attrs})
        if intermediate:
            values = sorted(trial.intermediate_values.items())
            row["intermediate"] = {str(step): _number(value) for step, value in values}
        rows.append(row)
    return rows


def export_text(study: optuna.Study, fmt: str) -> str:
    """The study's trials as CSV (one row per trial) or JSON (the rows plus intermediate values)."""
    if fmt == "json":
        return json.dumps(trial_rows(study, intermediate=True), indent=2)
    if fmt != "csv":
        raise ValueError(f"--format: expected csv or json, got {fmt!r}")
    rows = trial_rows(study)
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else ["number", "state", "value"]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
