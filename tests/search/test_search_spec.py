"""StudySpec: every shipped spec validates; bad specs and overrides name the field; the CLI exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from afpe.search import SpecError, load_spec, validate_spec
from afpe.service.cli import main
from afpe.trainers import task_info

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SPECS = sorted(STUDIES.glob("*.yaml"))

BASE = {
    "name": "t",
    "task": "synthetic3d",
    "task_options": {"anisotropy": [1, 1, 4]},
    "axes": [
        {"name": "xy", "grid_axes": [0, 1], "low": 0.1, "high": 10},
        {"name": "z", "grid_axes": [2], "low": 0.1, "high": 10},
    ],
}


def test_studies_folder_has_the_promised_specs() -> None:
    names = {path.stem for path in SPECS}
    assert {"quickstart", "chestx-afpe", "echonet-afpe", "organmnist3d-afpe", "brats-afpe", "msd-spleen-afpe"} <= names
    assert not any(name.startswith("synthetic3d-anisotropy") for name in names)  # the `anisotropy` campaign now


@pytest.mark.parametrize("path", SPECS, ids=[path.stem for path in SPECS])
def test_every_shipped_spec_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.metric is not None and spec.direction in ("maximize", "minimize")
    scales = spec.scales_for({axis.param: axis.low for axis in spec.axes})
    assert len(scales) == spec.ndim


def test_paper_searches_are_fifty_random_trials_with_a_ratio() -> None:
    for stem in ("chestx-afpe", "echonet-afpe", "organmnist3d-afpe"):
        spec = load_spec(STUDIES / f"{stem}.yaml")
        assert (spec.n_trials, spec.sampler) == (50, "random")
        assert spec.ratio is not None


def test_echonet_ratio_range_brackets_an_optimum_beyond_ten() -> None:
    spec = load_spec(STUDIES / "echonet-afpe.yaml")
    axes = {axis.name: axis for axis in spec.axes}
    top, bottom = (axes[name] for name in spec.ratio)
    assert spec.ratio == ("time", "space")
    assert top.high / bottom.low >= 100  # a published optimum near 7 (and up to 30) lies well inside


def test_defaults_come_from_the_task_and_ratio_from_the_first_two_axes() -> None:
    spec = validate_spec(BASE)
    info = task_info("synthetic3d", BASE["task_options"])
    assert (spec.metric, spec.direction) == (info.default_metric, info.metrics[info.default_metric])
    assert spec.ratio == ("xy", "z")
    assert spec.scales_for({"s_xy": 2.0, "s_z": 0.5}) == [2.0, 2.0, 0.5]


def test_fixed_scales_fill_undriven_grid_axes() -> None:
    spec = validate_spec({**BASE, "axes": BASE["axes"][:1], "fixed": {2: 0.25}})
    assert spec.scales_for({"s_xy": 3.0}) == [3.0, 3.0, 0.25]
    assert spec.ratio is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"n_trials": 0}, "n_trials:"),
        ({"name": "Bad Name!"}, "name:"),
        ({"task": "nope"}, "task: unknown task"),
        ({"encoding": "sincos"}, "encoding:"),
        ({"encoding": "sincos", "axes": [], "n_trials": 4}, "encoding:"),
        ({"axes": []}, "axes:"),
        ({"sampler": "grid"}, "sampler:"),
        ({"trainer": {"epochs": 0}}, "trainer.epochs:"),
        ({"trainer": {"bogus": 1}}, "trainer.bogus:"),
        ({"axes": [{"name": "a", "grid_axes": [3], "low": 0.1, "high": 1}]}, "axes.0.grid_axes:"),
        ({"axes": [{"name": "a", "grid_axes": [0], "low": 1, "high": 0.1}]}, "axes.0:"),
        (
            {
                "axes": [
                    {"name": "a", "grid_axes": [0, 1], "low": 0.1, "high": 1},
                    {"name": "b", "grid_axes": [1], "low": 0.1, "high": 1},
                ]
            },
            "axes.1.grid_axes:",
        ),
        ({"ratio": ["xy", "w"]}, "ratio.1:"),
        ({"metric": "bleu"}, "metric:"),
        ({"fixed": {0: 1.0}}, "fixed.0:"),
        ({"resources": {"gpu": 2}}, "resources.gpu: a trial trains on a single device"),
        ({"trainer": {"device": "cuda:1"}}, "trainer.device: 'cuda:1' needs resources.gpu > 0"),
        ({"trainer": {"device": "cpu"}, "resources": {"gpu": 0.5}}, "trainer.device: 'cpu' would hold"),
        ({"trainer": {"loader_workers": 3}, "resources": {"cpus": 2}}, "trainer.loader_workers: 3 loader processes"),
        ({"prediction": {"ratio": 0}}, "prediction.ratio:"),
        ({"prediction": {"ratio": 2, "label": ""}}, "prediction.label:"),
        ({"prediction": {"ratio": 2, "note": "x"}}, "prediction.note:"),
        ({"axes": BASE["axes"][:1], "fixed": {2: 1.0}, "prediction": {"ratio": 2}}, "prediction: a predicted ratio"),
    ],
)
def test_validation_errors_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(SpecError) as error:
        validate_spec({**BASE, **change}, source="spec.yaml")
    assert f"spec.yaml: {field}" in str(error.value) or f"; {field}" in str(error.value)


def test_overrides_are_yaml_scalars_on_dotted_paths(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(BASE))
    spec = load_spec(
        path,
        [
            "n_trials=3",
            "trainer.epochs=1",
            "trainer.limit=64",
            "axes.1.high=8",
            "trainer.model.dim=32",
            "data_root=/data/x",
        ],
    )
    assert (spec.n_trials, spec.trainer.epochs, spec.trainer.limit) == (3, 1, 64)
    assert (spec.axes[1].high, spec.trainer.model.dim, spec.data_root) == (8.0, 32, "/data/x")
    with pytest.raises(SpecError, match="axes has no item '5'"):
        load_spec(path, ["axes.5.high=8"])
    with pytest.raises(SpecError, match="--set expects KEY=VALUE"):
        load_spec(path, ["n_trials"])


def test_cli_bad_spec_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert main(["run", str(path), "--set", "n_trials=0", "--storage", f"sqlite:///{tmp_path}/x.db"]) == 2
    err = capsys.readouterr().err
    assert "n_trials:" in err and "Traceback" not in err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:3"])
def test_a_gpu_trial_takes_any_cuda_device_as_the_granted_one(device: str) -> None:
    for gpu in (0.25, 1):
        spec = validate_spec({**BASE, "trainer": {"device": device}, "resources": {"gpu": gpu}})
        assert (spec.trainer.device, spec.resources.gpu) == (device, gpu)


@pytest.mark.parametrize("task", ["echonet", "synthetic_video", "synthetic3d_field"])
def test_a_per_axis_task_option_set_as_text_reads_as_the_list(task: str, tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    axes = [{"name": "all", "grid_axes": [0, 1, 2], "low": 0.1, "high": 10}]
    path.write_text(yaml.safe_dump({"name": "t", "task": task, "axes": axes}))
    option = "grid" if task == "synthetic3d_field" else "patch"
    as_text = load_spec(path, [f"task_options.{option}=2,4,4"])
    as_list = load_spec(path, [f"task_options.{option}=[2, 4, 4]"])
    assert task_info(task, as_text.task_options) == task_info(task, as_list.task_options)
    assert task_info(task, as_text.task_options).patch_grid != task_info(task).patch_grid


def test_prediction_is_optional_and_the_quickstart_states_its_own() -> None:
    assert validate_spec(BASE).prediction is None
    quickstart = load_spec(STUDIES / "quickstart.yaml")
    assert (quickstart.prediction.ratio, quickstart.prediction.label) == (2.0, "predicted l0 / l1 = 2")
    assert quickstart.search_space().prediction == (2.0, "predicted l0 / l1 = 2")
    assert "prediction" not in quickstart.identity(), "a stated prediction does not make another study"
