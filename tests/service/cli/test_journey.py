"""Issue 26's journey, as a user walks it, with real processes and headless Chromium: `afpe run quickstart`
(tiny) -> `afpe serve` on the same storage -> the study is on the index with origin `cli` and its page shows its
answer -> a REST resume with a larger n_trials completes it under the service -> its MONAI export runs."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import optuna
import torch

from afpe.encodings import build_encoding
from afpe.encodings.upstream import rounding_bound
from afpe.search.repeats import best_configuration
from afpe.search.spec import StudySpec
from afpe.search.testing import stop_gracefully
from afpe.service.cluster.topology import free_port
from afpe.trainers import task_info

TINY = [
    "n_trials=2",
    "repeats=null",
    "trainer.epochs=1",
    "trainer.limit=64",
    "task_options.n_train=64",
    "task_options.n_val=32",
]


def wait_for_health(api: httpx.Client, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, log.read_text()
        try:
            if api.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "afpe serve did not answer /healthz"
        time.sleep(0.5)


def test_run_then_serve_then_resume_over_rest(
    afpe_executable: str, user_env: dict[str, str], tmp_path: Path, browser
) -> None:
    storage = f"sqlite:///{tmp_path / 'afpe.db'}"
    overrides = [argument for override in TINY for argument in ("--set", override)]
    run = subprocess.run(
        [afpe_executable, "run", "quickstart", "--storage", storage, *overrides],
        env=user_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "study quickstart: 2/2 finished" in run.stdout

    token = uuid.uuid4().hex
    port = free_port()
    env = {
        **user_env,
        "AFPE_API_TOKEN": token,
        "AFPE_STORAGE": storage,
        "AFPE_WORK_DIR": str(tmp_path / "work"),
        "AFPE_DATA_DIR": str(tmp_path / "data"),
        "AFPE_RAY_NUM_CPUS": "2",
    }
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [afpe_executable, "serve", "--port", str(port)], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as api:
            wait_for_health(api, server, log_path)
            [listed] = api.get("/api/studies").json()
            assert (listed["name"], listed["origin"], listed["state"]) == ("quickstart", "cli", "succeeded")
            best = api.get("/api/studies/quickstart").json()["best"]

            browser.goto(f"{base}/")
            browser.wait_for("document.readyState === 'complete'")
            row = browser.run("document.querySelector('a[href=\"/studies/quickstart\"]').closest('tr').innerText")
            assert "quickstart" in row and "cli" in row and "succeeded" in row and "2 / 2" in row, row
            browser.goto(f"{base}/studies/quickstart")
            browser.wait_for("document.getElementById('state').textContent === 'succeeded'")
            shown = browser.run("document.getElementById('best').textContent")
            assert f"Best r2 = {best['value']:.4g} (trial {best['number']}, ratio d1/d0" in shown, shown

            resumed = api.post(
                "/api/studies/quickstart/resume",
                json={"n_trials": 3},
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,  # the service's private Ray head starts with its first job
            )
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["managed"] is True and resumed.json()["origin"] == "cli"
            deadline = time.monotonic() + 400
            while (status := api.get("/api/studies/quickstart").json())["state"] in ("queued", "running"):
                assert time.monotonic() < deadline, f"study still {status['state']}: {status}"
                time.sleep(2)
            assert status["state"] == "succeeded", json.dumps(status)[:2000]
            assert (
                status["finished"] == 3
                and status["trials"]["COMPLETE"] == 3
                and status["job_id"] == "afpe-quickstart-1"
            )
            browser.goto(f"{base}/studies/quickstart")
            browser.wait_for("document.getElementById('counts').textContent === '3 / 3 trials'")

        # the answer as MONAI code: the exported file runs with afpe's own interpreter and builds afpe's table
        exported, table = tmp_path / "afpe_monai.py", tmp_path / "table.pt"
        export = [afpe_executable, "export", "quickstart", "--storage", storage, "--format", "monai"]
        done = subprocess.run([*export, "--out", str(exported)], env=user_env, cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, done.stderr
        code = (
            "import runpy, sys, torch; namespace = runpy.run_path(sys.argv[1], run_name='__main__'); "
            "torch.save(namespace['vit'].patch_embedding.position_embeddings.detach(), sys.argv[2])"
        )
        python = str(Path(afpe_executable).parent / "python")
        ran = subprocess.run([python, "-c", code, str(exported), str(table)], env=user_env, capture_output=True)
        assert ran.returncode == 0, ran.stderr
        study = optuna.load_study(study_name="quickstart", storage=storage)
        spec = StudySpec.model_validate(study.user_attrs["spec"])
        best = best_configuration(study.get_trials(deepcopy=False), spec.direction)
        grid = task_info(spec.task, spec.task_options).patch_grid
        scales = spec.search_space().scales_for(best.params)
        pe = build_encoding("afpe", grid, spec.trainer.model.dim, scales=scales, seed=best.user_attrs["pe_seed"])
        monai_table = torch.load(table, weights_only=True)
        assert monai_table.shape == pe().shape
        assert (monai_table - pe()).abs().max().item() <= rounding_bound(pe.frequencies())
    finally:
        stop_gracefully(server)
        log.close()
