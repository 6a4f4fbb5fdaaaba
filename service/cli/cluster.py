"""`afpe cluster up|down|status`: the docker-compose sweep cluster (Ray head, Ray workers, API) as local processes."""

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
