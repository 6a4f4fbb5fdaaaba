"""`POST /api/studies` runs the data check `afpe run` does (`search/data_check.py`) when the service sees its
data directory: a spec whose data is missing or malformed is a 422 naming `data_root`, and nothing is created."""

from __future__ import annotations

import re

import pytest


def medmnist_spec(client, data_root: str | None) -> dict:
    spec = client.get("/api/specs/organmnist3d-afpe").json()
    spec.update(name="no-data", n_trials=1, repeats=None, data_root=data_root)
    spec["resources"].update(gpu=0)
    return spec


@pytest.mark.parametrize(
    ("data_root", "error"),
    [
        ("missing", r"spec: data_root: data_root .*/data/missing of task 'medmnist3d' is not a directory"),
        (None, r"spec: data_root: MedMNIST file .*/data/organmnist3d_64.npz not found .*"),
    ],
)
def test_a_spec_whose_data_is_missing_is_refused_naming_data_root(
    client, auth, data_root: str | None, error: str
) -> None:
    response = client.post("/api/studies", json=medmnist_spec(client, data_root), headers=auth)
    assert response.status_code == 422
    assert re.fullmatch(error, response.json()["error"])
    assert client.get("/api/studies/no-data").status_code == 404
