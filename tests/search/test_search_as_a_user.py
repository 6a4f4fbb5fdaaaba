"""`afpe run` as a user runs it after `pip install`: the installed console script by absolute path, a PATH
without the venv, another working directory, a shipped spec by name; what happens inside trials reaches the
user (warnings printed once, logs kept after the private Ray is gone, a FAIL pointing at its log)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from afpe.search.shipped_specs import shipped_spec_names, shipped_specs_dir, spec_path
from afpe.search.testing import spec_failing_in_training


def run_afpe(afpe_executable: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [afpe_executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_shipped_specs_are_package_data() -> None:
    assert "quickstart" in shipped_spec_names() and (shipped_specs_dir() / "__init__.py").is_file()
    assert spec_path("quickstart") == spec_path("quickstart.yaml") == shipped_specs_dir() / "quickstart.yaml"


def test_a_file_wins_over_a_shipped_name_and_an_unknown_name_lists_the_shipped(tmp_path: Path) -> None:
    own = tmp_path / "quickstart.yaml"
    own.write_text("name: mine\n")
    assert spec_path(own) == own
    try:
        spec_path(tmp_path / "nope.yaml")
    except FileNotFoundError as error:
        assert "quickstart" in str(error) and "nope.yaml" in str(error)
    else:
        raise AssertionError("an unknown spec must raise FileNotFoundError")


def test_run_a_shipped_spec_by_name_from_another_directory_without_the_venv_on_path(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_afpe(
        afpe_executable, "run", "quickstart", "--set", "n_trials=2", "--set", "trainer.epochs=1",
        env=user_env, cwd=tmp_path / "elsewhere",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "study quickstart: 2/2 finished" in result.stdout, result.stdout
    database = Path(user_env["HOME"]) / ".afpe" / "afpe.db"
    trials = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{database}").trials
    assert all(trial.state == TrialState.COMPLETE for trial in trials)
    repeats = [trial for trial in trials if "repeat_of" in trial.user_attrs]  # the quickstart's repeats section
    assert len(trials) - len(repeats) == 2 and {t.user_attrs["repeat_of"] for t in repeats} <= {0, 1}
    assert all(Path(trial.user_attrs["log"]).is_file() for trial in trials)
    assert "95% CI" in result.stdout, result.stdout


def test_an_unknown_spec_name_exits_2_naming_the_shipped_ones(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_afpe(afpe_executable, "run", "no-such-spec", env=user_env, cwd=tmp_path)
    assert result.returncode == 2 and "no-such-spec" in result.stderr and "quickstart" in result.stderr
    assert "Traceback" not in result.stderr


def chestx_spec(name: str, data_root: Path, **fields: object) -> dict:
    return {
        "name": name,
        "task": "chestx",
        "task_options": {"size": 16, "patch": 4, "val_fraction": 0.3},
        "encoding": "afpe",
        "axes": [
            {"name": "rows", "grid_axes": [0], "low": 0.1, "high": 10},
            {"name": "cols", "grid_axes": [1], "low": 0.1, "high": 10},
        ],
        "n_trials": 2,
        "data_root": str(data_root),
        "trainer": {"epochs": 1, "batch_size": 8, "warmup_epochs": 0, "model": {"dim": 16, "depth": 1, "heads": 2}},
        "resources": {"cpus": 1, "max_concurrent": 1},
        "max_failures": 0,
        **fields,
    }


def test_warnings_inside_trials_are_shown_once_and_logs_outlive_ray(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path, make_chestx
) -> None:
    root = make_chestx(tmp_path / "chestx")
    listed = (root / "train_val_list.txt").read_text().split()
    (root / "train_val_list.txt").write_text("\n".join([*listed, "99999999_000.png"]) + "\n")  # one missing image
    spec = tmp_path / "chestx.yaml"
    spec.write_text(yaml.safe_dump(chestx_spec("warns", root)))
    result = run_afpe(afpe_executable, "run", str(spec), env=user_env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = [line for line in result.stdout.splitlines() if line.startswith("warning: trial")]
    assert len(shown) == 1 and "1 of" in shown[0] and "missing" in shown[0], result.stdout

    database = Path(user_env["HOME"]) / ".afpe" / "afpe.db"
    trials = optuna.load_study(study_name="warns", storage=f"sqlite:///{database}").trials
    assert len(trials) == 2
    for trial in trials:  # each trial keeps its own warnings and its log, after the private Ray is gone
        assert any("missing" in text for text in trial.user_attrs["warnings"])
        log = Path(trial.user_attrs["log"])
        assert log.is_relative_to(user_env["AFPE_TUNE_DIR"]) and "missing" in log.read_text()
    assert not list(Path("/tmp").glob(f"afpe-ray-*/{Path(user_env['HOME']).name}")), "no Ray temp dir is left"


def test_a_failed_trial_points_at_its_log(afpe_executable: str, user_env: dict[str, str], tmp_path: Path) -> None:
    """A trial that fails inside training (a generated dataset of 30 TiB, past the data check): exit 1, and its
    stored error ends with the path of its full log, which holds the traceback."""
    spec = tmp_path / "fails.yaml"
    fails = spec_failing_in_training("fails")
    spec.write_text(yaml.safe_dump(fails))
    result = run_afpe(afpe_executable, "run", str(spec), env=user_env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    database = Path(user_env["HOME"]) / ".afpe" / "afpe.db"
    (trial,) = optuna.load_study(study_name="fails", storage=f"sqlite:///{database}").trials
    assert trial.state == TrialState.FAIL
    log = Path(trial.user_attrs["log"])
    assert trial.user_attrs["error"].endswith(f"(full log: {log})")
    assert "Traceback" in log.read_text() and "MemoryError" in log.read_text()
