"""docker-compose.yml is valid, runs real commands with settings that are read, and matches `afpe cluster up`.

No Docker engine runs here: the file is checked against the compose specification, its variables are
interpolated from .env.example as `docker compose` would, and every command and variable is checked
against the programs that run it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from afpe.search.driver import TUNE_DIR_ENV
from afpe.search.storage import STORAGE_ENV
from afpe.service.cluster import topology as cluster
from afpe.service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = ("POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "AFPE_API_TOKEN")
RAY_NODES = ("ray-head", "ray-worker", "ray-worker-cpu")
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def dotenv(path: Path) -> dict[str, str]:
    lines = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in lines}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (errors when unset or empty), $$ -> $."""

    def value(match: re.Match) -> str:
        name, operator, argument = match.groups()
        found = env.get(name, "")
        if operator == ":?" and not found:
            raise KeyError(f"{name}: {argument}")
        if operator == ":-" and not found:
            return argument
        return found

    return VARIABLE.sub(value, text).replace("$$", "$")


@pytest.fixture(scope="module")
def env_file() -> dict[str, str]:
    """.env.example with its secrets filled in, as the README tells the user to do."""
    values = dotenv(ROOT / ".env.example")
    return {**values, **{name: f"secret-{name.lower()}" for name in SECRETS}}


@pytest.fixture(scope="module")
def compose(env_file: dict[str, str]) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env_file))


def environment(service: dict) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_compose_file_validates_against_the_compose_specification() -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_and_variants(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "ray-head", "ray-worker", "ray-worker-cpu", "api"}
    assert services["ray-worker"]["profiles"] == ["gpu"] and services["ray-worker-cpu"]["profiles"] == ["cpu"]
    devices = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert [device["capabilities"] for device in devices] == [["gpu"]]
    assert "select_device('cuda', None)" in " ".join(services["ray-worker"]["healthcheck"]["test"])
    assert "deploy" not in services["ray-worker-cpu"]
    for name in RAY_NODES:  # scalable: no fixed container name, no published ports on workers
        assert "container_name" not in services[name]
        assert int(services[name]["shm_size"].rstrip("gb")) >= 2, name
    assert "ports" not in services["ray-worker"] and "ports" not in services["ray-worker-cpu"]
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_every_secret_comes_from_env_and_must_be_set(env_file: dict[str, str]) -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert f"${{{name}:?" in text, f"{name} must be required (${{{name}:?...}})"
        with pytest.raises(KeyError, match=name):
            interpolate(text, {**env_file, name: ""})
    assert {match[0] for match in VARIABLE.findall(text)} <= dotenv(ROOT / ".env.example").keys(), "undocumented"
    assert all(dotenv(ROOT / ".env.example")[name] == "" for name in SECRETS), "no usable secret in the example"
    assert "postgres@" not in text and ":5432" in text


def test_commands_and_environments_are_those_of_the_twin(compose: dict, env_file: dict[str, str]) -> None:
    services = compose["services"]
    assert services["ray-head"]["command"] == cluster.head_command()
    assert services["ray-worker"]["command"] == cluster.worker_command(f"ray-head:{cluster.RAY_PORT}")
    assert services["ray-worker-cpu"]["command"] == services["ray-worker"]["command"]
    assert services["api"]["command"] == cluster.api_command(host="0.0.0.0")

    password, ray_token = env_file["POSTGRES_PASSWORD"], env_file["RAY_AUTH_TOKEN"]
    for name in RAY_NODES:
        tune_dir = environment(services[name])[TUNE_DIR_ENV]
        assert environment(services[name]) == cluster.node_env(ray_token, storage_password=password, tune_dir=tune_dir)
        assert f"ray-storage:{tune_dir}" in services[name]["volumes"], f"{name}: Tune's folder must be shared"
    storage = f"postgresql+psycopg://{env_file['POSTGRES_USER']}@postgres:5432/{env_file['POSTGRES_DB']}"
    assert environment(services["api"]) == cluster.api_env(
        ray_token=ray_token,
        ray_address=f"http://ray-head:{cluster.DASHBOARD_PORT}",
        api_token=env_file["AFPE_API_TOKEN"],
        storage=storage,
        storage_password=password,
        data_dir="/data",
        artifact_dir="/srv/afpe/artifacts",
    )
    for name in ("api", "ray-head", "ray-worker", "ray-worker-cpu"):  # writers (trials), driver and server share it
        assert "artifacts:/srv/afpe/artifacts" in services[name]["volumes"], f"{name}: kept checkpoints must be shared"
    datasets = [v for v in services["api"]["volumes"] if isinstance(v, dict) and v["target"] == "/data"]
    assert datasets and datasets[0]["read_only"] and datasets[0]["source"] == env_file["AFPE_DATASETS"]


@pytest.mark.parametrize("service", ["ray-head", "ray-worker", "api"])
def test_every_command_is_a_real_invocation_with_real_flags(compose: dict, service: str) -> None:
    command = compose["services"][service]["command"]
    program = [word for word in command if not word.startswith("-")][:2]  # "ray start", "afpe serve"
    assert program[0] in ("ray", "afpe")
    executable = shutil.which(program[0], path=str(Path(sys.executable).parent)) or program[0]
    result = subprocess.run([executable, *program[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    flags = {word.split("=")[0] for word in command if word.startswith("--")}
    documented = set(re.findall(r"--[\w-]+", result.stdout))
    assert flags <= documented, f"{' '.join(program)} has no {flags - documented}"


def test_every_variable_passed_is_read_by_its_program(compose: dict) -> None:
    settings = {f"AFPE_{name.upper()}" for name, field in ServiceSettings.model_fields.items() if not field.exclude}
    afpe_settings = settings | {TUNE_DIR_ENV, STORAGE_ENV}  # the service's settings, the search driver's
    import ray

    ray_files = [*Path(ray.__file__).parent.rglob("*.py"), *Path(ray.__file__).parent.glob("_raylet*.so")]
    binary = Path(importlib.util.find_spec("psycopg_binary").origin).parent.parent  # not importable before psycopg
    libpq = [*binary.glob("psycopg_binary.libs/libpq*")]
    assert libpq, "the bundled libpq of psycopg[binary]"
    for name, service in compose["services"].items():
        for variable in environment(service):
            if name == "postgres":  # the official image's documented variables
                assert variable in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
            elif variable.startswith("AFPE_"):
                assert variable in afpe_settings, f"{name}: {variable} is not a setting"
            elif variable.startswith("RAY_"):
                assert any(variable.encode() in path.read_bytes() for path in ray_files), (
                    f"{name}: Ray reads no {variable}"
                )
            else:
                assert variable == "PGPASSWORD" and b"PGPASSWORD" in libpq[0].read_bytes(), f"{name}: {variable}"


def test_ports_are_consistent_and_published_on_loopback_only(compose: dict, env_file: dict[str, str]) -> None:
    services = compose["services"]

    def flag(command: list[str], name: str) -> str:
        values = [word.split("=", 1)[1] for word in command if word.startswith(f"{name}=")]
        if not values and name in command:
            values = [command[command.index(name) + 1]]
        assert len(values) == 1, f"{name} in {command}"
        return values[0]

    head, worker, api = services["ray-head"]["command"], services["ray-worker"]["command"], services["api"]["command"]
    assert flag(worker, "--address") == f"ray-head:{flag(head, '--port')}"
    dashboard = flag(head, "--dashboard-port")
    assert environment(services["api"])["AFPE_RAY_ADDRESS"] == f"http://ray-head:{dashboard}"
    assert services["ray-head"]["ports"] == [f"127.0.0.1:{env_file['RAY_DASHBOARD_PORT']}:{dashboard}"]
    assert services["api"]["ports"] == [f"127.0.0.1:{env_file['AFPE_API_PORT']}:{flag(api, '--port')}"]
    assert flag(head, "--dashboard-host") == "0.0.0.0" and flag(api, "--host") == "0.0.0.0"  # reachable in the network
    for name, port in (("ray-head", dashboard), ("api", flag(api, "--port"))):
        assert f"127.0.0.1:{port}/" in " ".join(services[name]["healthcheck"]["test"]), name


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    steps = [line.split(maxsplit=1) for line in (ROOT / "Dockerfile").read_text().splitlines() if line[:1].isupper()]
    copies = [argument.split()[0] for instruction, argument in steps if instruction == "COPY"]
    assert copies[0] == "pyproject.toml", "dependencies (from pyproject.toml) before the source"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert {folder.split("/")[0] for folder in pyproject["tool"]["setuptools"]["package-dir"].values()} <= set(copies)
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"]
    assert not set(copies) & set(ignored)
    users = [argument for instruction, argument in steps if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_the_image_gets_every_library_the_code_imports() -> None:
    """The Dockerfile installs only `project.dependencies`: every third-party module imported by the package
    must come from them or their own (installed) requirements."""
    import ast
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pending = [Requirement(text) for text in pyproject["project"]["dependencies"]]
    provided: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in provided:
            continue
        provided.add(name)
        try:
            children = [Requirement(text) for text in requires(requirement.name) or []]
        except PackageNotFoundError:
            continue
        extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        pending += [child for child in children if not child.marker or any(child.marker.evaluate(e) for e in extras)]

    distributions = packages_distributions()
    folders = pyproject["tool"]["setuptools"]["package-dir"].values()
    imported: set[str] = set()
    for path in {path for folder in folders for path in (ROOT / folder).glob("*.py")}:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    missing = {
        module: distributions[module]
        for module in imported
        if module != "afpe"
        and module in distributions
        and not {canonicalize_name(d) for d in distributions[module]} & provided
    }
    assert not missing, f"imported but not in pyproject dependencies (the image lacks them): {missing}"
