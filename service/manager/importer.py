"""A finished study from a CSV of earlier trials (e.g. a published search run elsewhere, or `afpe export`):
`s_*` scale columns and `value` (optional: `state`, `seed`, `pe_seed`). The axes' ranges are the searched
bounds when given (`bounds`), else the observed scale ranges (log-uniform): the boundary warnings
(`afpe.search.analysis.boundary_warnings`) judge the best against them, so a search that never bracketed
its optimum is only recognised with the bounds it searched."""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from afpe.encodings import list_encodings
from afpe.search.analysis import REPEAT_OF
from afpe.search.spec import PARAM_PREFIX, SLUG_PATTERN, AxisSpec, StudySpec
from afpe.search.storage import ORIGIN_KEY
from afpe.search.study_list import Origin
from afpe.search.trial_writes import add_finished_trials
from afpe.service.errors import Conflict, InvalidInput
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, utcnow
from afpe.trainers import list_tasks, task_info

MAX_IMPORT_ROWS = 100_000
MAX_AXES = StudySpec.model_fields["axes"].metadata[0].max_length  # as a spec: at most 8 searched axes
IMPORTED_STATES = ("COMPLETE", "PRUNED", "FAIL")
SLUG = re.compile(SLUG_PATTERN)


class StudyImporter:
    """Imports run without a service-wide lock (two imports of one name: the storage refuses the second) and
    write their trials in bulk (`afpe.search.trial_writes.add_finished_trials`)."""

    def __init__(self, sessions: sessionmaker, storage: optuna.storages.BaseStorage):
        self.sessions = sessions
        self.storage = storage

    def import_csv(
        self,
        name: str,
        content: bytes,
        encoding: str,
        direction: str,
        metric: str | None,
        task: str | None,
        task_options: dict[str, Any] | None = None,
        bounds: dict[str, Any] | None = None,
    ) -> StudyRecord:
        """Create the finished study `name` from `content` (`task_options` as the study ran with, e.g. its
        anisotropy, for trends across studies), validated by the rules of a spec: slug axis names, at most
        MAX_AXES axes, scales within a spec's range, a known task with its options and one of its metrics
        (`metric` None: the task's default, `value` without a task). `bounds` {axis: [low, high]} are the
        searched ranges of some or all axes (finite, 0 < low < high, every scale of the CSV inside). InvalidInput
        names the bad field or CSV line; Conflict when the name is taken."""
        if not SLUG.fullmatch(name):
            raise InvalidInput(f"name: {name!r} must match {SLUG_PATTERN}")
        if encoding not in list_encodings():
            raise InvalidInput(f"encoding: unknown encoding {encoding!r} (valid: {', '.join(list_encodings())})")
        metric = _checked_metric(task, task_options or {}, metric)
        scales, parsed = _read_csv(content)
        trials, axes = _imported_trials(parsed, scales, _checked_bounds(bounds or {}, scales))
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
        with self.sessions() as session:
            if session.get(StudyRecord, name) is not None:
                raise Conflict(f"name: study {name!r} already exists")
        try:
            study = optuna.create_study(study_name=name, storage=self.storage, direction=direction)
        except optuna.exceptions.DuplicatedStudyError:
            raise Conflict(f"name: an Optuna study {name!r} already exists in the storage") from None
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
        try:
            study.set_user_attr("spec", spec)
            study.set_user_attr(ORIGIN_KEY, Origin.IMPORT.value)
            study.set_user_attr("warnings", [])
            add_finished_trials(study, trials)
            with self.sessions.begin() as session:
                session.add(record)
        except BaseException:  # no half-stored study: its Optuna study goes with the failed write
            optuna.delete_study(study_name=name, storage=self.storage)
            raise
        return record


def _checked_metric(task: str | None, options: dict[str, Any], metric: str | None) -> str:
    """The metric of an import: one the task reports (its default when None); without a task, a slug
    (default `value`). InvalidInput naming `task`, `task_options` or `metric`."""
    if task is None:
        metric = metric or "value"
        if not SLUG.fullmatch(metric):
            raise InvalidInput(f"metric: {metric!r} must match {SLUG_PATTERN} (or give the task)")
        return metric
    if task not in list_tasks():
        raise InvalidInput(f"task: unknown task {task!r} (valid: {', '.join(list_tasks())})")
    try:
        info = task_info(task, options)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"task_options: {error}") from None
    metric = metric or info.default_metric
    if metric not in info.metrics:
        raise InvalidInput(f"metric: {task} reports {', '.join(info.metrics)}, not {metric!r}")
    return metric


IMPORTED_ATTRS = ("seed", "pe_seed", REPEAT_OF, "repeat")  # integer user attrs a CSV may carry
IMPORTED_COLUMNS = ("value", "state", *IMPORTED_ATTRS)  # the columns an import reads, besides the scales


ParsedRow = tuple[TrialState, dict[str, float], float | None, dict[str, int]]


def _read_csv(content: bytes) -> tuple[list[str], list[ParsedRow]]:
    """(the scale columns, each data row parsed) of a CSV, checked as it is read: the header first (a `value`
    and 1 to MAX_AXES `s_<axis>` columns), then each row as it comes (no more fields than the header, at most
    MAX_IMPORT_ROWS rows, a `repeat_of` naming an earlier search row), keeping only the cells an import uses.
    Memory stays a small multiple of the upload, whatever the columns times rows. InvalidInput naming `file`
    and the line."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file: the CSV is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, [])
        scales = _checked_header(header)
        used = {name: index for index, name in enumerate(header) if name in {*scales, *IMPORTED_COLUMNS}}
        parsed: list[ParsedRow] = []
        for row in reader:
            if not row:  # a blank line, as csv.DictReader skips it
                continue
            if len(row) > len(header):
                raise InvalidInput(f"file: line {reader.line_num}: {len(row)} fields, the header has {len(header)}")
            if len(parsed) == MAX_IMPORT_ROWS:
                raise InvalidInput(f"file: more than {MAX_IMPORT_ROWS} rows, the limit of an import")
            cells = {name: row[index] for name, index in used.items() if index < len(row)}
            parsed.append(_parse_row(reader.line_num, cells, scales))
            _check_repeat(reader.line_num, parsed)
    except csv.Error as error:  # e.g. a field over the csv module's 128 KiB limit
        raise InvalidInput(f"file: not a readable CSV: {error}") from None
    if not parsed:
        raise InvalidInput("file: the CSV has no data rows")
    return scales, parsed


def _check_repeat(line: int, parsed: list[ParsedRow]) -> None:
    """InvalidInput unless the last row's `repeat_of` (if any) is the trial number (0-based data row) of an
    earlier search row (one without `repeat_of`): a repeat of nothing would leave a study without an answer."""
    target = parsed[-1][3].get(REPEAT_OF)
    if target is None:
        return
    if not 0 <= target < len(parsed) - 1 or REPEAT_OF in parsed[target][3]:
        raise InvalidInput(
            f"file: line {line}: repeat_of {target} is not the number of an earlier search trial of the CSV "
            "(trials are numbered 0, 1, ... in the order of their rows)"
        )


def _checked_header(header: list[str]) -> list[str]:
    """The `s_<axis>` columns of a CSV header; InvalidInput without a `value` column, without a scale column or
    with more than MAX_AXES of them."""
    scales = [column for column in header if column.startswith(PARAM_PREFIX)]
    if "value" not in header or not scales:
        raise InvalidInput("file: the CSV needs a `value` column and at least one `s_<axis>` scale column")
    if len(scales) > MAX_AXES:
        raise InvalidInput(f"file: {len(scales)} scale columns; a study has at most {MAX_AXES} axes")
    return scales


def _parse_row(line: int, row: dict[str, str], scales: list[str]) -> ParsedRow:
    state_name = (row.get("state") or "COMPLETE").strip().upper()
    if state_name not in IMPORTED_STATES:
        raise InvalidInput(f"file: line {line}: state {state_name!r} is not COMPLETE, PRUNED or FAIL")
    missing = [c for c in scales if not (row.get(c) or "").strip()]
    if missing:
        raise InvalidInput(f"file: line {line}: no scale in {', '.join(missing)}")
    try:
        params = {c: float(row[c]) for c in scales}
        value = float(row["value"]) if (row.get("value") or "").strip() else None
        attrs = {k: int(float(row[k])) for k in IMPORTED_ATTRS if (row.get(k) or "").strip()}
    except (TypeError, ValueError, OverflowError) as error:  # OverflowError: int(float("inf"))
        raise InvalidInput(f"file: line {line}: {error}") from None
    if any(not (math.isfinite(v) and v > 0) for v in params.values()):
        raise InvalidInput(f"file: line {line}: scales must be positive finite numbers")
    if state_name == "COMPLETE" and (value is None or not math.isfinite(value)):
        raise InvalidInput(f"file: line {line}: a COMPLETE trial needs a finite value")
    return TrialState[state_name], params, value if state_name == "COMPLETE" else None, attrs


def _checked_bounds(bounds: dict[str, Any], scales: list[str]) -> dict[str, tuple[float, float]]:
    """{axis: (low, high)} of a `bounds` form field; InvalidInput naming `bounds` for an axis without an
    `s_<axis>` column or a range that is not two finite numbers with 0 < low < high."""
    axes = [column.removeprefix(PARAM_PREFIX) for column in scales]
    checked = {}
    for axis, given in bounds.items():
        if axis not in axes:
            raise InvalidInput(f"bounds: {axis!r} is not an axis of the CSV (its axes: {', '.join(axes)})")
        if (
            not isinstance(given, list)
            or len(given) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in given)
            or not 0 < given[0] < given[1]
        ):
            raise InvalidInput(f"bounds: {axis}: expected [low, high] with finite 0 < low < high, got {given!r}")
        checked[axis] = (float(given[0]), float(given[1]))
    return checked


def _imported_trials(
    parsed: list[ParsedRow], scales: list[str], bounds: dict[str, tuple[float, float]]
) -> tuple[list[FrozenTrial], list[dict]]:
    axes: list[dict[str, Any]] = []
    distributions = {}
    for index, column in enumerate(scales):
        name = column.removeprefix(PARAM_PREFIX)
        values = [p[1][column] for p in parsed]
        low, high = min(values), max(values)
        if name in bounds:
            if low < bounds[name][0] or high > bounds[name][1]:
                raise InvalidInput(
                    f"bounds: {name}: the CSV's scales [{low:.4g}, {high:.4g}] are not inside {list(bounds[name])}"
                )
            low, high = bounds[name]
        elif low == high:
            low, high = low / 2, high * 2
        axis = {"name": name, "grid_axes": [index], "low": low, "high": high}
        try:
            AxisSpec.model_validate(axis)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            field = "bounds" if name in bounds else "file"
            raise InvalidInput(f"{field}: column {column!r}: {problems}") from None
        axes.append(axis)
        distributions[column] = FloatDistribution(low, high, log=True)
    trials = [
        optuna.trial.create_trial(
            state=state, value=value, params=params, distributions=distributions, user_attrs=attrs
        )
        for state, params, value, attrs in parsed
    ]
    return trials, axes
