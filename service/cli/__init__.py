"""The `afpe` command line: each layer's sub-commands (`afpe encodings`, `afpe train`, `afpe run/status/export`)
assembled with the service's own (`afpe serve`, `afpe cluster`, `afpe slurm`). Every command module exposes
`register(subparsers)` and imports its heavy dependencies inside the command, so `afpe --help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import version

from afpe.core.errors import USER_ERROR_EXIT_CODE, UserError
from afpe.encodings import cli as encodings_cli
from afpe.search import campaign_cli
from afpe.search import cli as search_cli
from afpe.service.cli import cluster as cluster_cli
from afpe.service.cli import serve as serve_cli
from afpe.service.cli import slurm as slurm_cli
from afpe.trainers import cli as trainers_cli

COMMANDS = (encodings_cli, search_cli, campaign_cli, cluster_cli, slurm_cli, trainers_cli, serve_cli)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afpe", description="Hyperparameter search for anisotropic Fourier-feature positional encodings."
    )
    parser.add_argument("--version", action="version", version=f"afpe-sweep {version('afpe-sweep')}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `afpe` with `argv`; returns the exit code (`USER_ERROR_EXIT_CODE` for bad input, printed as one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (UserError, ValueError, FileNotFoundError) as error:
        if os.environ.get("AFPE_DEBUG"):
            raise
        print(f"afpe: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    except KeyboardInterrupt:
        print("afpe: interrupted", file=sys.stderr)
        return 130
