"""`afpe slurm`: the sbatch script as text (no Slurm needed): per-job ports covering every port Ray opens, the
token file, the storage rules, the driver's command; tests/service/cluster/test_slurm.py runs it on a real Slurm."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from afpe.service.cluster.slurm import PORT_RANGE, SlurmOptions, check_storage, job_ports, port_blocks, sbatch_script

STORAGE = "postgresql+psycopg://me@dbhost/afpe"


def options(**changes: object) -> SlurmOptions:
    fields = dict(spec="quickstart", study="quickstart", storage=STORAGE, nodes=3, gpus_per_node=4, cpus_per_node=16)
    return SlurmOptions(**{**fields, "afpe": "/opt/afpe/bin/afpe", "ray": "/opt/afpe/bin/ray", **changes})


def preamble(script: str) -> str:
    """The script up to its node list: ports, job folder and token (what runs before any Slurm command)."""
    return script.split("mapfile")[0]


def run_preamble(script: str, job_id: int, home: Path, *echo: str) -> list[str]:
    code = preamble(script) + "".join(f'echo "${name}"\n' for name in echo)
    env = {"SLURM_JOB_ID": str(job_id), "HOME": str(home), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_the_script_computes_the_ports_job_ports_names_and_jobs_in_a_row_share_none(tmp_path: Path) -> None:
    script = sbatch_script(options())
    for job_id in (1, 48, 49, 123456):
        ports = job_ports(job_id)
        assert run_preamble(script, job_id, tmp_path, *ports) == [str(port) for port in ports.values()]
        assert len(set(ports.values())) == len(ports) and PORT_RANGE[0] <= min(ports.values())
        assert max(ports.values()) <= PORT_RANGE[1] and ports["max_worker_port"] - ports["min_worker_port"] >= 200
    blocks = port_blocks(PORT_RANGE)
    for job_id in range(1000, 1000 + blocks - 1):  # consecutive jobs: disjoint blocks
        first, second = job_ports(job_id), job_ports(job_id + 1)
        assert (
            max(first["max_worker_port"], second["max_worker_port"]) - min(first["gcs_port"], second["gcs_port"]) >= 511
        )


def test_every_port_flag_of_ray_start_is_set_per_job() -> None:
    """A port left to Ray's default (a fixed number) would collide between two jobs on one node."""
    from ray.scripts.scripts import start  # the click command behind `ray start`

    flags = {option for param in start.params for option in param.opts if option.endswith("-port")} - {"--port"}
    assert {"--node-manager-port", "--object-manager-port", "--runtime-env-agent-port"} <= flags
    script = sbatch_script(options())
    head = re.search(r"^head_node=\(.*?\)$", script, re.S | re.M).group(0)
    worker = re.search(r"^worker_node=\(.*?\)$", script, re.S | re.M).group(0)
    assert " start --head " in head and ' start "--address=$ray_address" ' in worker
    for flag in flags | {"--port"}:
        assert f'"{flag}=$' in head, flag
    for flag in flags - {"--dashboard-port", "--ray-client-server-port"}:
        assert f'"{flag}=$' in worker, flag
    assert '"--min-worker-port=$min_worker_port"' in worker and '"--max-worker-port=$max_worker_port"' in worker


def test_the_token_file_is_the_owners_alone_and_every_ray_process_uses_it(tmp_path: Path) -> None:
    script = sbatch_script(options())
    job_dir, token_path = run_preamble(script, 77, tmp_path, "job_dir", "RAY_AUTH_TOKEN_PATH")
    assert job_dir == str(tmp_path / ".afpe" / "slurm" / "77") and token_path == f"{job_dir}/ray_token"
    assert stat.S_IMODE(Path(job_dir).stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(token_path).stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", Path(token_path).read_text())
    assert "export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0 " in script  # `ray start --block` drains 30 s otherwise
    assert "export RAY_AUTH_MODE=token " in script and "unset RAY_AUTH_TOKEN RAY_ADDRESS" in script
    assert "ray stop" not in script and "pkill" not in script and "killall" not in script


def test_the_driver_joins_the_jobs_ray_and_resumes_the_study() -> None:
    script = sbatch_script(options(overrides=("n_trials=40", "trainer.model.dim=64"), partition="gpu", time="4:00:00"))
    driver = next(line for line in script.splitlines() if " run quickstart " in line)
    assert driver.startswith(f'/opt/afpe/bin/afpe run quickstart --storage {STORAGE} --ray-address "$ray_address"')
    assert '--resume --set n_trials=40 --set trainer.model.dim=64 "$@" &' in driver
    for directive in ("--nodes=3", "--gpus-per-node=4", "--cpus-per-task=16", "--partition=gpu", "--time=4:00:00"):
        assert f"#SBATCH {directive}\n" in script
    assert script.count("--num-gpus=4") == 2 and "head_node=(/opt/afpe/bin/ray start --head" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    cpu_only = sbatch_script(options(gpus_per_node=0, partition=None, time=None))
    assert "--gpus-per-node" not in cpu_only and "#SBATCH --partition" not in cpu_only and "--num-gpus=0" in cpu_only


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sqlite:////shared/afpe.db", "does not lock reliably"),
        ("postgresql+psycopg://me:secret@dbhost/afpe", "~/.pgpass"),
        ("not a url", "not a database URL"),
    ],
)
def test_storage_the_nodes_cannot_share_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as error:
        sbatch_script(options(storage=url))
    assert str(error.value).startswith("--storage: ")
    check_storage(STORAGE)


def test_afpe_slurm_prints_the_script_of_a_spec_file_by_absolute_path(afpe_executable: str, tmp_path: Path) -> None:
    from afpe.search.shipped_specs import spec_path

    spec = tmp_path / "mine.yaml"
    spec.write_text(spec_path("quickstart").read_text().replace("name: quickstart", "name: mine"))
    result = subprocess.run(
        [afpe_executable, "slurm", "mine.yaml", "--storage", STORAGE, "--set", "n_trials=3"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"afpe run {spec} --storage" in result.stdout and "#SBATCH --job-name=afpe-mine\n" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["no-such-spec", "--storage", STORAGE], "no-such-spec"),
        (["quickstart", "--storage", "sqlite:///afpe.db"], "--storage: SQLite"),
        (["quickstart", "--storage", STORAGE, "--set", "n_trials=0"], "n_trials"),
        (["quickstart", "--storage", STORAGE, "--set", "resources.gpu=1"], "--gpus-per-node"),
        (["quickstart", "--storage", STORAGE, "--port-range", "20000-20100"], "--port-range"),
        (["quickstart"], "--storage"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from afpe.service.cli import main

    monkeypatch.delenv("AFPE_STORAGE", raising=False)
    assert main(["slurm", *arguments]) == 2
    out, err = capsys.readouterr()
    assert message in err and len(err.strip().splitlines()) == 1 and out == "", err


def stub(path: Path, body: str) -> str:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return str(path)


def test_the_script_starts_a_node_again_when_ray_misses_its_start_up_time_then_runs_and_stops_all(
    tmp_path: Path,
) -> None:
    """The script's own logic under stand-ins for Slurm's commands (srun runs its command here, scontrol names two
    nodes) and for `ray` (its first start on each node fails as Ray's fixed 30 s raylet wait does) and `afpe`."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    stub(bin_dir / "scontrol", 'printf "n1\\nn2\\n"\n')
    stub(
        bin_dir / "srun",
        'while [ $# -gt 0 ]; do case $1 in -w) shift 2 ;; -*) shift ;; *) break ;; esac; done\nexec "$@"\n',
    )
    ray = stub(
        tmp_path / "ray",
        f'node=$(grep -o "head" <<< "$*" || echo worker); echo x >> {calls}/$node\n'
        f'[ "$(wc -l < {calls}/$node)" -eq 1 ] && {{ echo "timed out during startup"; exit 1; }}\n'
        f'echo "{"Ray runtime started."}"; echo $$ >> {calls}/pids; exec sleep 300\n',
    )
    afpe = stub(tmp_path / "afpe", f'echo "$@" > {calls}/driver\n')
    script = sbatch_script(options(nodes=2, afpe=afpe, ray=ray))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SLURM_JOB_ID": "987654321",
        "SLURM_JOB_NODELIST": "n[1-2]",
        "SLURM_CPUS_PER_TASK": "16",
    }
    result = subprocess.run(
        ["bash", "-c", script, "sbatch", "--set", "n_trials=9"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Ray starts again on n1 (try 2 of 3)" in result.stdout
        and "Ray starts again on n2 (try 2 of 3)" in result.stdout
    )
    driver = (calls / "driver").read_text().split()
    assert (
        driver[:2] == ["run", "quickstart"]
        and driver[driver.index("--ray-address") + 1] == f"n1:{job_ports(987654321)['gcs_port']}"
    )
    assert driver[-3:] == ["--resume", "--set", "n_trials=9"]
    for pid in (calls / "pids").read_text().split():  # both nodes' Ray stopped by the script as it ended
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    assert not (tmp_path / ".afpe" / "slurm" / "987654321" / "ray_token").exists()
