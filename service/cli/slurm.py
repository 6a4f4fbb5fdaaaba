"""`afpe slurm SPEC`: the sbatch script that runs a study on a Slurm allocation (`afpe.service.cluster.slurm`),
printed, or submitted with `--submit`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from afpe.core.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "slurm",
        help="print (or --submit) an sbatch script running a study on N Slurm nodes: a Ray head, Ray workers, "
        "the study's driver; resubmit the script to resume the study",
    )
    parser.add_argument("spec", help="a study spec file (YAML/JSON) or the name of a shipped spec, e.g. quickstart")
    parser.add_argument("--nodes", type=int, default=1, help="nodes of the allocation (default: 1)")
    parser.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node (default: 0)")
    parser.add_argument(
        "--cpus-per-node", type=int, help="CPUs per node (default: enough for the trials its GPUs host, at least 1)"
    )
    parser.add_argument(
        "--storage",
        help="the study database every node reaches, a PostgreSQL URL without password (default: $AFPE_STORAGE); "
        "SQLite is refused: a file on a shared filesystem does not lock reliably",
    )
    parser.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    parser.add_argument("--time", help="Slurm time limit, e.g. 04:00:00 (default: the partition's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field by dotted path, as `afpe run --set`",
    )
    parser.add_argument(
        "--job-dir",
        help="where each job keeps its Ray token (0600) and node logs, on a filesystem every node shares "
        "(default: $HOME/.afpe/slurm on the nodes)",
    )
    parser.add_argument(
        "--port-range",
        default="20000-32767",
        metavar="LOW-HIGH",
        help="the ports Ray may use; each job takes a block of 256 chosen by its job id (default: 20000-32767)",
    )
    parser.add_argument("--submit", action="store_true", help="submit the script with sbatch instead of printing it")
    parser.set_defaults(func=_slurm)


def _slurm(args: argparse.Namespace) -> int:
    from afpe.search.shipped_specs import spec_path
    from afpe.search.spec_loading import load_spec
    from afpe.service.cluster.slurm import SlurmOptions, default_cpus_per_node, sbatch_script
    from afpe.service.cluster.topology import executable

    path = spec_path(args.spec)
    spec = load_spec(path, args.overrides)  # bad input is refused here, not on the cluster
    storage = args.storage or os.environ.get("AFPE_STORAGE")
    if not storage:
        raise UserError("--storage: give the study database every node reaches (or set AFPE_STORAGE)")
    if spec.resources.gpu > 0 and args.gpus_per_node == 0:
        raise UserError(f"--gpus-per-node: each trial asks for {spec.resources.gpu:g} GPU (resources.gpu)")
    if spec.resources.gpu == 0 and args.gpus_per_node > 0:
        print("warning: the spec's trials use no GPU (resources.gpu=0): --set resources.gpu=1", file=sys.stderr)
    options = SlurmOptions(
        spec=str(Path(args.spec).expanduser().resolve()) if Path(args.spec).expanduser().is_file() else args.spec,
        study=spec.name,
        storage=storage,
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_node=args.cpus_per_node
        or default_cpus_per_node(spec.resources.cpus, spec.resources.gpu, args.gpus_per_node),
        afpe=executable("afpe"),
        ray=executable("ray"),
        overrides=tuple(args.overrides),
        partition=args.partition,
        time=args.time,
        job_dir=args.job_dir,
        port_range=_port_range(args.port_range),
    )
    script = sbatch_script(options)
    if not args.submit:
        sys.stdout.write(script)
        return 0
    try:
        submitted = subprocess.run(["sbatch", "--parsable"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("--submit: sbatch not found (run this on a Slurm login node)") from None
    if submitted.returncode != 0:
        raise UserError(f"sbatch refused the script: {submitted.stderr.strip()}")
    job = submitted.stdout.strip().split(";")[0]
    print(f"submitted job {job} (study {spec.name}); its output: afpe-{spec.name}-{job}.out; run this again to resume")
    return 0


def _port_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        return int(low), int(high)
    except ValueError:
        raise UserError(f"--port-range: expected LOW-HIGH, e.g. 20000-32767, got {text!r}") from None
