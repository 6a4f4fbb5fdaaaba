"""Issue 29, items 1-3 (command line): a campaign expands a base spec over one or two varied fields into ordinary
studies, each fit for its encoding and validated before anything runs; `afpe campaign run` runs them on one Ray
(running it again resumes), and `afpe campaign status` answers with one table whose JSON, CSV and Markdown hold the
numbers each study's own `afpe status --json` gives."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml

from afpe.search.campaign import expand, load_campaign, validate_campaign
from afpe.search.campaign_result import difference
from afpe.search.campaign_store import CampaignStore
from afpe.search.repeats import estimate
from afpe.search.spec import SpecError
from afpe.search.storage import create_engine

CAMPAIGN = {
    "name": "enc",
    "base": "quickstart",
    "vary": {"encoding": ["afpe", "fourier", "sincos"], "task_options.lengths": [[0.4, 0.2, 0.3], [0.4, 0.1, 0.3]]},
}
SMALL = ["trainer.model.dim=48"]  # sincos needs a multiple of 2 x 3 axes


def test_a_campaign_expands_into_studies_fit_for_their_encodings() -> None:
    members = expand(validate_campaign(CAMPAIGN), SMALL)
    assert [m.name for m in members] == [
        "enc-afpe-0p4x0p2x0p3",
        "enc-afpe-0p4x0p1x0p3",
        "enc-fourier-0p4x0p2x0p3",
        "enc-fourier-0p4x0p1x0p3",
        "enc-sincos-0p4x0p2x0p3",
        "enc-sincos-0p4x0p1x0p3",
    ]
    afpe, fourier, sincos = members[1].spec, members[2].spec, members[4].spec
    assert afpe.task_options["lengths"] == [0.4, 0.1, 0.3] and [a.name for a in afpe.axes] == ["d0", "d1"]
    assert afpe.fixed == {2: 1.0} and afpe.ratio == ("d1", "d0")
    # the isotropic encoding: one scale over every grid axis and the base axes' whole range
    assert [(a.grid_axes, a.low, a.high) for a in fourier.axes] == [([0, 1, 2], 0.1, 3.0)] and fourier.fixed == {}
    # a baseline: one configuration, trained with the searched studies' repeat seeds
    assert (sincos.axes, sincos.n_trials, sincos.repeats.top_k, sincos.repeats.seeds) == ([], 1, 1, 2)
    assert all(m.spec.trainer.model.dim == 48 for m in members)


@pytest.mark.parametrize(
    ("change", "overrides", "message"),
    [
        ({"vary": {}}, [], "vary: give one or two fields"),
        ({"vary": {"a": [1], "b": [2], "c": [3]}}, [], "give one or two fields"),
        ({"vary": {"encoding": ["afpe", "afpe"]}}, [], "encoding: values repeat"),
        ({"vary": {"Bad key": [1]}}, [], "is not a dotted spec field"),
        ({"vary": {"encoding": ["afpe", "nope"]}}, [], "study enc-nope: encoding: unknown encoding 'nope'"),
        ({}, [], "study enc-sincos-0p4x0p2x0p3: trainer.model.dim: sincos needs dim divisible by 2*len(grid) = 6"),
        ({"vary": {"n_trials": [5000, 6000]}}, [], "over the limit of 10000"),
        ({"vary": {"description": ["x y", "x_y"]}}, [], "give the same study name"),
        ({}, ["trainer.epochs=0"], "base: trainer.epochs"),
    ],
)
def test_a_bad_campaign_is_refused_whole_naming_the_study_and_field(change, overrides, message) -> None:
    with pytest.raises(SpecError) as refused:
        expand(validate_campaign({**CAMPAIGN, **change}), overrides)
    assert message in str(refused.value)


def test_the_shipped_campaigns_load_by_name_and_expand_into_the_papers_tables() -> None:
    anisotropy = expand(load_campaign("anisotropy"))
    assert len(anisotropy) == 20 and anisotropy[0].name == "anisotropy-afpe-1x1x1"
    assert {m.spec.encoding for m in anisotropy} == {"afpe", "fourier", "sincos", "learnable", "none"}
    grids = {m.values["task_options.anisotropy"][2]: m.spec.search_space().grid for m in anisotropy}
    assert grids == {1: (12, 1, 13), 2: (12, 1, 7), 3: (12, 1, 5), 4: (12, 1, 4)}  # the token grid shrinks along d2
    spacing = expand(load_campaign("spacing"))
    assert [m.name for m in spacing][:2] == ["spacing-normalized-0p8x0p8x0p8", "spacing-normalized-0p8x0p8x1p6"]
    assert {m.spec.trainer.positions for m in spacing} == {"normalized", "physical"}
    with pytest.raises(FileNotFoundError, match=r"no shipped campaign of that name \(anisotropy, spacing\)"):
        load_campaign("anisotropyy")


def test_the_difference_of_two_answers_has_welchs_interval_or_none() -> None:
    a, b = estimate(0, {}, [0.9, 0.8, 0.85], None), estimate(1, {}, [0.5, 0.6, 0.55], None)
    found = difference(a, b)
    assert found["difference"] == pytest.approx(0.3) and found["ci"][0] < 0.3 < found["ci"][1]
    assert found["ci"][0] > 0  # three values each, 0.3 apart with SD 0.05: clearly different
    assert difference(a, estimate(2, {}, [0.5], None))["ci"] is None  # one value: no interval


def test_a_name_holds_one_campaign(postgres_url: str) -> None:
    store = CampaignStore(create_engine(postgres_url))
    assert store.names() == []  # a database without the table: no campaign, nothing written
    assert store.save(validate_campaign(CAMPAIGN), SMALL) is True
    assert store.save(validate_campaign(CAMPAIGN), SMALL) is False  # the same campaign again: a resume
    with pytest.raises(SpecError, match="campaign 'enc' exists with another spec"):
        store.save(validate_campaign(CAMPAIGN), [*SMALL, "n_trials=3"])
    assert store.get("enc") == (validate_campaign(CAMPAIGN), SMALL) and store.names() == ["enc"]
    with pytest.raises(ValueError, match=r"campaign 'other' not found .*campaigns there: enc"):
        store.get("other")


TINY = [
    *SMALL,
    "n_trials=2",
    "trainer.epochs=1",
    "task_options.n_train=32",
    "task_options.n_val=8",
    "repeats.top_k=1",
    "repeats.seeds=1",
]


def test_a_campaign_runs_from_the_cli_and_answers_with_one_table(
    tmp_path: Path, afpe_executable: str, user_env: dict[str, str]
) -> None:
    spec = tmp_path / "enc.yaml"
    spec.write_text(yaml.safe_dump({**CAMPAIGN, "vary": {"encoding": ["afpe", "sincos"]}}))
    storage = f"sqlite:///{tmp_path / 'afpe.db'}"
    sets = [f"--set={override}" for override in TINY]

    def afpe(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [afpe_executable, *args], env=user_env, cwd=tmp_path, capture_output=True, text=True, timeout=900
        )

    run = afpe("campaign", "run", str(spec), "--storage", storage, *sets)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "campaign enc: 2 studies, 5 trials in all" in run.stdout
    assert '[study 2/2] enc-sincos (encoding="sincos"): 1 trials' in run.stdout

    table = json.loads(afpe("campaign", "status", "enc", "--storage", storage, "--format", "json").stdout)
    assert table["state"] == "succeeded" and table["property"] == []
    assert [row["study"] for row in table["studies"]] == ["enc-afpe", "enc-sincos"]
    for row in table["studies"]:  # each row is the study's own answer
        status = json.loads(afpe("status", row["study"], "--storage", storage, "--json").stdout)
        assert (row["mean"], row["n"]) == (status["best"]["mean"], status["best"]["n"])
        assert [row["ci_low"], row["ci_high"]] == status["best"]["ci"]
        assert row["ratio"] == status["best"]["ratio"]
    assert [c["against"] for c in table["comparisons"]] == ["sincos"]
    first = table["comparisons"][0]
    assert first["difference"] == pytest.approx(table["studies"][0]["mean"] - table["studies"][1]["mean"])
    assert {t["encoding"] for t in table["trend"]} == {"afpe"}  # only the searched encoding has a ratio

    rows = list(
        csv.DictReader(io.StringIO(afpe("campaign", "status", "enc", "--storage", storage, "--format", "csv").stdout))
    )
    assert [float(r["mean"]) for r in rows] == [row["mean"] for row in table["studies"]]
    markdown = afpe("campaign", "status", "enc", "--storage", storage).stdout
    assert f"| - | afpe | succeeded | {table['studies'][0]['mean']:.4g} |" in markdown
    assert "| - | afpe − sincos |" in markdown

    again = afpe("campaign", "run", str(spec), "--storage", storage, *sets)  # done already: nothing runs again
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(afpe("campaign", "status", "enc", "--storage", storage, "--format", "json").stdout) == table
    assert afpe("campaign", "list", "--storage", storage).stdout.split() == ["enc"]

    other = afpe("campaign", "run", str(spec), "--storage", storage, *sets, "--set=n_trials=3")
    assert other.returncode == 2 and other.stderr.startswith("afpe: error: name: campaign 'enc' exists")
    missing = afpe("campaign", "status", "nope", "--storage", storage)
    assert missing.returncode == 2 and "campaign 'nope' not found" in missing.stderr


def test_ctrl_c_stops_the_whole_campaign_and_running_it_again_resumes(
    tmp_path: Path, afpe_executable: str, user_env: dict[str, str]
) -> None:
    """Ctrl-C while a trial runs ends `afpe campaign run` (exit 130): Tune's own SIGINT handler used to end only
    the running study's fit, failing its trials, and the campaign went on with its next study."""
    spec = tmp_path / "enc.yaml"
    spec.write_text(yaml.safe_dump({**CAMPAIGN, "vary": {"encoding": ["afpe", "sincos"]}}))
    db = tmp_path / "afpe.db"
    slow = ["task_options.n_train=1024", "trainer.epochs=2"]  # trials of seconds: one is running when Ctrl-C comes
    args = ["campaign", "run", str(spec), "--storage", f"sqlite:///{db}", *map("--set={}".format, [*TINY, *slow])]
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen([afpe_executable, *args], env=user_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not running_trial(db, "enc-afpe"):
        assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
        time.sleep(1)
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=120) == 130
    log.close()
    output = (tmp_path / "run.log").read_text()
    assert "afpe: interrupted" in output and "[study 2/2]" not in output
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    assert "enc-sincos" not in [s.study_name for s in optuna.get_all_study_summaries(storage)]

    again = subprocess.run(
        [afpe_executable, *args], env=user_env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    table = json.loads(
        subprocess.run(
            [afpe_executable, "campaign", "status", "enc", "--storage", f"sqlite:///{db}", "--format", "json"],
            env=user_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert table["state"] == "succeeded"


def running_trial(db: Path, study: str) -> bool:
    """Whether study `study` in the SQLite file `db` has a RUNNING trial (False before the study exists)."""
    if not db.exists():
        return False
    try:
        loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{db}")
    except (KeyError, sqlalchemy.exc.OperationalError):
        return False
    return any(trial.state == optuna.trial.TrialState.RUNNING for trial in loaded.get_trials(deepcopy=False))
