"""The one trial export: the same columns for `afpe export` and the REST CSV, and it imports again."""

from __future__ import annotations

import csv
import io
import json

import optuna
from optuna.trial import TrialState

from afpe.search.export import STANDARD_ATTRS, export_text, trials_text
from afpe.search.spec import SearchSpace
from afpe.search.testing import add_trials, make_trial

SPEC = {
    "name": "exported",
    "task": "imported",
    "axes": [
        {"name": "z", "grid_axes": [0], "low": 0.1, "high": 10},
        {"name": "xy", "grid_axes": [1], "low": 0.1, "high": 10},
    ],
}


def test_columns_are_the_union_axes_in_spec_order_standard_attrs_always() -> None:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec", SPEC)
    add_trials(study, SPEC, 3)
    bare = make_trial(SPEC, {"s_z": 1.0, "s_xy": 2.0}, None, TrialState.FAIL)
    bare.user_attrs.clear()
    bare.set_user_attr("error", "boom")
    study.add_trial(bare)
    rows = list(csv.DictReader(io.StringIO(export_text(study, "csv"))))
    header = list(rows[0])
    assert header[:5] == ["number", "state", "value", "s_z", "s_xy"]
    assert header[5 : 5 + len(STANDARD_ATTRS)] == list(STANDARD_ATTRS)
    assert {"error", "ray_trial_id"} <= set(header) and header[-2:] == ["datetime_start", "datetime_complete"]
    assert rows[3]["state"] == "FAIL" and rows[3]["value"] == "" and rows[3]["encoding"] == ""
    assert rows[3]["error"] == "boom"


def test_no_trials_still_names_the_axes_and_json_carries_curves() -> None:
    header = trials_text([], "csv", SearchSpace.from_spec(SPEC)).splitlines()[0].split(",")
    assert header[:5] == ["number", "state", "value", "s_z", "s_xy"]
    study = optuna.create_study(direction="maximize")
    add_trials(study, SPEC, 2)
    records = json.loads(export_text(study, "json"))
    assert records[0]["intermediate"].keys() == {"1", "2"}
