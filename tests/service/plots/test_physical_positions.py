"""The ratio plot and the similarity map of a study with physical positions name the unit, and the map places its
display grid over the study's physical extent."""

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
    # the display grid spans the study's tokens: [0, 7 x 4/32] x [0, 3 x 8/32] instead of [0, 1]^2
    physical_map = np.array(similarity_data(study.trials, space).best_map)
    normalized_map = np.array(similarity_data(study.trials, normalized).best_map)
    assert physical_map.shape == normalized_map.shape
    assert physical_map[16, 16] == normalized_map[16, 16] == 1.0
    assert not np.allclose(physical_map, normalized_map)
