"""`trainer.positions` in a study: validated once, carried to every trial and into the identity, named by the
status with its unit, and converted for MONAI by `export --format monai`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from monai.networks.blocks.pos_embed_utils import build_fourier_position_embedding

from afpe.encodings import build_encoding
from afpe.encodings.upstream import rounding_bound
from afpe.search import SpecError, load_spec, validate_spec
from afpe.search.driver import base_train_config
from afpe.search.monai_export import monai_text
from afpe.search.spec import SearchSpace
from afpe.search.storage import StudyConflictError, claim_study, open_storage
from afpe.search.summary import summarize
from afpe.search.testing import add_trials, tiny_synthetic2d
from afpe.trainers import TrainConfig

NOTE = "positions physical: scales in cycles per 32 pixel (token spacing rows: 4 pixel, cols: 8 pixel)"


def physical_spec() -> dict:
    """32 x 32 pixels in patches of 4 x 8: an 8 x 4 token grid, tokens 4 and 8 pixels apart."""
    model = {"dim": 16, "depth": 1, "heads": 2, "patch_size": [4, 8]}
    return tiny_synthetic2d({"positions": "physical", "model": model}, name="phys")


def test_the_positions_flow_from_an_override_to_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_synthetic2d(name="s")))
    spec = load_spec(path, ["trainer.positions=physical", "trainer.reference_length=64"])
    config = TrainConfig.model_validate({**base_train_config(spec), "scales": [1.0, 2.0]})
    assert (config.positions, config.reference_length) == ("physical", 64.0)
    assert spec.identity()["positions"] == "physical"
    assert "positions" not in load_spec(path).identity(), "normalized studies keep their former identity"
    with pytest.raises(SpecError, match="trainer.positions"):
        load_spec(path, ["trainer.positions=metres"])
    with pytest.raises(SpecError, match="trainer.reference_length"):
        load_spec(path, ["trainer.reference_length=0"])


def test_a_physical_study_is_claimed_again_by_its_own_spec_and_only_by_it(tmp_path: Path) -> None:
    """The service claims a study, then its job's `afpe run --resume` claims it again: the stored spec keeps the
    positions under `trainer`, and the identity must read them there (it read a top-level key and refused)."""
    storage = open_storage(f"sqlite:///{tmp_path / 'afpe.db'}")
    physical = validate_spec(physical_spec())
    claim_study(storage, physical, resume=False)
    assert claim_study(storage, physical, resume=True).study_name == "phys"
    normalized = validate_spec(
        {**physical_spec(), "trainer": {**physical_spec()["trainer"], "positions": "normalized"}}
    )
    with pytest.raises(StudyConflictError, match="positions: stored 'physical', given None"):
        claim_study(storage, normalized, resume=True)


def test_the_search_space_and_status_name_the_unit() -> None:
    spec = physical_spec()
    space = validate_spec(spec).search_space()
    assert (space.positions, space.grid, space.positions_note) == ("physical", (8, 4), NOTE)
    assert space.spacing == pytest.approx((4 / 32, 8 / 32))
    study = optuna.create_study(study_name="phys", direction="maximize")
    study.set_user_attr("spec", validate_spec(spec).model_dump(mode="json"))
    add_trials(study, spec, 6)
    summary = summarize(study)
    assert summary.lines()[1] == NOTE and summary.to_json()["positions"] == NOTE
    normalized = tiny_synthetic2d(name="norm")
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("spec", normalized)
    add_trials(study, normalized, 3)
    assert summarize(study).to_json()["positions"] is None
    assert not any(line.startswith("positions") for line in summarize(study).lines())
    imported = SearchSpace.from_spec({**spec, "task": "from-elsewhere"})
    assert imported.positions_note == "positions physical: units unknown (task 'from-elsewhere')"
    assert imported.spacing is None


def test_the_monai_export_converts_physical_scales() -> None:
    spec = validate_spec(physical_spec()).model_dump(mode="json")
    study = optuna.create_study(study_name="phys", direction="maximize")
    study.set_user_attr("spec", spec)
    add_trials(study, spec, 5)
    best = study.best_trial
    scales = [best.params["s_rows"], best.params["s_cols"]]
    snippet = monai_text(study)
    (line,) = [line for line in snippet.splitlines() if line.startswith("SCALES = ")]
    exported = ast.literal_eval(re.sub(r"\s*#.*$", "", line.removeprefix("SCALES = ")))
    assert exported == pytest.approx([scales[0] * (4 / 32) * 7, scales[1] * (8 / 32) * 3])
    assert "are for physical positions" in snippet
    ours = build_encoding("afpe", (8, 4), 16, scales=scales, spacing=(4 / 32, 8 / 32), seed=spec["pe_seed"])
    torch.manual_seed(spec["pe_seed"])
    theirs = build_fourier_position_embedding([8, 4], 16, 2, exported)
    assert (ours() - theirs).abs().max().item() <= rounding_bound(ours.gaussian * torch.tensor(exported))
