"""Issue 14 rows 7, 10, 11, 12 over the real app: specs that would cost too much are refused naming the
field, no password of the storage URL shows anywhere, the `error` shown is sanitised, and inputs that used
to raise are answered 4xx (two apps creating one name at once included)."""

from __future__ import annotations

import subprocess
import threading

import optuna
import pytest
from fastapi.testclient import TestClient

from afpe.search.storage import open_storage, public_url, split_password
from afpe.service.app import create_app
from afpe.service.jobs.backend import JobState, submission_id
from afpe.service.manager.error_text import MAX_ERROR_CHARS
from afpe.service.manager.records import StudyRecord, StudySource, StudyState, open_records


def huge_model(spec: dict) -> None:
    spec["trainer"]["model"] = {"dim": 4096, "depth": 64, "heads": 64, "mlp_ratio": 16}


def one_voxel_patches(spec: dict) -> None:
    spec["trainer"]["model"] = {"patch_size": [1, 1, 1]}
    spec["task_options"]["grid"] = [64, 64, 64]


def terabytes_of_data(spec: dict) -> None:
    spec["task_options"].update(patch=16, n_train=1_000_000, n_val=1_000_000)  # 2.1 TB of float32 volumes


def terabytes_of_activations(spec: dict) -> None:
    """Issue 30 row 3: 470 M parameters and 16,384 tokens (both within bounds), 65,536 samples a batch."""
    spec["task_options"]["grid"] = [128, 128, 1]
    spec["trainer"]["model"] = {"dim": 2048, "depth": 14, "heads": 16, "patch_size": [1, 1, 1], "cls_token": False}
    spec["trainer"]["batch_size"] = 65_536


def a_thousandth_of_a_cpu(spec: dict) -> None:
    spec["resources"]["cpus"] = 0.001


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (huge_model, "trainer.model (parameters)"),
        (one_voxel_patches, "trainer.model.patch_size (tokens per sample)"),
        (terabytes_of_data, "task_options (generated data, bytes)"),
        (terabytes_of_activations, "trainer.batch_size (activations: batch × tokens × dim × depth, bytes)"),
        (a_thousandth_of_a_cpu, "resources.cpus"),
    ],
)
def test_specs_that_bound_no_cost_are_refused_naming_the_field(client, auth, tiny, change, field):
    spec = tiny(client, "costly")
    change(spec)
    response = client.post("/api/studies", json=spec, headers=auth)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]
    assert client.get("/api/studies/costly").status_code == 404


def test_every_shipped_spec_is_within_the_default_bounds(client):
    for item in client.get("/api/specs").json():
        response = client.get(f"/api/specs/{item['name']}")
        assert response.status_code == 200, (item["name"], response.text)


def test_a_password_given_as_a_query_parameter_is_stripped(postgres_url, afpe_executable, user_env):
    url = "postgresql://afpe@db.internal:5432/afpe?password=hunter2-query&connect_timeout=1"
    safe, password = split_password(url)
    assert password == "hunter2-query" and "hunter2" not in safe and "connect_timeout=1" in safe
    assert "hunter2" not in public_url(url)
    assert split_password("postgresql://afpe:inline@db/afpe?password=query")[1] == "inline"
    # the driver's output and error of a storage it cannot reach: the password does not appear
    unreachable = "postgresql://afpe@127.0.0.1:1/afpe?password=hunter2-query&connect_timeout=2"
    result = subprocess.run(
        [afpe_executable, "status", "x", "--storage", unreachable],
        env=user_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "cannot connect" in result.stderr, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "visible in `ps`" in result.stderr
    # a password in the query still reaches the database: the storage opens with it
    assert open_storage(postgres_url + "?password=unused-by-trust-auth") is not None


def test_the_error_shown_is_sanitised(client, make_settings):
    settings = make_settings()
    ansi_path_secret = (
        "\x1b[31mTraceback (most recent call last):\x1b[0m\n"
        '  File "/home/alice/venv/lib/python3.11/site-packages/afpe/search/driver.py", line 216, in run_study\n'
        "sqlalchemy.exc.OperationalError: connection to postgresql+psycopg://afpe:hunter2@10.1.2.3:5432/afpe "
        f"failed; Authorization: Bearer {settings.api_token}; RAY_AUTH_TOKEN=abcdef0123456789\n" + "x" * 5000 + "\nend"
    )
    with open_records(settings.storage).begin() as session:
        session.add(
            StudyRecord(
                name="failed-run",
                spec={"name": "failed-run", "task": "synthetic3d", "axes": []},
                source=StudySource.REST,
                state=StudyState.FAILED,
                job_id="afpe-failed-run-1",
                error=ansi_path_secret,
            )
        )
    optuna.create_study(study_name="failed-run", storage=open_storage(settings.storage))
    error = client.get("/api/studies/failed-run").json()["error"]
    assert len(error) <= MAX_ERROR_CHARS and error.endswith("end")
    for hidden in ("\x1b", "/home/alice", "site-packages", "hunter2", "10.1.2.3", settings.api_token, "abcdef0123"):
        assert hidden not in error, hidden
    page = client.get("/studies/failed-run").text
    assert "hunter2" not in page and "/home/alice" not in page


def test_inputs_that_raised_are_answered_422(client, auth, tiny):
    def import_csv(name: str, content: str):
        return client.post(
            "/api/studies/import", files={"file": ("t.csv", content, "text/csv")}, data={"name": name}, headers=auth
        )

    response = import_csv("inf-seed", "s_a,value,seed\n1,0.5,inf\n")
    assert response.status_code == 422 and "line 2" in response.json()["error"]
    response = import_csv("huge-field", "s_a,value,note\n1,0.5," + "x" * (130 * 1024) + "\n")
    assert response.status_code == 422 and "field larger than field limit" in response.json()["error"]
    spec = tiny(client, "nul-root")
    response = client.post("/api/studies", json={**spec, "data_root": "data\x00/x"}, headers=auth)
    assert response.status_code == 422 and "data_root" in response.json()["error"]


class AcceptingJobs:
    """Ray's job API as far as a create needs it: every submission is accepted and stays queued."""

    def submit(self, study: str, attempt: int, spec: dict, resume: bool) -> str:
        return submission_id(study, attempt)

    def state(self, job_id: str) -> JobState | None:
        return JobState(StudyState.QUEUED, "")

    def failure_text(self, job_id: str) -> str:
        return ""

    def stop(self, job_id: str) -> StudyState | None:
        return StudyState.CANCELLED

    def close(self) -> None:
        pass


def test_two_services_creating_one_name_at_once_get_201_and_409_never_500(make_settings, auth, tiny):
    """Two services (each its own lock and engines, as two processes) on one PostgreSQL database."""
    apps = [create_app(make_settings(), backend=AcceptingJobs()) for _ in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        statuses: list[int] = []
        for round_ in range(6):
            spec = tiny(first, f"race-{round_}")
            barrier = threading.Barrier(4)

            def create(client: TestClient, spec: dict = spec, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                statuses.append(client.post("/api/studies", json=spec, headers=auth).status_code)

            threads = [threading.Thread(target=create, args=(c,)) for c in (first, second, first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert first.get(f"/api/studies/race-{round_}").status_code == 200
        assert set(statuses) <= {200, 201, 409}, statuses
        assert statuses.count(201) == 6, statuses
