"""The sweep cluster, defined once: a Ray head (no trials on it), Ray worker nodes and the API, their commands
and environments. docker-compose.yml runs these in containers (tests/service/cluster/test_compose.py checks that
it does), `twin.py` as local processes, and `afpe.service.jobs.local_head` starts a private head with the same
`head_command`. `free_port` and `executable` are the one place that picks a port and resolves a program.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

RAY_PORT = 6379  # GCS port of the head, the address workers join
DASHBOARD_PORT = 8265  # Ray dashboard + Jobs API
API_PORT = 8000  # `afpe serve`
DEFAULT_CLUSTER_DIR = Path("~/.afpe/cluster")

# Ray 2.60: token auth; every node and every client (the API's JobSubmissionClient) carries the same token.
RAY_AUTH_MODE = "token"


def head_command(
    *,
    port: int | str = RAY_PORT,
    dashboard_host: str = "0.0.0.0",
    dashboard_port: int | str = DASHBOARD_PORT,
    num_cpus: int | str | None = 0,
    num_gpus: int | str | None = 0,
) -> list[str]:
    """The Ray head: GCS on `port`, dashboard and Jobs API on `dashboard_port`. The cluster's head offers no
    CPUs/GPUs (0), so no trial lands on it; None lets Ray detect them (a private head that runs the trials).
    A number may be a script's variable (`"$gcs_port"`: the Slurm script's ports are known when it runs)."""
    counts = (("cpus", num_cpus), ("gpus", num_gpus))
    resources = [f"--num-{kind}={count}" for kind, count in counts if count is not None]
    return [
        "ray",
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--dashboard-host={dashboard_host}",
        f"--dashboard-port={dashboard_port}",
        *resources,
        "--disable-usage-stats",
    ]


def worker_command(head_address: str) -> list[str]:
    """A Ray worker node joining the head's GCS at `head_address` (host:port); Ray detects its CPUs and GPUs."""
    return ["ray", "start", f"--address={head_address}", "--block", "--disable-usage-stats"]


def api_command(*, host: str = "0.0.0.0", port: int = API_PORT) -> list[str]:
    """The REST service."""
    return ["afpe", "serve", "--host", host, "--port", str(port)]


def ray_env(ray_token: str) -> dict[str, str]:
    """What every Ray process and Ray client needs to authenticate to the cluster."""
    return {"RAY_AUTH_MODE": RAY_AUTH_MODE, "RAY_AUTH_TOKEN": ray_token}


def node_env(ray_token: str, *, storage_password: str | None, tune_dir: str | None = None) -> dict[str, str]:
    """Environment of a Ray node. Study drivers (Ray Jobs, run on the head) inherit it: they open the storage with
    PGPASSWORD and keep Tune's experiment state in AFPE_TUNE_DIR, which must be one folder shared by all nodes.
    The storage URL and data folder come with each job from the API (its runtime_env)."""
    return {**ray_env(ray_token), **_optional(PGPASSWORD=storage_password, AFPE_TUNE_DIR=tune_dir)}


def api_env(
    *,
    ray_token: str,
    ray_address: str,
    api_token: str,
    storage: str | None,
    storage_password: str | None,
    data_dir: str | None,
    artifact_dir: str | None = None,
) -> dict[str, str]:
    """Environment of `afpe serve`: the service settings (AFPE_*) plus Ray and database credentials;
    `artifact_dir` (kept checkpoints, handed on to the jobs) when the nodes share one other than the default."""
    return {
        **ray_env(ray_token),
        "AFPE_RAY_ADDRESS": ray_address,
        "AFPE_API_TOKEN": api_token,
        **_optional(
            AFPE_STORAGE=storage, PGPASSWORD=storage_password, AFPE_DATA_DIR=data_dir, AFPE_ARTIFACT_DIR=artifact_dir
        ),
    }


def _optional(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


def storage_credentials(url: str) -> tuple[str, str | None]:
    """'postgresql+psycopg://u:pw@h/db' -> ('postgresql+psycopg://u@h/db', 'pw'): the password travels as PGPASSWORD,
    never inside a URL that Ray pickles into searcher state (see `afpe.search.storage`)."""
    from afpe.search.storage import split_password

    try:
        return split_password(url)
    except Exception as error:  # noqa: BLE001 - sqlalchemy raises ArgumentError and ValueError alike
        raise ValueError(f"--storage: not a database URL: {url!r} ({error})") from None


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def executable(name: str) -> str:
    """`ray`/`afpe` from this Python's bin dir (the one running the service), else from PATH;
    FileNotFoundError when neither has it. Under systemd, cron, pipx or a container ENTRYPOINT the venv's
    bin folder is usually not on PATH, and a bare `ray` is then "No such file or directory"."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: command not found next to {sys.executable} or on PATH")
    return found


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a started process, with this Python's bin dir first on PATH (so its own
    children, such as a Ray job's `afpe run` entrypoint, resolve the same installation) and no RAY_ADDRESS (a
    started node joins no other cluster), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *filter(None, [env.get("PATH")])])
    return {**env, **(extra or {})}
