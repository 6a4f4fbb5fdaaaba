"""Ray workers on other hosts for the service: `afpe serve --ray-host ADDRESS` starts its private head announced
at that address, every port pinned to the block of `--ray-port` (`ports.py`) and Ray's token kept in
`<work dir>/ray_token` (0600, the same across restarts, so a copied token stays valid), and writes `HeadJoin`
to `<work dir>/ray-head.json` (0600, no secret in it) while the head runs. `afpe cluster worker-command` reads
it and prints `worker_instructions`: the token to copy, the ports to open and the `ray start` to run on the
other host. Ray's traffic is not encrypted, so the token guards it only on a network others cannot read.
"""

from __future__ import annotations

import getpass
import json
import platform
import shlex
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from afpe.service.cluster.ports import NODE_PORTS, block_ports, node_port_flags

JOIN_FILE = "ray-head.json"
TOKEN_FILE = "ray_token"
WILDCARDS = ("0.0.0.0", "::", "")
DEFAULT_TOKEN_PATH = '"$HOME/.afpe/ray_token"'  # on the worker host, expanded by its shell
DEFAULT_TEMP_DIR = '"/tmp/afpe-ray-$USER"'


@dataclass(frozen=True)
class HeadJoin:
    """What another host needs to join the running service's head (the token stays in `token_file`)."""

    node_ip: str
    ports: dict[str, int]
    token_file: str
    pid: int  # the head's `ray start` process: the file is stale once it is gone
    ray_version: str
    python_version: str

    @property
    def address(self) -> str:
        return f"{self.node_ip}:{self.ports['gcs_port']}"

    def save(self, work_dir: Path) -> None:
        path = Path(work_dir) / JOIN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, work_dir: Path) -> HeadJoin | None:
        """The join file of a running head in `work_dir`; None when there is none or its head is gone."""
        try:
            join = cls(**json.loads((Path(work_dir) / JOIN_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return join if Path(f"/proc/{join.pid}").exists() else None


def head_join(node_ip: str, ports: dict[str, int], token_file: Path, pid: int) -> HeadJoin:
    """The join record of a head started here with this Python and Ray."""
    import ray

    return HeadJoin(node_ip, ports, str(token_file), pid, ray.__version__, platform.python_version())


def remove_join(work_dir: Path) -> None:
    (Path(work_dir) / JOIN_FILE).unlink(missing_ok=True)


def advertised_ip(host: str) -> str:
    """The IP address the head announces for `host`: this host's outward address (the one Ray picks itself)
    for a wildcard, else `host` resolved. ValueError naming ray_host when it does not resolve."""
    if host in WILDCARDS:
        from ray.util import get_node_ip_address

        return get_node_ip_address()
    try:
        return socket.gethostbyname(host)
    except OSError as error:
        raise ValueError(f"ray_host: cannot resolve {host!r} ({error})") from None


def worker_instructions(
    join: HeadJoin,
    *,
    token_path: str | None = None,
    temp_dir: str | None = None,
    port_base: int | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    resources: str | None = None,
) -> str:
    """Comment lines (the token to copy, the ports to open) and, last, the one shell line that starts a Ray
    worker joining `join`'s head on another host. `token_path` and `temp_dir` are paths on that host (defaults:
    ~/.afpe/ray_token, /tmp/afpe-ray-$USER); `port_base` its own block (default: the head's block numbers);
    `num_cpus`/`num_gpus` what it offers (default: what Ray detects), `resources` custom resources (JSON)."""
    ports = block_ports(port_base if port_base is not None else join.ports["gcs_port"])
    token = shlex.quote(token_path) if token_path else DEFAULT_TOKEN_PATH
    folder = shlex.quote(temp_dir) if temp_dir else DEFAULT_TEMP_DIR
    offers = [f"--num-cpus={num_cpus}"] * (num_cpus is not None) + [f"--num-gpus={num_gpus}"] * (num_gpus is not None)
    if resources is not None:
        offers.append(f"--resources={shlex.quote(resources)}")
    start = ["ray", "start", f"--address={join.address}", "--block", "--disable-usage-stats", *offers]
    command = (
        f"install -d -m 700 {folder} && RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={token} "
        f"{' '.join(start)} --temp-dir={folder}/r {' '.join(node_port_flags(ports))}"
    )
    head_host = f"{getpass.getuser()}@{join.node_ip}"
    return "\n".join(
        [
            f"# A Ray worker for the AFPE Sweep service whose head is {join.address}. On the other host, install the",
            f"# same AFPE Sweep (Ray {join.ray_version}, Python {join.python_version}) and mount the service's data,",
            "# artifact and Tune folders at the same paths (kept models and trial logs are written where trials run).",
            "# 1. Copy the head's Ray token over SSH into a file only you read (not by mail, chat or a shared folder):",
            f"#      install -d -m 700 ~/.afpe && scp {head_host}:{shlex.quote(join.token_file)} {token} "
            f"&& chmod 600 {token}",
            "# 2. Let these TCP ports through, from the head and the other workers only (Ray's traffic is not",
            "#    encrypted: keep it on a private network or a VPN):",
            f"#      on the head {join.node_ip}:",
            *_port_lines(join.ports, head=True),
            "#      on this worker host:",
            *_port_lines(ports, head=False),
            "# 3. Start the worker (it runs until stopped; after the service restarts, start it again):",
            command,
        ]
    )


def _port_lines(ports: dict[str, int], *, head: bool) -> list[str]:
    lines = [f"{ports['gcs_port']:<12} GCS (the address workers join)"] if head else []
    lines += [f"{ports[name]:<12} {role}" for name, role in NODE_PORTS.items()]
    lines.append(f"{ports['min_worker_port']}-{ports['max_worker_port']:<6} worker processes")
    return [f"#        {line}" for line in lines]


def join_file_hint(work_dir: Path) -> str:
    """Why there is nothing to join, and how to have something."""
    return (
        f"no running service head to join in {work_dir} (no {JOIN_FILE} of a live head): start the service with "
        "`afpe serve --ray-host ADDRESS` (or AFPE_RAY_HOST), on this host, with the same AFPE_WORK_DIR"
    )
