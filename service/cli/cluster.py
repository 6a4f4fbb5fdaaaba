"""`afpe cluster up|down|status`: the docker-compose sweep cluster (Ray head, Ray workers, API) as local processes;
`afpe cluster worker-command`: how a Ray worker on another host joins the service's head (`remote_workers.py`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from afpe.core.errors import UserError
from afpe.service.cluster.topology import API_PORT, DASHBOARD_PORT, DEFAULT_CLUSTER_DIR, RAY_PORT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster", help="start/stop a local Ray cluster + API, the no-Docker twin of docker-compose.yml"
    )
    commands = parser.add_subparsers(title="cluster commands", metavar="COMMAND", required=True)

    up = commands.add_parser("up", help="start a Ray head, N Ray worker nodes and the API (returns once all are up)")
    up.add_argument("--workers", type=int, default=1, help="number of Ray worker nodes (default: 1)")
    up.add_argument("--storage", help="study database URL (default: $AFPE_STORAGE, else the service's default)")
    up.add_argument("--data-dir", help="dataset root the trials read (default: $AFPE_DATA_DIR)")
    up.add_argument("--host", default="127.0.0.1", help="API host (default: 127.0.0.1)")
    up.add_argument("--port", type=int, default=API_PORT, help=f"API port (default: {API_PORT})")
    up.add_argument("--ray-port", type=int, default=RAY_PORT, help=f"Ray head GCS port (default: {RAY_PORT})")
    up.add_argument(
        "--dashboard-port", type=int, default=DASHBOARD_PORT, help=f"Ray dashboard/Jobs API port ({DASHBOARD_PORT})"
    )
    up.add_argument("--worker-cpus", type=int, help="CPUs each worker offers Ray (default: all cores)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for start-up (default: 120)")
    up.set_defaults(func=_up)

    down = commands.add_parser("down", help="stop every process `cluster up` started (by PID)")
    down.set_defaults(func=_down)

    status = commands.add_parser("status", help="show the processes, nodes and URLs; exit 1 unless all run")
    status.add_argument("--json", action="store_true", help="print the state as JSON (includes the tokens)")
    status.set_defaults(func=_status)

    join = commands.add_parser(
        "worker-command",
        help="print how a Ray worker on another host joins the running `afpe serve --ray-host` head: the token "
        "to copy, the ports to open and the command",
    )
    join.add_argument(
        "--work-dir", type=Path, help="the service's work dir (default: $AFPE_WORK_DIR, else its default)"
    )
    join.add_argument("--token-file", help="where the token lies on the worker host (default: ~/.afpe/ray_token)")
    join.add_argument("--temp-dir", help="the worker's Ray folder, made 0700 (default: /tmp/afpe-ray-$USER)")
    join.add_argument("--port-base", type=int, help="first port of the worker's block (default: the head's numbers)")
    join.add_argument("--num-cpus", type=int, help="CPUs the worker offers trials (default: all it has)")
    join.add_argument("--num-gpus", type=int, help="GPUs the worker offers trials (default: all it has)")
    join.add_argument("--resources", help="custom Ray resources of the worker, JSON (e.g. '{\"big_disk\": 1}')")
    join.set_defaults(func=_worker_command)

    for command in (up, down, status):
        command.add_argument(
            "--dir", type=Path, default=DEFAULT_CLUSTER_DIR, help=f"state + logs ({DEFAULT_CLUSTER_DIR})"
        )


def _up(args: argparse.Namespace) -> int:
    from afpe.service.cluster.twin import cluster_up

    try:
        state = cluster_up(
            args.dir,
            workers=args.workers,
            storage=args.storage,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            ray_port=args.ray_port,
            dashboard_port=args.dashboard_port,
            worker_cpus=args.worker_cpus,
            timeout=args.timeout,
        )
    except (RuntimeError, TimeoutError) as error:  # start-up failed; everything started was stopped again
        raise UserError(str(error)) from None
    print(f"cluster up: {args.workers} worker node(s); state and logs in {Path(args.dir).expanduser()}")
    print(f"API        {state.api_url}  (token: afpe cluster status --json | jq -r .api_token)")
    print(f"dashboard  {state.dashboard_url}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from afpe.service.cluster.twin import cluster_down

    stopped = cluster_down(args.dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else "no cluster was running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from afpe.service.cluster.twin import ClusterState, ray_state

    state = ClusterState.load(args.dir)
    if state is None:
        print(f"no cluster (no state in {Path(args.dir).expanduser()})")
        return 1
    alive = state.alive()
    if args.json:
        print(json.dumps({**asdict(state), "alive": alive}, indent=2))
        return 0 if all(alive.values()) else 1
    for process in state.processes:
        running = "running" if alive[process.role] else "STOPPED"
        print(f"{process.role:<10} pid {process.pid:<8} {running}  {process.log}")
    try:
        nodes = ray_state(state, "nodes")
        for node in nodes:
            kind = "head" if node["is_head_node"] else "worker"
            resources = ", ".join(f"{k}={v:g}" for k, v in node["resources_total"].items() if k in ("CPU", "GPU"))
            print(f"ray node   {node['node_id'][:12]}  {kind:<6} {node['state']:<6} {resources}")
    except OSError as error:
        print(f"ray nodes: dashboard not reachable ({error})")
    print(f"API        {state.api_url}\ndashboard  {state.dashboard_url}")
    return 0 if all(alive.values()) else 1


def _worker_command(args: argparse.Namespace) -> int:
    from afpe.service.cluster.remote_workers import HeadJoin, join_file_hint, worker_instructions
    from afpe.service.settings import ServiceSettings

    work_dir = (args.work_dir or ServiceSettings().work_dir).expanduser().resolve()
    join = HeadJoin.load(work_dir)
    if join is None:
        raise UserError(join_file_hint(work_dir))
    if args.resources is not None:
        try:
            json.loads(args.resources)
        except ValueError as error:
            raise UserError(f"--resources: not JSON ({error})") from None
    try:
        text = worker_instructions(
            join,
            token_path=args.token_file,
            temp_dir=args.temp_dir,
            port_base=args.port_base,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            resources=args.resources,
        )
    except ValueError as error:  # the only input it checks: the port block
        raise UserError(f"--port-base: {error}") from None
    print(text)
    return 0
