"""`afpe` command line. Each sub-command lives in its own module exposing `register(subparsers)`;
heavy imports happen inside the command, so `afpe --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import version

COMMAND_MODULES = (
    "afpe.service.cli_encodings",
    "afpe.service.cli_search",
    "afpe.service.cli_cluster",
    "afpe.service.cli_train",
    "afpe.service.cli_serve",
)


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afpe", description="Hyperparameter search for anisotropic Fourier-feature positional encodings."
    )
    parser.add_argument("--version", action="version", version=f"afpe-sweep {version('afpe-sweep')}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (CliError, ValueError, FileNotFoundError) as error:
        if os.environ.get("AFPE_DEBUG"):
            raise
        print(f"afpe: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("afpe: interrupted", file=sys.stderr)
        return 130


def parse_list(text: str, kind: type = float) -> list:
    """'1,0.25' -> [1.0, 0.25]; raises CliError naming the bad item."""
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise CliError(f"expected a comma-separated list of {kind.__name__}s, got {text!r}") from None
