"""The specs a service offers and accepts: the shipped specs (`studies/*.yaml`), and validation of a
submitted spec within the service's bounds (trials, epochs, resources, and what a trial costs: model size,
tokens per sample, a batch's activations, generated data), its `data_root` resolved under the data directory
and its data checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from afpe.search.data_check import DataRootError, check_data
from afpe.search.spec import SLUG_PATTERN, SpecError, StudySpec
from afpe.search.spec_loading import apply_override_lines, load_spec, validate_spec
from afpe.service.errors import InvalidInput, NotFound
from afpe.service.manager.costs import spec_cost
from afpe.service.manager.views import SpecSummary
from afpe.service.settings import ServiceSettings

SLUG = re.compile(SLUG_PATTERN)


class SpecAdmission:
    """Which specs the service admits: the shipped ones it offers, and a submitted one within its bounds."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings

    def shipped_specs(self) -> list[SpecSummary]:
        """Every `*.yaml` of the specs folder; one that does not load is listed with its error."""
        items = []
        for path in sorted(self.settings.specs_dir.glob("*.yaml")):
            try:
                spec = load_spec(path)
            except (SpecError, FileNotFoundError) as error:
                items.append(SpecSummary(name=path.stem, error=str(error)))
                continue
            summary = spec.description.strip().splitlines()[0] if spec.description.strip() else ""
            fields = spec.model_dump(include={"task", "encoding", "n_trials"})
            items.append(SpecSummary(name=path.stem, summary=summary, study=spec.name, **fields))
        return items

    def shipped_spec(self, name: str) -> StudySpec:
        """The shipped spec `name` (a slug: never a path) within bounds; NotFound lists the shipped names."""
        path = self.settings.specs_dir / f"{name}.yaml"
        if not SLUG.fullmatch(name) or not path.is_file():
            known = ", ".join(item.name for item in self.shipped_specs()) or "none"
            raise NotFound(f"spec: no shipped spec {name!r} (shipped: {known})")
        try:
            return self.validate(load_spec(path).model_dump(mode="json"))
        except SpecError as error:
            raise InvalidInput(str(error)) from None

    def with_form_overrides(self, name: str, text: str) -> dict[str, Any]:
        """The shipped spec `name` with the dashboard form's `key=value` lines applied (as `afpe run --set`)."""
        try:
            return apply_override_lines(self.shipped_spec(name).model_dump(mode="json"), text)
        except SpecError as error:
            raise InvalidInput(str(error)) from None

    def validate(self, body: Any) -> StudySpec:
        """A StudySpec within the service's bounds, its data_root resolved under the data directory;
        InvalidInput naming the field otherwise."""
        try:
            spec = validate_spec(body, source="spec")
        except SpecError as error:
            raise InvalidInput(str(error)) from None
        s = self.settings
        try:
            cost = spec_cost(spec)
        except ValueError as error:
            raise InvalidInput(f"spec: {error}") from None
        bounds = [
            ("n_trials", spec.n_trials, s.max_trials),
            ("trainer.epochs", spec.trainer.epochs, s.max_epochs),
            ("resources.cpus", spec.resources.cpus, s.max_trial_cpus),
            ("resources.gpu", spec.resources.gpu, s.max_trial_gpus),
            ("trainer.model (parameters)", cost.model_params, s.max_model_params),
            ("trainer.model.patch_size (tokens per sample)", cost.tokens, s.max_tokens),
            (
                "trainer.batch_size (activations: batch × tokens × dim × depth, bytes)",
                cost.activation_bytes,
                s.max_activation_bytes,
            ),
            ("task_options (generated data, bytes)", cost.generated_bytes, s.max_generated_bytes),
        ]
        for field, value, limit in bounds:
            if value > limit:
                raise InvalidInput(f"spec: {field}: {value} exceeds this service's limit of {limit}")
        if spec.resources.cpus < s.min_trial_cpus:
            raise InvalidInput(
                f"spec: resources.cpus: {spec.resources.cpus} is below this service's minimum of {s.min_trial_cpus}"
            )
        return spec.model_copy(update={"data_root": str(self.resolve_data_root(spec.data_root))})

    def check_data(self, spec: StudySpec) -> None:
        """The data check `afpe run` does before Ray starts (`search.data_check.check_data`: the task's dataset
        read, its cache built), when this service sees its data directory; otherwise the job's driver checks it.
        InvalidInput naming `data_root` for a missing or malformed data folder."""
        if not self.settings.data_dir.is_dir():
            return
        try:
            check_data(spec.task, spec.task_options, spec.data_root)
        except DataRootError as error:
            raise InvalidInput(f"spec: {error}") from None

    def resolve_data_root(self, data_root: str | None) -> Path:
        """data_root (relative: to the data directory) with links resolved; it must lie inside the data dir.
        InvalidInput for one outside, or one the file system cannot take (a NUL byte, a link loop)."""
        base = self.settings.data_dir
        if not data_root:
            return base
        try:
            path = (base / Path(data_root).expanduser()).resolve()
        except (ValueError, OSError, RuntimeError) as error:
            raise InvalidInput(f"spec: data_root: {data_root!r} is not a usable path ({error})") from None
        if not path.is_relative_to(base):
            raise InvalidInput(f"spec: data_root: {data_root!r} lies outside the data directory {base}")
        return path
