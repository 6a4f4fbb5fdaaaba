"""A campaign: the paper's experiments as one request. A base study spec and `vary` over one or two of its fields
(dotted paths, e.g. `encoding` × `task_options.anisotropy`) expand into named studies, one per combination, each
an ordinary study validated as usual before any of them starts.

When `encoding` varies, each member is made fit for its encoding from the base's searched axes:
- a per-axis encoding (afpe, lfpe, lsfpe) searches the base's axes as they are;
- the isotropic `fourier` searches one scale driving every grid axis, over the base axes' overall range;
- an encoding without scales (none, learnable, sincos) is a baseline: one configuration trained with the same
  seeds as the searched studies' repeats (`repeats.py`: seed + 1000 i), so its answer is a mean with an interval.
Neither of the last two has a ratio, so they drop the base's `ratio` and `prediction`.

Member names are `<campaign>-<value>[-<value>]` with each value written as a slug (`[1, 1, 4]` → `1x1x4`,
`0.8` → `0p8`). The whole campaign is refused (SpecError naming the member and field) when any member is.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from afpe.search.shipped_specs import campaign_path, spec_path
from afpe.search.spec import SLUG_PATTERN, SpecError, StudySpec, is_isotropic, searchable_encodings
from afpe.search.spec_loading import apply_overrides, format_validation_error, validate_spec
from afpe.trainers import task_info

MAX_VARIED_FIELDS = 2
MAX_VALUES = 16
MAX_CAMPAIGN_TRIALS = 10_000  # the sum over members of search trials and repeats
ISOTROPIC_AXIS = "s"


class CampaignSpec(BaseModel):
    """A campaign as a user writes it (YAML or a REST body)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SLUG_PATTERN, max_length=40)
    description: str = Field("", max_length=4000)
    base: str | dict[str, Any] = Field(description="a study spec mapping, or the name of a shipped study spec")
    vary: dict[str, list[Any]] = Field(description="one or two dotted spec fields, each with the values to run")
    baseline_seeds: int = Field(
        2, ge=1, le=20, description="extra seeds of an encoding without scales when the base has no repeats"
    )

    @field_validator("vary")
    @classmethod
    def _check_vary(cls, vary: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not 1 <= len(vary) <= MAX_VARIED_FIELDS:
            raise ValueError(f"give one or two fields to vary, got {len(vary)}")
        for key, values in vary.items():
            if key == "name" or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*", key):
                raise ValueError(f"{key!r} is not a dotted spec field (e.g. encoding, task_options.anisotropy)")
            if not 1 <= len(values) <= MAX_VALUES:
                raise ValueError(f"{key}: give 1 to {MAX_VALUES} values, got {len(values)}")
            if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
                raise ValueError(f"{key}: values repeat")
        return vary


@dataclass(frozen=True)
class Member:
    """One study of a campaign: its name, the varied fields' values (in `vary`'s order) and its spec."""

    name: str
    values: dict[str, Any]
    spec: StudySpec


def value_slug(value: Any) -> str:
    """A varied value as part of a study name: lists joined by `x`, `.` as `p`, other characters as `_`."""
    if isinstance(value, list | tuple):
        return "x".join(value_slug(item) for item in value)
    text = str(value).lower().replace(".", "p")
    return re.sub(r"[^a-z0-9_-]", "_", text)


def load_campaign(path: str | Path) -> CampaignSpec:
    """A campaign from a YAML/JSON file or a shipped campaign's name (`anisotropy`). FileNotFoundError naming
    the shipped campaigns, or SpecError naming each bad field."""
    file = campaign_path(path)
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise SpecError(f"{file}: not valid YAML: {error}") from None
    return validate_campaign(data, source=str(file))


def validate_campaign(data: Any, source: str = "campaign") -> CampaignSpec:
    """`CampaignSpec.model_validate` with errors as one SpecError naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a campaign must be a mapping, got {type(data).__name__}")
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(f"{source}: " + "; ".join(format_validation_error(error))) from None


def base_data(campaign: CampaignSpec) -> dict[str, Any]:
    """The base study spec as a mapping (a shipped spec read from its file)."""
    if isinstance(campaign.base, dict):
        return json.loads(json.dumps(campaign.base))
    data = yaml.safe_load(spec_path(campaign.base).read_text()) or {}
    if not isinstance(data, dict):
        raise SpecError(f"base: {campaign.base} is not a study spec mapping")
    return data


def expand(campaign: CampaignSpec, overrides: list[str] | tuple[str, ...] = ()) -> list[Member]:
    """The campaign's studies, one per combination of the varied values (the first field varying slowest),
    each validated; `overrides` (`key=value`) apply to the base first. SpecError naming the member and field
    for the first member that does not validate, for clashing names, or for a sum of trials over
    MAX_CAMPAIGN_TRIALS."""
    base = apply_overrides(base_data(campaign), list(overrides))
    base_spec = validate_spec({**base, "name": campaign.name}, source="base")
    combinations = [dict(zip(campaign.vary, c, strict=True)) for c in itertools.product(*campaign.vary.values())]
    names = ["-".join([campaign.name, *(value_slug(v) for v in values.values())]) for values in combinations]
    if len(set(names)) != len(names):
        raise SpecError("vary: two values give the same study name; make them differ in letters or digits")
    members = []
    for name, values in zip(names, combinations, strict=True):
        if not re.fullmatch(SLUG_PATTERN, name):
            raise SpecError(f"vary: the study name {name!r} is not a valid name; shorten the campaign's name")
        data = json.loads(json.dumps(base))
        apply_overrides(data, [f"{key}={json.dumps(value)}" for key, value in values.items()])
        data["name"] = name
        if "encoding" in values:
            data = fit_to_encoding(data, base_spec, campaign.baseline_seeds)
        members.append(Member(name, values, validate_spec(data, source=f"study {name}")))
    total = sum(planned_trials(m.spec) for m in members)
    if total > MAX_CAMPAIGN_TRIALS:
        raise SpecError(f"vary: the campaign plans {total} trials, over the limit of {MAX_CAMPAIGN_TRIALS}")
    return members


def planned_trials(spec: StudySpec) -> int:
    """Search trials plus planned repeats of one study."""
    repeats = spec.repeats.top_k * spec.repeats.seeds if spec.repeats else 0
    return spec.n_trials + repeats


def fit_to_encoding(data: dict[str, Any], base: StudySpec, baseline_seeds: int) -> dict[str, Any]:
    """A member's spec mapping made fit for its encoding from the base's searched axes (see the module)."""
    encoding = data.get("encoding", "afpe")
    if encoding not in searchable_encodings():
        seeds = base.repeats.seeds if base.repeats else baseline_seeds
        for key in ("axes", "fixed", "ratio", "prediction", "scheduler"):
            data.pop(key, None)
        return {**data, "n_trials": 1, "repeats": {"top_k": 1, "seeds": seeds}}
    if is_isotropic(encoding) and base.axes:
        ndim = task_info(data["task"], data.get("task_options") or {}).ndim
        low = min(axis.low for axis in base.axes)
        high = max(axis.high for axis in base.axes)
        data = {key: value for key, value in data.items() if key not in ("fixed", "ratio", "prediction")}
        data["axes"] = [{"name": ISOTROPIC_AXIS, "grid_axes": list(range(ndim)), "low": low, "high": high}]
    return data
