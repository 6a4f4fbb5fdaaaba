"""Every port a Ray node opens, pinned to one block of `PORT_BLOCK` consecutive ports, so that a firewall can
let exactly that block through: the Slurm script's nodes (`slurm.py`, one block per job) and the service's head
with the workers of other hosts (`remote_workers.py`) lay their ports out alike.

Block layout (offsets from the block's first port, the GCS port): see `PORT_OFFSETS`; the worker processes
take `FIRST_WORKER_PORT` .. `PORT_BLOCK - 1`. Ray's own processes on the head (dashboard, autoscaler monitor)
also open a few ports the OS picks; no other node connects to them.
"""

from __future__ import annotations

PORT_BLOCK = 256
# Offsets in a block; the worker ports take the rest of it (FIRST_WORKER_PORT .. PORT_BLOCK - 1).
PORT_OFFSETS = {
    "gcs_port": 0,
    "dashboard_port": 1,
    "client_server_port": 2,
    "node_manager_port": 3,
    "object_manager_port": 4,
    "dashboard_agent_listen_port": 5,
    "dashboard_agent_grpc_port": 6,
    "runtime_env_agent_port": 7,
    "metrics_export_port": 8,
}
FIRST_WORKER_PORT = 16
# What the ports other nodes connect to carry, as a firewall rule names them (Ray's "Ports configurations":
# the GCS and dashboard on the head; node manager, object manager, agents, metrics and workers on every node).
NODE_PORTS = {
    "node_manager_port": "node manager (raylet)",
    "object_manager_port": "object manager (object transfers)",
    "dashboard_agent_listen_port": "dashboard agent, HTTP (logs, state)",
    "dashboard_agent_grpc_port": "dashboard agent, gRPC",
    "runtime_env_agent_port": "runtime-env agent",
    "metrics_export_port": "metrics export (Prometheus)",
}
# `ray start` flags of every node's ports (the head adds --port, --dashboard-port, --ray-client-server-port).
NODE_PORT_FLAGS = {name.replace("_", "-"): name for name in NODE_PORTS}
NODE_PORT_FLAGS |= {"min-worker-port": "min_worker_port", "max-worker-port": "max_worker_port"}


def block_ports(base: int) -> dict[str, int]:
    """The ports of the block starting at `base` (its GCS port), worker range included; ValueError when the
    block leaves 1024..65535."""
    if not 1024 <= base <= 65536 - PORT_BLOCK:
        raise ValueError(f"port {base}: a block of {PORT_BLOCK} ports from it must lie within 1024-65535")
    ports = {name: base + offset for name, offset in PORT_OFFSETS.items()}
    return {**ports, "min_worker_port": base + FIRST_WORKER_PORT, "max_worker_port": base + PORT_BLOCK - 1}


def node_port_flags(ports: dict[str, int]) -> list[str]:
    """`ray start` flags pinning a node's ports (any node: head or worker) to `ports` (`block_ports`)."""
    return [f"--{flag}={ports[name]}" for flag, name in NODE_PORT_FLAGS.items()]
