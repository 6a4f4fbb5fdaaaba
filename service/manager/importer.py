"""A finished study from a CSV of earlier trials (e.g. a published search run elsewhere, or `afpe export`):
`s_*` scale columns and `value` (optional: `state`, `seed`, `pe_seed`). The axes' ranges are the observed
scale ranges (log-uniform)."""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.orm import sessionmaker

from afpe.encodings import list_encodings
from afpe.search.analysis import REPEAT_OF
from afpe.search.spec import PARAM_PREFIX, SLUG_PATTERN
from afpe.service.errors import Conflict, InvalidInput
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, utcnow

MAX_IMPORT_ROWS = 100_000
IMPORTED_STATES = ("COMPLETE", "PRUNED", "FAIL")
SLUG = re.compile(SLUG_PATTERN)


class StudyImporter:
    def __init__(self, sessions: sessionmaker, storage: optuna.storages.BaseStorage):
        self.sessions = sessions
        self.storage = storage
        self._lock = threading.Lock()

    def import_csv(
        self,
        name: str,
        content: bytes,
        encoding: str,
        direction: str,
        metric: str,
        task: str | None,
        task_options: dict[str, Any] | None = None,
    ) -> StudyRecord:
        """Create the finished study `name` from `content` (`task_options` as the study ran with, e.g. its
        anisotropy, for trends across studies). InvalidInput names the bad field or CSV line; Conflict when the
        name is taken."""
        if not SLUG.match(name):
            raise InvalidInput(f"name: {name!r} must match {SLUG_PATTERN}")
        if encoding not in list_encodings():
            raise InvalidInput(f"encoding: unknown encoding {encoding!r} (valid: {', '.join(list_encodings())})")
        rows = _read_csv(content)
        scales = [c for c in rows[0] if c.startswith(PARAM_PREFIX)]
        if "value" not in rows[0] or not scales:
            raise InvalidInput("file: the CSV needs a `value` column and at least one `s_<axis>` scale column")
        trials, axes = _imported_trials(rows, scales)
        spec = {
            "name": name,
            "description": "imported from CSV",
            "task": task or "imported",
            "task_options": task_options or {},
            "encoding": encoding,
            "axes": axes,
            "ratio": [a["name"] for a in axes[:2]] if len(axes) >= 2 else None,
            "n_trials": len(trials),
            "metric": metric,
            "direction": direction,
            "pe_seed": 0,
        }
        with self._lock, self.sessions.begin() as session:
            if session.get(StudyRecord, name) is not None:
                raise Conflict(f"name: study {name!r} already exists")
            try:
                study = optuna.create_study(study_name=name, storage=self.storage, direction=direction)
            except optuna.exceptions.DuplicatedStudyError:
                raise Conflict(f"name: an Optuna study {name!r} already exists in the storage") from None
            study.set_user_attr("spec", spec)
            study.set_user_attr("warnings", [])
            study.add_trials(trials)
            now = utcnow()
            record = StudyRecord(
                name=name,
                spec=spec,
                source=StudySource.IMPORT,
                state=StudyState.SUCCEEDED,
                attempt=0,
                started_at=now,
                finished_at=now,
            )
            session.add(record)
        return record


def _read_csv(content: bytes) -> list[dict[str, str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file: the CSV is not UTF-8 text") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise InvalidInput("file: the CSV has no data rows")
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"file: {len(rows)} rows exceed the limit of {MAX_IMPORT_ROWS}")
    return rows


IMPORTED_ATTRS = ("seed", "pe_seed", REPEAT_OF, "repeat")  # integer user attrs a CSV may carry


def _parse_row(line: int, row: dict[str, str], scales: list[str]) -> tuple[TrialState, dict, float | None, dict]:
    state_name = (row.get("state") or "COMPLETE").strip().upper()
    if state_name not in IMPORTED_STATES:
        raise InvalidInput(f"file: line {line}: state {state_name!r} is not COMPLETE, PRUNED or FAIL")
    try:
        params = {c: float(row[c]) for c in scales}
        value = float(row["value"]) if (row.get("value") or "").strip() else None
        attrs = {k: int(float(row[k])) for k in IMPORTED_ATTRS if (row.get(k) or "").strip()}
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"file: line {line}: {error}") from None
    if any(not (math.isfinite(v) and v > 0) for v in params.values()):
        raise InvalidInput(f"file: line {line}: scales must be positive finite numbers")
    if state_name == "COMPLETE" and (value is None or not math.isfinite(value)):
        raise InvalidInput(f"file: line {line}: a COMPLETE trial needs a finite value")
    return TrialState[state_name], params, value if state_name == "COMPLETE" else None, attrs


def _imported_trials(rows: list[dict[str, str]], scales: list[str]) -> tuple[list[FrozenTrial], list[dict]]:
    parsed = [_parse_row(line, row, scales) for line, row in enumerate(rows, start=2)]
    axes: list[dict[str, Any]] = []
    distributions = {}
    for index, column in enumerate(scales):
        values = [p[1][column] for p in parsed]
        low, high = min(values), max(values)
        if low == high:
            low, high = low / 2, high * 2
        axes.append({"name": column.removeprefix(PARAM_PREFIX), "grid_axes": [index], "low": low, "high": high})
        distributions[column] = FloatDistribution(low, high, log=True)
    trials = [
        optuna.trial.create_trial(
            state=state, value=value, params=params, distributions=distributions, user_attrs=attrs
        )
        for state, params, value, attrs in parsed
    ]
    return trials, axes
