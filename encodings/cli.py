"""`afpe encodings list|plot`: inspect the positional encodings."""

from __future__ import annotations

import argparse
from pathlib import Path

from afpe.core.parsing import parse_list


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encodings", help="list encodings or plot their similarity maps")
    commands = parser.add_subparsers(title="encodings commands", metavar="COMMAND", required=True)

    commands.add_parser("list", help="print the registered encodings").set_defaults(func=_list)

    plot = commands.add_parser("plot", help="write an interactive similarity-map page (self-contained HTML)")
    plot.add_argument("--encoding", default="afpe", help="encoding name (default: afpe)")
    plot.add_argument("--grid", required=True, help="token grid, e.g. 14,14 or 8,14,14")
    plot.add_argument("--scales", help="per-axis scales, e.g. 1,0.25 (afpe, lfpe, lsfpe)")
    plot.add_argument("--scale", type=float, default=1.0, help="global frequency scale (default: 1)")
    plot.add_argument("--dim", type=int, default=192, help="encoding width (default: 192)")
    plot.add_argument("--seed", type=int, default=0, help="seed of the frequency draw (default: 0)")
    plot.add_argument("--metric", choices=("cosine", "dot"), default="cosine")
    plot.add_argument(
        "--spacing", help="physical positions: token spacing per axis, e.g. 0.8,0.8,5 (default: normalized)"
    )
    plot.add_argument("--unit", default="unit", help="the spacing's unit, named on the page (e.g. mm)")
    plot.add_argument(
        "--reference-length", type=float, help="length a scale counts cycles over (default: largest extent)"
    )
    plot.add_argument("--out", required=True, type=Path, help="output HTML file")
    plot.set_defaults(func=_plot)


def _list(args: argparse.Namespace) -> int:
    from afpe.encodings import list_encodings

    print("\n".join(list_encodings()))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from afpe.encodings.plot import similarity_figure, similarity_panels

    panels = similarity_panels(
        args.encoding,
        parse_list(args.grid, int),
        dim=args.dim,
        scales=parse_list(args.scales) if args.scales else None,
        scale=args.scale,
        seed=args.seed,
        metric=args.metric,
        spacing=parse_list(args.spacing) if args.spacing else None,
        unit=args.unit,
        reference_length=args.reference_length,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    similarity_figure(panels).write_html(args.out, include_plotlyjs=True, full_html=True)
    print(f"wrote {args.out}")
    return 0
