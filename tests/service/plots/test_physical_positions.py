"""The ratio plot and the similarity map of a study with physical positions name the unit, and the map lies on the
study's own token grid, its tokens placed in the task's units."""

from __future__ import annotations

import numpy as np
import optuna

from afpe.search import validate_spec
from afpe.search.spec import SearchSpace
from afpe.search.testing import add_trials, tiny_synthetic2d
from afpe.service.plots.kinds import build_figure
from afpe.service.plots.similarity import similarity_data

NOTE = "positions physical: scales in cycles per 32 pixel (token spacing rows: 4 pixel, cols: 8 pixel)"


def study_of(spec: dict) -> tuple[optuna.Study, SearchSpace]:
    spec = validate_spec(spec).model_dump(mode="json")
    study = optuna.create_study(direction="maximize")
    add_trials(study, spec, 8)
    return study, SearchSpace.from_spec(spec)


def test_the_ratio_and_similarity_plots_name_the_unit() -> None:
    model = {"dim": 16, "depth": 1, "heads": 2, "patch_size": [4, 8]}
    study, space = study_of(tiny_synthetic2d({"positions": "physical", "model": model}, name="phys"))
    assert NOTE in build_figure("ratio", study.trials, space).layout.title.text
    assert NOTE in build_figure("similarity", study.trials, space).layout.title.text

    normalized_study, normalized = study_of(tiny_synthetic2d({"model": model}, name="norm"))
    assert "positions" not in build_figure("ratio", normalized_study.trials, normalized).layout.title.text
    # both maps lie on the study's own 8 x 4 token grid (32 x 32 pixels, patches 4 x 8); physical positions place
    # the tokens in pixels (spacing 4 and 8) and space them so, normalized ones over [0, 1] per axis
    physical = similarity_data(study.trials, space)
    normalized_data = similarity_data(normalized_study.trials, normalized)
    physical_map, normalized_map = np.array(physical.best_map), np.array(normalized_data.best_map)
    assert physical_map.shape == normalized_map.shape == physical.grid == (8, 4)
    assert physical_map[4, 2] == normalized_map[4, 2] == 1.0
    assert not np.allclose(physical_map, normalized_map)
    assert physical.coordinates == ([4.0 * i for i in range(8)], [8.0 * i for i in range(4)])
    assert normalized_data.coordinates == ([float(i) for i in range(8)], [float(i) for i in range(4)])
    figure = build_figure("similarity", study.trials, space)
    assert figure.layout.yaxis.title.text.startswith("rows (pixel") and figure.layout.xaxis.title.text.startswith(
        "cols (pixel"
    )
    assert list(figure.data[0].x) == [0, 8, 16, 24] and list(figure.data[0].y) == [4.0 * i for i in range(8)]
