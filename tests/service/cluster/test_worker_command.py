"""`afpe cluster worker-command` and `--ray-host` without a Ray: what is printed for a join file, and the one-line
errors for a missing or stale head and for settings that cannot work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from afpe.service.cluster.ports import block_ports
from afpe.service.cluster.remote_workers import JOIN_FILE, HeadJoin, advertised_ip
from afpe.service.settings import ServiceSettings


def write_join(work_dir: Path, pid: int) -> HeadJoin:
    join = HeadJoin("192.0.2.7", block_ports(21000), str(work_dir / "ray_token"), pid, "2.60.0", "3.11.9")
    join.save(work_dir)
    return join


def worker_command(afpe: str, work_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [afpe, "cluster", "worker-command", "--work-dir", str(work_dir), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_printed_worker_joins_the_heads_address_with_its_ports_pinned_and_the_token_file(
    afpe_executable: str, tmp_path: Path
) -> None:
    write_join(tmp_path, os.getpid())
    assert (tmp_path / JOIN_FILE).stat().st_mode & 0o777 == 0o600
    shown = worker_command(afpe_executable, tmp_path, "--num-gpus", "1", "--resources", '{"a": 1}')
    assert shown.returncode == 0, shown.stderr
    *notes, command = shown.stdout.strip().splitlines()
    assert command.startswith('install -d -m 700 "/tmp/afpe-ray-$USER" && RAY_AUTH_MODE=token ')
    assert 'RAY_AUTH_TOKEN_PATH="$HOME/.afpe/ray_token" ray start --address=192.0.2.7:21000 --block' in command
    assert "--num-gpus=1 --resources='{\"a\": 1}'" in command and "--num-cpus" not in command
    assert "--node-manager-port=21003 --object-manager-port=21004" in command
    assert "--min-worker-port=21016 --max-worker-port=21255" in command
    text = "\n".join(notes)
    assert f"@192.0.2.7:{tmp_path / 'ray_token'} " in text and "Ray 2.60.0, Python 3.11.9" in text
    # the head's GCS port, then every node's ports, for the head and (same numbers by default) the worker
    assert text.count("#        21000 ") == 1 and text.count("#        21003 ") == 2
    assert text.count("21016-21255") == 2

    other = worker_command(afpe_executable, tmp_path, "--port-base", "22000", "--token-file", "/k/t o")
    assert "--address=192.0.2.7:21000" in other.stdout and "--node-manager-port=22003" in other.stdout
    assert "RAY_AUTH_TOKEN_PATH='/k/t o' ray start" in other.stdout and "22016-22255" in other.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "no running service head to join"),
        (["--resources", "{a"], "--resources: not JSON"),
        (["--port-base", "65500"], "--port-base: port 65500: a block of 256 ports"),
    ],
)
def test_worker_command_errors_are_one_line(
    afpe_executable: str, tmp_path: Path, arguments: list[str], message: str
) -> None:
    if arguments:
        write_join(tmp_path, os.getpid())
    result = worker_command(afpe_executable, tmp_path, *arguments)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_join_file_whose_head_is_gone_is_no_head(tmp_path: Path) -> None:
    write_join(tmp_path, 2**22 + 1)  # above the kernel's pid_max default: no such process
    assert HeadJoin.load(tmp_path) is None
    write_join(tmp_path, os.getpid())
    assert HeadJoin.load(tmp_path).address == "192.0.2.7:21000"


def test_ray_host_settings(tmp_path: Path) -> None:
    assert advertised_ip("localhost") == "127.0.0.1" and advertised_ip("0.0.0.0") not in ("0.0.0.0", "")
    with pytest.raises(ValueError, match="ray_host: cannot resolve 'no-such-host.invalid'"):
        ServiceSettings(ray_host="no-such-host.invalid", storage="sqlite://").resolved()
    with pytest.raises(ValueError, match="ray_host: only a private Ray head"):
        ServiceSettings(ray_host="0.0.0.0", ray_address="http://10.0.0.1:8265", storage="sqlite://").resolved()
    assert ServiceSettings(ray_host="127.0.0.1", ray_num_cpus=0, storage="sqlite://").resolved().ray_port == 20000
