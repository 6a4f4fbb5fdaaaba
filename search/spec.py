"""`StudySpec`: the one description of a study. YAML files in studies/ and REST bodies validate into it,
and the same object flows unchanged to the Tune driver.

A study searches per-axis positional-encoding scales s_j (log-uniform). Each `AxisSpec` is one searched
parameter `s_<name>` that drives one or more axes of the task's patch grid (so `space` can tie rows and
cols while `time` stands alone). Grid axes that no searched axis drives take their scale from `fixed`
(grid-axis index -> scale), else 1.0. `fourier` has a single isotropic scale: its one axis must drive
every grid axis. A spec comes in from a file, `--set` overrides or a REST body through `spec_loading.py`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from afpe.encodings import check_encoding_dim, list_encodings
from afpe.search.priors import Prior, RuleValues, place_priors, rule_values
from afpe.trainers import ModelConfig, TrainerSettings, build_task, list_tasks, task_info

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="lower-case letters, digits, '-' and '_'")]
Scale = Annotated[float, Field(gt=0.0, le=1e4)]
PARAM_PREFIX = "s_"


def searchable_encodings() -> list[str]:
    """Encodings with scales to search: per-axis ones and the isotropic `fourier` (from the registry)."""
    return [name for name in list_encodings() if name not in list_encodings(scale_search="none")]


def is_isotropic(encoding: str) -> bool:
    """True for an encoding with one global scale (`fourier`): its one axis drives every grid axis."""
    return encoding in list_encodings(scale_search="isotropic")


class SpecError(ValueError):
    """A study spec that does not validate; the message names every bad field as `field.path: problem`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AxisSpec(_Strict):
    """One searched scale `s_<name>`, log-uniform on [low, high], applied to the listed patch-grid axes."""

    name: Slug
    grid_axes: list[Annotated[int, Field(ge=0, le=7)]] = Field(min_length=1, max_length=8)
    low: Scale
    high: Scale

    @model_validator(mode="after")
    def _ordered(self) -> AxisSpec:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if len(set(self.grid_axes)) != len(self.grid_axes):
            raise ValueError(f"grid_axes {self.grid_axes} lists an axis twice")
        return self

    @property
    def param(self) -> str:
        return PARAM_PREFIX + self.name


class AshaSpec(_Strict):
    """Asynchronous successive halving on the epoch count: a trial survives a rung (grace_period * rf^k
    epochs) only when it is in the top 1/rf of the trials that reached that rung."""

    type: Literal["asha"] = "asha"
    grace_period: int = Field(1, ge=1, le=1000)
    reduction_factor: float = Field(3.0, ge=2.0, le=16.0)
    brackets: int = Field(1, ge=1, le=5)


class RepeatsSpec(_Strict):
    """After the search, the `top_k` best configurations are trained again with `seeds` new (seed, pe_seed)
    pairs each, so the answer is a mean with a confidence interval (afpe.search.repeats)."""

    top_k: int = Field(3, ge=1, le=50)
    seeds: int = Field(3, ge=1, le=20)


class PredictionSpec(_Strict):
    """A scale ratio s_a / s_b of the spec's `ratio` axes stated before the runs (a theory's prediction or a
    prior), drawn on the ratio plot as a vertical line named `label`; it changes nothing in the search."""

    ratio: float = Field(ge=1e-4, le=1e4)
    label: str = Field("prediction", min_length=1, max_length=200)


class ResourcesSpec(_Strict):
    """Ray resources of one trial, and how many trials run at once (None: as many as the cluster fits).
    A trial trains on one device: `gpu` is 0 (CPU), a fraction (trials share a GPU) or 1."""

    cpus: float = Field(1.0, gt=0.0, le=256.0)
    gpu: float = Field(0.0, ge=0.0, json_schema_extra={"maximum": 1.0})
    max_concurrent: int | None = Field(None, ge=1, le=1024)

    @field_validator("gpu")
    @classmethod
    def _one_device(cls, value: float) -> float:
        if value > 1:
            raise ValueError(
                f"a trial trains on a single device: give at most 1 GPU (a fraction shares one GPU between "
                f"trials), got {value:g}"
            )
        return value


class StudySpec(_Strict):
    name: Slug
    description: str = Field("", max_length=4000)
    task: str = Field(min_length=1, max_length=64)
    task_options: dict[str, Any] = Field(default_factory=dict)
    encoding: str = "afpe"
    axes: list[AxisSpec] = Field(default_factory=list, max_length=8)
    fixed: dict[Annotated[int, Field(ge=0, le=7)], Scale] = Field(default_factory=dict)
    ratio: tuple[Slug, Slug] | None = None
    n_trials: int = Field(50, ge=1, le=10_000)
    sampler: Literal["random", "tpe", "gp"] = "random"
    scheduler: AshaSpec | None = None
    repeats: RepeatsSpec | None = None
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    metric: str | None = Field(None, min_length=1, max_length=64)
    direction: Literal["maximize", "minimize"] | None = None
    pe_seed: int = Field(0, ge=0, le=2**31 - 1)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data_root: str | None = None
    max_failures: int = Field(1, ge=0, le=10)
    prediction: PredictionSpec | None = None
    prior: bool = Field(
        True,
        description="run the priors (scales set by rules from the task's geometry: search/priors.py) as the study's "
        "first trials, within n_trials: its answer says what searching gained over them (per-axis, >= 2 axes)",
    )

    @model_validator(mode="after")
    def _check_against_task(self) -> StudySpec:
        """Cross-field rules; each message starts with the field it is about."""
        if self.task not in list_tasks():
            raise ValueError(f"task: unknown task {self.task!r} (valid: {', '.join(list_tasks())})")
        try:
            info = task_info(self.task, self.task_options)
        except (ValueError, TypeError) as error:
            raise ValueError(f"task_options: {error}") from None
        if self.encoding not in list_encodings():
            raise ValueError(f"encoding: unknown encoding {self.encoding!r} (valid: {', '.join(list_encodings())})")
        if self.encoding not in searchable_encodings():
            self._check_baseline()
        elif not self.axes:
            raise ValueError(f"axes: {self.encoding} needs at least one searched axis")
        self._check_axes(info.ndim, info.axis_names)
        try:
            check_encoding_dim(self.encoding, self.trainer.model.dim, info.ndim)
        except ValueError as error:
            raise ValueError(f"trainer.model.dim: {error}") from None
        if self.trainer.positions == "physical":
            needs = build_task(self.task, self.task_options).spacing_needs_data
            if needs is not None:
                raise ValueError(f"{needs}; a study places its tokens in physical units without reading the data")
        try:
            info.resolve_pool(self.trainer.model.pool)
        except ValueError as error:
            raise ValueError(f"trainer.{error}") from None
        if self.metric is None:
            self.metric = info.default_metric
        if self.metric not in info.metrics:
            raise ValueError(f"metric: {self.task} reports {', '.join(info.metrics)}, not {self.metric!r}")
        if self.direction is None:
            self.direction = info.metrics[self.metric]
        self._check_device()
        workers = self.trainer.loader_workers
        if workers is not None and workers > self.resources.cpus:
            raise ValueError(
                f"trainer.loader_workers: {workers} loader processes per trial exceed its resources.cpus "
                f"{self.resources.cpus:g}; lower it or leave it unset (on CUDA: one per CPU but one)"
            )
        return self

    def _check_device(self) -> None:
        """A trial trains on the device Ray grants it (CPU when resources.gpu is 0, else its GPU, which
        `cuda`/`cuda:N` name whatever N), so a device that contradicts the grant is refused."""
        device, gpu = self.trainer.device, self.resources.gpu
        if device.startswith("cuda") and gpu == 0:
            raise ValueError(
                f"trainer.device: {device!r} needs resources.gpu > 0 (a trial trains on the device Ray grants it)"
            )
        if device == "cpu" and gpu > 0:
            raise ValueError(
                f"trainer.device: 'cpu' would hold resources.gpu {gpu:g} it never uses; set resources.gpu=0"
            )

    def _check_baseline(self) -> None:
        """An encoding without scales (none, learnable, sincos) is a baseline: one configuration, trained with
        1 + repeats.seeds seeds, so that its answer is a mean with an interval to set beside the searches."""
        if self.axes or self.n_trials != 1:
            raise ValueError(
                f"encoding: {self.encoding!r} has no scales to search; as a baseline give no axes, n_trials 1 and "
                f"repeats {{top_k: 1, seeds: N}} (searchable: {', '.join(searchable_encodings())})"
            )

    def _check_axes(self, ndim: int, axis_names: tuple[str, ...]) -> None:
        names = [axis.name for axis in self.axes]
        if len(set(names)) != len(names):
            raise ValueError(f"axes: names must be unique, got {names}")
        covered: dict[int, str] = {}
        for index, axis in enumerate(self.axes):
            for grid_axis in axis.grid_axes:
                if grid_axis >= ndim:
                    raise ValueError(
                        f"axes.{index}.grid_axes: {self.task} has {ndim} grid axes "
                        f"({', '.join(f'{i}={n}' for i, n in enumerate(axis_names))}), no axis {grid_axis}"
                    )
                if grid_axis in covered:
                    raise ValueError(
                        f"axes.{index}.grid_axes: grid axis {grid_axis} is already driven by {covered[grid_axis]!r}"
                    )
                covered[grid_axis] = axis.name
        for grid_axis in self.fixed:
            if grid_axis >= ndim or grid_axis in covered:
                raise ValueError(f"fixed.{grid_axis}: not a grid axis that no searched axis drives")
        if is_isotropic(self.encoding) and (len(self.axes) != 1 or len(covered) != ndim):
            raise ValueError("axes: fourier has one isotropic scale: give exactly one axis driving every grid axis")
        if self.ratio is not None:
            for position, name in enumerate(self.ratio):
                if name not in names:
                    raise ValueError(f"ratio.{position}: {name!r} is not one of the axes ({', '.join(names)})")
            if self.ratio[0] == self.ratio[1]:
                raise ValueError("ratio: needs two different axes")
        elif len(self.axes) >= 2:
            self.ratio = (self.axes[0].name, self.axes[1].name)
        if self.prediction is not None and self.ratio is None:
            raise ValueError("prediction: a predicted ratio needs two searched axes (the spec's `ratio`)")

    @property
    def ndim(self) -> int:
        return task_info(self.task, self.task_options).ndim

    def identity(self) -> dict[str, Any]:
        """The fields that make two specs the same study (a name is refused for a different identity)."""
        from afpe.search.storage import spec_identity  # beside `claim_study`, which compares stored specs by it

        return spec_identity(self.model_dump(mode="json"))

    def search_space(self) -> SearchSpace:
        """What the analysis and the plots need of this spec."""
        return SearchSpace.from_spec(self.model_dump(mode="json"), ndim=self.ndim)

    def scales_for(self, params: dict[str, float]) -> list[float]:
        """Per-grid-axis scales from one trial's params {s_<axis>: value}; undriven axes: `fixed` or 1.0."""
        return self.search_space().scales_for(params)

    def resolved_data_root(self) -> str | None:
        """`data_root`, else the environment's AFPE_DATA_DIR, else None (the task's own default)."""
        return self.data_root or os.environ.get("AFPE_DATA_DIR") or None


@dataclass(frozen=True)
class SearchSpace:
    """The searched scales of a study and how its trials are judged: what the analysis, the exports and the
    plots read. Built from a full StudySpec, or (`from_spec`) from any stored spec dict, imported studies'
    included, whose task need not be a registered one."""

    axes: tuple[AxisSpec, ...]
    ratio: tuple[str, str] | None
    metric: str
    direction: str
    encoding: str = "afpe"
    pe_seed: int = 0
    dim: int = ModelConfig().dim
    n_trials: int = 0
    ndim: int = 0
    fixed: dict[int, float] = field(default_factory=dict)
    planned_repeats: int = 0  # repeats.top_k * repeats.seeds
    #: `trainer.positions`; with "physical", `spacing` (the token spacing in reference lengths on the token `grid`),
    #: `token_spacing` and `units` (that spacing in the task's units) and `positions_note` (how a scale reads, its
    #: unit named) when the task is registered here. `grid` and `axis_names` (the token grid and its axes' names)
    #: whenever the task is registered here, None for an imported study's unknown task.
    positions: str = "normalized"
    grid: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    positions_note: str | None = None
    axis_names: tuple[str, ...] | None = None
    token_spacing: tuple[float, ...] | None = None
    units: tuple[str, ...] | None = None
    prediction: tuple[float, str] | None = None  # `prediction`: the predicted ratio and its label
    prior: bool = False  # `prior`; False for a spec from before the option (it ran none)
    priors: tuple[Prior, ...] = ()  # the prior configurations (`search/priors.py`)
    priors_note: str | None = None  # why there are none, or fewer than the rules

    @classmethod
    def from_spec(cls, data: dict[str, Any], ndim: int | None = None) -> SearchSpace:
        """From a spec dict (the `spec` user attr of an Optuna study). `ndim` defaults to the task's grid axes
        when the task is registered, else to the highest grid axis the axes and `fixed` name."""
        axes = tuple(
            AxisSpec.model_construct(name=a["name"], grid_axes=list(a["grid_axes"]), low=a["low"], high=a["high"])
            for a in data.get("axes") or ()
        )
        ratio = data.get("ratio") or ([a.name for a in axes[:2]] if len(axes) >= 2 else None)
        fixed = {int(k): float(v) for k, v in (data.get("fixed") or {}).items()}
        trainer = data.get("trainer") or {}
        model = trainer.get("model") or {}
        repeats = data.get("repeats") or {}
        positions = trainer.get("positions") or "normalized"
        prediction = data.get("prediction")
        geometry = dict(
            _geometry(
                data.get("task"),
                json.dumps(data.get("task_options") or {}, sort_keys=True),
                positions,
                trainer.get("reference_length"),
                tuple(model["patch_size"]) if model.get("patch_size") else None,
            )
        )
        encoding = data.get("encoding") or "afpe"
        priors = place_priors(geometry.pop("prior_rules"), axes, encoding in list_encodings(scale_search="per_axis"))
        if ndim is None:
            named = max((*(g for a in axes for g in a.grid_axes), *fixed), default=-1) + 1
            ndim = max(named, len(geometry.get("axis_names") or ()))
        return cls(
            **geometry,
            prediction=(float(prediction["ratio"]), prediction.get("label") or "prediction") if prediction else None,
            axes=axes,
            ratio=tuple(ratio) if ratio else None,
            metric=data.get("metric") or "objective",
            direction=data.get("direction") or "maximize",
            encoding=encoding,
            prior=bool(data.get("prior", False)),
            priors=priors.priors,
            priors_note=priors.note,
            pe_seed=int(data.get("pe_seed") or 0),
            dim=int(model.get("dim") or ModelConfig().dim),
            n_trials=int(data.get("n_trials") or 0),
            ndim=ndim,
            fixed=fixed,
            planned_repeats=int(repeats.get("top_k") or 0) * int(repeats.get("seeds") or 0),
        )

    def axis(self, name: str) -> AxisSpec:
        """The searched axis `name`; StopIteration when there is none."""
        return next(a for a in self.axes if a.name == name)

    def fixed_scales(self) -> dict[str, float]:
        """The scales of the grid axes no searched axis drives ({name: `fixed` or 1.0}; a name is the task's
        axis name, else 'grid axis k')."""
        driven = {g for axis in self.axes for g in axis.grid_axes}
        names = self.axis_names if self.axis_names and len(self.axis_names) == self.ndim else None
        names = names or tuple(f"grid axis {g}" for g in range(self.ndim))
        return {names[g]: self.fixed.get(g, 1.0) for g in range(self.ndim) if g not in driven}

    def scales_for(self, params: dict[str, float]) -> list[float]:
        """Per-grid-axis scales from one trial's params {s_<axis>: value}; undriven axes: `fixed` or 1.0.
        KeyError when a searched axis has no param."""
        scales = [self.fixed.get(grid_axis, 1.0) for grid_axis in range(self.ndim)]
        for axis in self.axes:
            for grid_axis in axis.grid_axes:
                scales[grid_axis] = float(params[axis.param])
        return scales


@functools.lru_cache(maxsize=256)
def _geometry(
    task: str | None, options: str, positions: str, reference_length: float | None, patch_size: tuple[int, ...] | None
) -> dict[str, Any]:
    """`SearchSpace`'s positions and token-grid fields of a spec (`options`: its task options as JSON): the token
    grid and its axes' names, with physical positions also the spacing, units and note (a note saying the units
    are unknown when the task is not registered here), and `prior_rules` (`priors.rule_values`, not a field).
    Cached: a task's geometry takes ~2 ms to build."""
    try:
        info = build_task(task, json.loads(options)).info(patch_size) if task in list_tasks() else None
    except (ValueError, TypeError):
        info = None
    if info is None:
        unknown = {"prior_rules": RuleValues(note=f"none: task {task!r} is not registered here")}
        if positions == "normalized":
            return unknown
        note = f"positions {positions}: units unknown (task {task!r})"
        return {**unknown, "positions": positions, "positions_note": note}
    rules = rule_values(
        info.patch_grid, info.spacing, info.patch_size, info.units, positions, info.reference_length(reference_length)
    )
    grid = {"grid": info.patch_grid, "axis_names": info.axis_names, "prior_rules": rules}
    if positions == "normalized":
        return grid
    return {
        **grid,
        "positions": positions,
        "spacing": info.encoding_spacing(positions, reference_length),
        "token_spacing": info.spacing,
        "units": info.units,
        "positions_note": info.positions_note(positions, reference_length),
    }
