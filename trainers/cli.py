"""`afpe train`: train one task with one encoding and print its validation metrics."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from afpe.core.errors import UserError
from afpe.core.parsing import parse_list


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one task with one positional encoding")
    parser.add_argument(
        "--task", required=True, help="task name, e.g. synthetic3d or medmnist3d (an unknown name lists them all)"
    )
    parser.add_argument("--encoding", default="fourier", help="positional encoding (default: fourier)")
    parser.add_argument("--scales", help="per-axis scales of the patch grid, e.g. 1,1,0.25 (afpe, lfpe, lsfpe)")
    parser.add_argument("--scale", type=float, default=1.0, help="global frequency scale (fourier; default: 1)")
    parser.add_argument(
        "--positions",
        choices=("normalized", "physical"),
        default="normalized",
        help="token positions: normalized (linspace(0, 1) per axis, default) or physical (the task's token spacing "
        "in pixels, voxels or frames over --reference-length)",
    )
    parser.add_argument(
        "--reference-length",
        type=float,
        help="physical positions: the length (task units) a scale counts cycles over (default: the largest extent)",
    )
    parser.add_argument("--epochs", type=int, help="epochs (default: 10)")
    parser.add_argument("--limit", type=int, help="cap on training samples")
    parser.add_argument("--batch-size", type=int, help="batch size (default: 32)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order (default: 0)")
    parser.add_argument("--pe-seed", type=int, default=0, help="seed of the encoding's random draw (default: 0)")
    parser.add_argument("--metric", help="metric to select the best epoch (default: the task's)")
    parser.add_argument("--data-root", help="dataset folder (medmnist3d, chestx, echonet, msd, brats)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task option, repeatable; lists comma-separated, e.g. --option anisotropy=1,1,4",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--checkpoint-dir", help="save a checkpoint per epoch here; an existing one is resumed")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from tqdm import tqdm

    from afpe.trainers.options import parse_task_options
    from afpe.trainers.settings import TrainConfig

    fields = {
        "epochs": args.epochs,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "num_threads": args.threads,
        "metric": args.metric,
        "data_root": args.data_root,
        "reference_length": args.reference_length,
    }
    try:
        config = TrainConfig(
            task=args.task,
            encoding=args.encoding,
            task_options=parse_task_options(args.option),
            scales=parse_list(args.scales) if args.scales else None,
            scale=args.scale,
            seed=args.seed,
            pe_seed=args.pe_seed,
            positions=args.positions,
            device=args.device,
            **{k: v for k, v in fields.items() if v is not None},
        )
    except ValidationError as error:
        problem = error.errors()[0]
        raise UserError(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None

    from afpe.trainers.loop import train  # the model's libraries, once the input is known to be valid

    bars: list[tqdm] = []  # opened at the first report, so input errors print no empty bar

    def report(epoch: int, metrics: dict[str, float]) -> None:
        if not bars:
            bars.append(
                tqdm(
                    total=config.epochs,
                    desc=f"{config.task}/{config.encoding}",
                    unit="epoch",
                    disable=args.json,
                    initial=epoch - 1,
                )
            )
        bars[0].set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        bars[0].update(epoch - bars[0].n)

    try:
        result = train(config, report=report, checkpoint_dir=args.checkpoint_dir)
    finally:
        for bar in bars:
            bar.close()
    summary = {
        "task": config.task,
        "encoding": config.encoding,
        "scales": config.scales,
        "positions": config.positions,
        "epochs": result["epochs"],
        "best_epoch": result["best_epoch"],
        "metric": result["metric"],
        "objective": result["objective"],
        "seconds": round(result["seconds"], 3),
        "metrics": result["metrics"],
    }
    if args.json:
        print(json.dumps(_finite(summary)))
    else:
        print(
            f"best epoch {result['best_epoch']}/{result['epochs']} ({result['metric']} = {result['objective']:.4f}),"
            f" {result['seconds']:.1f} s"
        )
        width = max(map(len, result["metrics"]), default=0)
        for name, value in result["metrics"].items():
            print(f"  {name:<{width}}  {value:.4f}")
        if config.positions == "physical":
            from afpe.trainers.tasks import build_task

            info = build_task(config.task, config.task_options, config.data_root).info(config.model.patch_size)
            print(info.positions_note(config.positions, config.reference_length))
    return 0


def _finite(value: Any) -> Any:
    """NaN/inf -> null so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
