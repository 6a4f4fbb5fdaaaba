"""Every per-axis option (`PerAxis`) of every registered task, and the model's patch size, reads a scalar, a list
and a comma string alike: what `patch: [4, 8, 8]` in YAML, `--option patch=4,8,8` and `--set
task_options.patch=4,8,8` send."""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from afpe.core.per_axis import PerAxis
from afpe.trainers import ModelConfig, build_task, list_tasks
from afpe.trainers.options import parse_task_options
from afpe.trainers.tasks import TASKS


def per_axis_marker(field: FieldInfo) -> PerAxis | None:
    """The field's `PerAxis`, whether pydantic lifted it into `metadata` or it sits inside `X | None`."""
    found = [m for m in field.metadata if isinstance(m, PerAxis)]
    pending = [field.annotation]
    while pending:
        annotation = pending.pop()
        if get_origin(annotation) is Annotated:
            found += [m for m in annotation.__metadata__ if isinstance(m, PerAxis)]
        pending += get_args(annotation)
    return found[0] if found else None


def per_axis_options() -> list[Any]:
    """(owner, model, field, marker, number of axes) for every per-axis field of every registered task."""
    rows = [("model", ModelConfig, "patch_size", ModelConfig.model_fields["patch_size"], 3)]
    for task in list_tasks():
        options = TASKS.get(task).Options
        ndim = build_task(task).ndim
        rows += [(task, options, name, field, ndim) for name, field in options.model_fields.items()]
    return [
        pytest.param(owner, model, name, marker, ndim, id=f"{owner}.{name}")
        for owner, model, name, field, ndim in rows
        if (marker := per_axis_marker(field)) is not None
    ]


OPTIONS = per_axis_options()


def test_the_per_axis_options_are_found() -> None:
    found = {(param.values[0], param.values[2]) for param in OPTIONS}
    expected = {("echonet", "patch"), ("synthetic_video", "patch"), ("synthetic3d_field", "lengths")}
    expected |= {("msd", "roi"), ("brats", "pixdim"), ("medmnist3d", "anisotropy"), ("model", "patch_size")}
    assert expected <= found


def outcome(model: type[BaseModel], name: str, value: Any) -> tuple[str, Any]:
    try:
        return "accepted", getattr(model.model_validate({name: value}), name)
    except ValidationError:
        return "refused", None


def a_valid_value(model: type[BaseModel], name: str, marker: PerAxis) -> int | float:
    """The default's first value (defaults fit the other options), else one above the lower bound."""
    default = model.model_fields[name].default
    return default[0] if default else (marker.ge or marker.gt or 0) + 1


@pytest.mark.parametrize(("owner", "model", "name", "marker", "ndim"), OPTIONS)
def test_a_scalar_a_list_and_a_comma_string_read_alike(
    owner: str, model: type[BaseModel], name: str, marker: PerAxis, ndim: int
) -> None:
    count = marker.count or ndim
    value = a_valid_value(model, name, marker)
    given = [value] * count
    as_list = outcome(model, name, given)
    assert as_list == ("accepted", given), f"{owner}.{name}"
    assert outcome(model, name, ",".join(map(str, given))) == as_list
    assert parse_task_options([f"{name}={','.join(map(str, given))}"]) == {name: given}
    assert outcome(model, name, value) == ("accepted", [value] * (marker.count or 1))
    assert outcome(model, name, str(value)) == outcome(model, name, value)

    for bad in ([0] * count, ["x"] * count, [value] * (count + 1), []):
        refused = outcome(model, name, bad)
        assert outcome(model, name, ",".join(map(str, bad))) == refused, f"{owner}.{name} {bad}"
        if bad and len(set(bad)) == 1:
            assert outcome(model, name, bad[0]) == outcome(model, name, [bad[0]] * (marker.count or 1))
    assert outcome(model, name, 0)[0] == outcome(model, name, "x")[0] == outcome(model, name, [])[0] == "refused"


def test_a_refusal_names_the_field_the_count_and_the_bounds() -> None:
    with pytest.raises(ValueError, match=r"patch needs 3 values >= 1 \(time, height, width\), got \[4, 8\]"):
        build_task("echonet", {"patch": "4,8"})
    with pytest.raises(ValueError, match=r"lengths needs 3 values in \(0, 1000\] \(d0, d1, d2\)"):
        build_task("synthetic3d_field", {"lengths": [0.1, float("nan"), 0.2]})
