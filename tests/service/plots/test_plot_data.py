"""Plot data from real Optuna studies written with the search layout."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from afpe.search.spec import SearchSpace
from afpe.service.plots.axes import axes_data
from afpe.service.plots.contour import contour_data
from afpe.service.plots.history import history_data
from afpe.service.plots.intermediate import intermediate_data
from afpe.service.plots.kinds import build_figure, list_plot_kinds, studies_figure
from afpe.service.plots.ratio import binned_trend, ratio_data
from afpe.service.plots.similarity import similarity_data


def view_of(study: optuna.Study) -> SearchSpace:
    return SearchSpace.from_spec(study.user_attrs["spec"])


def test_ratio_data_finds_the_known_peak_and_range(demo_study):
    data = ratio_data(demo_study.trials, view_of(demo_study))
    complete = [t for t in demo_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(data.x) == len(complete) == 54
    assert data.best_run.mean == demo_study.best_value and data.best_run.number == demo_study.best_trial.number
    assert data.answer.number == demo_study.best_trial.number and data.answer.n == 1  # no repeats: the best run
    assert data.searched == pytest.approx((0.1 / 4.0, 4.0 / 0.1))
    for x, t in zip(data.x, complete, strict=True):
        assert x == pytest.approx(t.params["s_rows"] / t.params["s_cols"])
    # the landscape peaks at ratio 2: the best binned mean lies within a bin width or two of it
    peak = data.trend.centers[int(np.argmax(data.trend.means))]
    assert abs(math.log2(peak) - 1.0) < 2.5
    assert sum(data.trend.counts) == 54
    # the smoothed optimum (a GP over the 54 trials) brackets the peak, and the figure draws it
    x, low, high = data.optimum
    assert low <= 2.0 <= high and abs(math.log2(x) - 1.0) <= 1.0
    figure = build_figure("ratio", demo_study.trials, view_of(demo_study))
    assert any(shape.name.startswith("smoothed optimum") for shape in figure.layout.shapes)


def test_binned_trend_mean_and_spread():
    trend = binned_trend([0.1, 0.2, 0.9, 1.0], [1.0, 3.0, 5.0, 5.0], np.array([0.0, 0.5, 1.0]))
    assert trend.means == [2.0, 5.0]
    assert trend.stds == [1.0, 0.0]
    assert trend.counts == [2, 2]


def test_history_best_so_far_is_monotone_and_ends_at_best(demo_study):
    data = history_data(demo_study.trials, view_of(demo_study))
    assert all(b2 >= b1 for b1, b2 in zip(data.best_so_far, data.best_so_far[1:], strict=False))
    assert data.best_so_far[-1] == demo_study.best_value


def test_history_minimize_uses_running_minimum(spec_2d, trial_writer):
    spec_2d["direction"] = "minimize"
    study = optuna.create_study(direction="minimize")
    trial_writer(study, spec_2d, 20)
    data = history_data(study.trials, SearchSpace.from_spec(spec_2d))
    assert data.best_so_far[-1] == study.best_value == min(data.values)


def test_intermediate_shows_pruned_curves(demo_study):
    data = intermediate_data(demo_study.trials, view_of(demo_study))
    states = {c.state for c in data.curves}
    assert states == {"COMPLETE", "PRUNED"}
    pruned = [c for c in data.curves if c.state == "PRUNED"]
    assert len(pruned) == 6 and all(c.steps == [1] for c in pruned)


def test_contour_bins_average_the_trials(demo_study):
    data = contour_data(demo_study.trials, view_of(demo_study), bins=4)
    filled = [v for row in data.z for v in row if v is not None]
    assert filled and min(data.points_value) <= min(filled) <= max(filled) <= max(data.points_value)
    assert len(data.z) == 4 and len(data.z[0]) == 4


def test_axes_data_one_panel_per_axis(demo_study):
    data = axes_data(demo_study.trials, view_of(demo_study))
    assert [p.axis.param for p in data.panels] == ["s_rows", "s_cols"]
    assert data.best == demo_study.best_params


def test_similarity_best_vs_isotropic(demo_study):
    data = similarity_data(demo_study.trials, view_of(demo_study))
    best = demo_study.best_params
    assert data.best_scales == [best["s_rows"], best["s_cols"]]
    assert data.isotropic_scale == pytest.approx(math.sqrt(best["s_rows"] * best["s_cols"]))
    centre = np.array(data.best_map)[16, 16]
    assert centre == pytest.approx(1.0)
    assert np.array(data.best_map).shape == (32, 32)
    assert not np.allclose(data.best_map, data.isotropic_map)


def test_similarity_3d_shows_the_ratio_plane(spec_2d, trial_writer):
    spec_2d["axes"] = [
        {"name": "time", "grid_axes": [0], "low": 0.1, "high": 2.0},
        {"name": "space", "grid_axes": [1, 2], "low": 0.1, "high": 2.0},
    ]
    spec_2d["ratio"] = ["time", "space"]
    study = optuna.create_study(direction="maximize")
    trial_writer(study, spec_2d, 5)
    data = similarity_data(study.trials, SearchSpace.from_spec(spec_2d))
    assert len(data.best_scales) == 3 and data.best_scales[1] == data.best_scales[2]
    assert np.array(data.best_map).shape == (16, 16)
    # the task ("synthetic") is not registered here: no token grid, a display grid of normalized positions, said so
    assert data.axis_labels == (
        "grid axis 0 (position 0 to 1; scale s_time)",
        "grid axis 1 (position 0 to 1; scale s_space)",
    )
    assert data.grid_note == "a 16 × 16 × 16 display grid (task unknown here: no token grid)"


def test_no_data_errors_are_value_errors(spec_2d):
    view = SearchSpace.from_spec(spec_2d)
    with pytest.raises(ValueError, match="no finished trial"):
        similarity_data([], view)
    with pytest.raises(ValueError, match="unknown plot kind"):
        build_figure("pie", [], view)
    one_axis = SearchSpace.from_spec({**spec_2d, "axes": spec_2d["axes"][:1], "ratio": None})
    with pytest.raises(ValueError, match="fewer than two scale axes"):
        ratio_data([], one_axis)


@pytest.mark.parametrize("kind", list_plot_kinds())
def test_every_kind_renders_a_figure_with_data(demo_study, kind):
    figure = build_figure(kind, demo_study.trials, view_of(demo_study))
    assert figure.data and any(len(trace.x if trace.x is not None else trace.z) for trace in figure.data)


def test_every_kind_is_registered_in_one_registry_in_page_order(demo_study):
    """Study kinds in the order the study page shows them; compare and trend registered beside them, drawn only
    from what their query of several studies answered."""
    assert list_plot_kinds() == [
        "ratio",
        "axes",
        "contour",
        "history",
        "intermediate",
        "similarity",
        "importance",
        "timeline",
    ]
    assert list_plot_kinds(across_studies=True) == ["compare", "trend"]
    with pytest.raises(ValueError, match="draws several studies"):
        build_figure("compare", demo_study.trials, view_of(demo_study))
    with pytest.raises(ValueError, match="draws one study"):
        studies_figure("ratio", None)
    answer = {"studies": [{"name": "a", "encoding": "afpe", "metric": "auroc", "best": None}], "confidence": 0.95}
    assert (
        studies_figure("compare", answer).layout.title.text == "best value per study (mean over runs, 95% t-interval)"
    )
