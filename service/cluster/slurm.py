"""`afpe slurm`: a study on a Slurm allocation, as one sbatch script (a pure function of the study and options).

The script starts a Ray head on the allocation's first node and a Ray worker on each other node (one
`srun --nodes=1 --ntasks=1 -w NODE ray start ... --block` step per node, as Ray's guide does for clusters whose
nodes several users share), then `afpe run SPEC --ray-address HEAD --resume` on the first node, which joins
that Ray instead of starting a private one. Per job:

- **Ports**: every port Ray opens (GCS, dashboard, client server, node manager, object manager, dashboard agent,
  runtime-env agent, metrics, worker ports) lies in one block of `PORT_BLOCK` ports (`ports.py`), the block chosen by
  `SLURM_JOB_ID` in the port range: two jobs that share a node collide only when their ids are congruent
  modulo the number of blocks (jobs submitted one after another never do).
- **Token**: `RAY_AUTH_MODE=token` with a fresh random token in a file created 0600 in the job's private folder
  (`<job dir>/<job id>`, 0700, on a filesystem all nodes share, as $HOME is), `RAY_AUTH_TOKEN_PATH` for every
  node and the driver; the file is removed when the job ends.
- **Storage**: the user's database URL (PostgreSQL, MySQL); SQLite is refused (`check_storage`).
- **Resume**: the driver always runs with `--resume`, so resubmitting the same script tops the study up to
  n_trials; the study's lease lets one driver run it at a time (another gets exit code 2, and a job killed
  without letting go holds it for `LEASE_TTL_S` more seconds).
- **Stop**: at its end, or on `scancel` (SIGTERM to the batch script), the script stops the driver, then the
  Ray nodes by the PIDs of their `srun` steps (on SIGTERM srun ends its step, and Slurm every process in it:
  Ray's GCS, raylet, agents and workers); never `ray stop`, which would stop every Ray of the user on the node.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from afpe.service.cluster.ports import FIRST_WORKER_PORT, NODE_PORT_FLAGS, PORT_BLOCK, PORT_OFFSETS, block_ports
from afpe.service.cluster.topology import head_command, worker_command

PORT_RANGE = (20000, 32767)  # below Linux's ephemeral ports (32768-60999), above Ray's defaults (6379 .. 19999)
DEFAULT_JOB_DIR = '"$HOME/.afpe/slurm"'  # expanded on the node
RAY_STARTED = "Ray runtime started."  # what `ray start` prints once its node is up
RAY_START_TRIES = 3  # a busy node can miss Ray's fixed 30 s for a raylet to register ("timed out during startup")


@dataclass(frozen=True)
class SlurmOptions:
    """What `afpe slurm` was given: `spec` as `afpe run` takes it (a shipped name or an absolute file path),
    `study` its name, `overrides` its `--set` arguments; `afpe` and `ray` the executables' paths on the nodes."""

    spec: str
    study: str
    storage: str
    nodes: int
    gpus_per_node: int
    cpus_per_node: int
    afpe: str
    ray: str
    overrides: tuple[str, ...] = ()
    partition: str | None = None
    time: str | None = None
    job_dir: str | None = None  # None: $HOME/.afpe/slurm
    port_range: tuple[int, int] = PORT_RANGE


def port_blocks(port_range: tuple[int, int]) -> int:
    """How many job blocks of `PORT_BLOCK` ports the inclusive range holds; ValueError when none, or when the
    range leaves 1024..65535."""
    low, high = port_range
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"--port-range: {low}-{high} must lie within 1024-65535, low first")
    blocks = (high - low + 1) // PORT_BLOCK
    if blocks < 1:
        raise ValueError(f"--port-range: {low}-{high} holds fewer than the {PORT_BLOCK} ports one job needs")
    return blocks


def job_ports(job_id: int, port_range: tuple[int, int] = PORT_RANGE) -> dict[str, int]:
    """The ports of job `job_id`: block `job_id mod blocks` of the range (the script computes the same in bash)."""
    return block_ports(port_range[0] + (job_id % port_blocks(port_range)) * PORT_BLOCK)


def check_storage(url: str) -> None:
    """Refuse what the nodes cannot share: SQLite (a file on a shared filesystem such as NFS, whose locks are
    not reliable: concurrent writers corrupt it or fail with `database is locked`) and a password inside the URL
    (the script is a file, and the URL shows in `ps`). ValueError naming --storage."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"--storage: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        raise ValueError(
            "--storage: SQLite cannot be shared by the nodes of a Slurm job (a file on a shared filesystem such as "
            "NFS does not lock reliably); give a PostgreSQL URL, e.g. postgresql+psycopg://USER@DBHOST/afpe"
        )
    if parsed.password is not None:
        raise ValueError(
            "--storage: leave the password out of the URL (the script is a file, and the URL shows in `ps`): "
            "put it in ~/.pgpass or export PGPASSWORD before sbatch (Slurm hands the environment to the job)"
        )


def default_cpus_per_node(trial_cpus: float, trial_gpu: float, gpus_per_node: int) -> int:
    """CPUs a node needs to run as many trials as its GPUs host (one trial when it has none or trials use none)."""
    trials = math.floor(gpus_per_node / trial_gpu) if trial_gpu > 0 and gpus_per_node > 0 else 1
    return max(1, math.ceil(trials * trial_cpus))


def sbatch_script(options: SlurmOptions) -> str:
    """The sbatch script for `options` (see the module's docstring); ValueError for options Slurm would refuse."""
    if options.nodes < 1 or options.gpus_per_node < 0 or options.cpus_per_node < 1:
        raise ValueError("--nodes and --cpus-per-node must be at least 1, --gpus-per-node at least 0")
    check_storage(options.storage)
    blocks = port_blocks(options.port_range)
    name = f"afpe-{options.study}"
    directives = {
        "job-name": name,
        "nodes": options.nodes,
        "ntasks-per-node": 1,
        "cpus-per-task": options.cpus_per_node,
        "gpus-per-node": options.gpus_per_node or None,
        "partition": options.partition,
        "time": options.time,
        "output": f"{name}-%j.out",
    }
    gpus = options.gpus_per_node
    step = '--nodes=1 --ntasks=1 --cpus-per-task="$SLURM_CPUS_PER_TASK"' + (f" --gpus-per-node={gpus}" if gpus else "")
    cpus = "$SLURM_CPUS_PER_TASK"
    node_ports = [f"--{flag}=${variable}" for flag, variable in NODE_PORT_FLAGS.items()]
    head = head_command(
        port="$gcs_port", dashboard_host="127.0.0.1", dashboard_port="$dashboard_port", num_cpus=cpus, num_gpus=gpus
    )
    head += ["--ray-client-server-port=$client_server_port", "--temp-dir=$ray_tmp", *node_ports]
    worker = worker_command("$ray_address") + [f"--num-cpus={cpus}", f"--num-gpus={gpus}", "--temp-dir=$ray_tmp"]
    worker += node_ports
    ray = shlex.quote(options.ray)
    run = shlex.join([options.afpe, "run", options.spec, "--storage", options.storage])
    run += ' --ray-address "$ray_address" --resume'
    run += "".join(f" --set {shlex.quote(override)}" for override in options.overrides)
    job_dir = DEFAULT_JOB_DIR if options.job_dir is None else shlex.quote(options.job_dir)
    low = options.port_range[0]
    lines = [
        "#!/bin/bash",
        f"# afpe slurm: study {options.study} on {options.nodes} node(s) x {gpus} GPU(s); a Ray head on the first",
        "# node, a Ray worker on each other one, and the study's driver joining them. Resubmit this file to resume",
        "# the study; arguments after its name go to `afpe run` (e.g. `sbatch FILE --set n_trials=40`).",
        *(f"#SBATCH --{key}={value}" for key, value in directives.items() if value is not None),
        "set -uo pipefail",
        "",
        f"# Ray's ports: block SLURM_JOB_ID mod {blocks} of {PORT_BLOCK} ports from {low}, so jobs sharing a node",
        "# do not collide; workers use the block's rest.",
        f"port_base=$(( {low} + (SLURM_JOB_ID % {blocks}) * {PORT_BLOCK} ))",
        *(f"{port}=$(( port_base + {offset} ))" for port, offset in PORT_OFFSETS.items()),
        f"min_worker_port=$(( port_base + {FIRST_WORKER_PORT} ))",
        f"max_worker_port=$(( port_base + {PORT_BLOCK - 1} ))",
        "",
        "# The job's private folder, on a filesystem every node reads: Ray's token (0600) and the nodes' logs.",
        "umask 077",
        f'job_dir={job_dir}/"$SLURM_JOB_ID"',
        'mkdir -p "$job_dir" || exit 1',
        'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n" > "$job_dir/ray_token" || exit 1',
        'export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$job_dir/ray_token"',
        "unset RAY_AUTH_TOKEN RAY_ADDRESS",
        "export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0  # on SIGTERM a node ends at once (Ray's default: 30 s)",
        'ray_tmp="/tmp/afpe-ray-$SLURM_JOB_ID"  # per node; short, as Ray\'s unix sockets need',
        'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        'ray_address="${nodes[0]}:$gcs_port"',
        "",
        "steps=() driver=",
        "stop() {  # the driver, then each Ray node by its srun's PID: srun ends its step, Slurm every process in it",
        "    trap - EXIT TERM INT",
        '    [ -n "$driver" ] && kill -TERM "$driver" 2>/dev/null && wait "$driver"',
        '    for pid in "${steps[@]}"; do kill -TERM "$pid" 2>/dev/null; done',
        '    for pid in "${steps[@]}"; do wait "$pid"; done',
        '    rm -rf "$ray_tmp" "$job_dir/ray_token"',
        '    if [ "${#nodes[@]}" -gt 1 ]; then  # the workers\' temp dirs (no step starts once the job is cancelled)',
        '        srun --nodes=$(( ${#nodes[@]} - 1 )) --ntasks-per-node=1 --exclude="${nodes[0]}" rm -rf "$ray_tmp"',
        "    fi 2>/dev/null",
        "}",
        "trap stop EXIT",
        "trap 'exit 143' TERM INT",
        f"head_node=({ray} {_shell(head[1:])})",
        f"worker_node=({ray} {_shell(worker[1:])})",
        "launch() {  # Ray on node $1 (an index of nodes) as an srun step, its srun's PID in steps[$1]",
        '    local command=("${worker_node[@]}") log="$job_dir/ray-${nodes[$1]}.log"',
        '    [ "$1" -eq 0 ] && command=("${head_node[@]}")',
        f'    srun {step} -w "${{nodes[$1]}}" "${{command[@]}}" >> "$log" 2>&1 &',
        "    steps[$1]=$!",
        "}",
        f"await() {{  # until node $1's Ray is up, in {RAY_START_TRIES} tries (Ray gives a raylet a fixed 30 s)",
        '    local tries=1 log="$job_dir/ray-${nodes[$1]}.log"',
        f'    until grep -q "{RAY_STARTED}" "$log"; do',
        '        if ! kill -0 "${steps[$1]}" 2>/dev/null; then',
        f'            if [ "$tries" -ge {RAY_START_TRIES} ]; then',
        f'                echo "afpe slurm: no Ray on ${{nodes[$1]}} in {RAY_START_TRIES} tries; see $log" >&2',
        "                exit 1",
        "            fi",
        "            tries=$(( tries + 1 ))",
        f'            echo "afpe slurm: Ray starts again on ${{nodes[$1]}} (try $tries of {RAY_START_TRIES})"',
        '            launch "$1"',
        "        fi",
        "        sleep 1",
        "    done",
        "}",
        "",
        "launch 0 && await 0  # the head first: the workers join it",
        'for i in "${!nodes[@]}"; do [ "$i" -gt 0 ] && launch "$i"; done',
        'for i in "${!nodes[@]}"; do [ "$i" -gt 0 ] && await "$i"; done',
        'echo "afpe slurm: Ray on ${#nodes[@]} node(s), head $ray_address; logs in $job_dir"',
        "",
        f'{run} "$@" &',
        'driver=$!; wait "$driver"; status=$?; driver=',
        'exit "$status"',
        "",
    ]
    return "\n".join(lines)


def _shell(words: list[str]) -> str:
    """Generated words (no user input) as a command line continued over lines: those naming a script variable
    double-quoted, so the script expands them."""
    quoted = [f'"{word}"' if "$" in word else shlex.quote(word) for word in words]
    return " \\\n        ".join(" ".join(quoted[start : start + 2]) for start in range(0, len(quoted), 2))
