"""Training-step time of our N-d ViT against timm's `VisionTransformer` (2D) of the same shape and tokens,
and seconds per epoch of each synthetic task at its defaults.

    python benchmarks/trainer_step.py [--threads 2] [--device cpu] [--repeats 15]

Goal: our step <= 1.05x the reference. Steps are timed interleaved (ours, timm, ours, ...) and the ratio
of medians is printed, so machine load affects both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from timm.models.vision_transformer import VisionTransformer

from afpe.trainers import TrainConfig, ViT, task_info, train
from afpe.trainers.device import select_device

SHAPES = [  # (image size, patch, dim, depth, heads): a 2D 64² case with patch 8, and the synthetic2d default
    (64, 8, 96, 4, 4),
    (32, 4, 48, 2, 4),
]


def step_seconds(model: torch.nn.Module, batch: torch.Tensor, labels: torch.Tensor, device: torch.device):
    """A closure timing one AdamW training step (forward, cross-entropy, backward, update)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> float:
        start = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(batch).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def compare_step(size: int, patch: int, dim: int, depth: int, heads: int, batch: int, repeats: int, device) -> None:
    ours = ViT(
        in_channels=1,
        spatial=(size, size),
        patch_size=(patch, patch),
        n_outputs=10,
        encoding="learnable",
        dim=dim,
        depth=depth,
        heads=heads,
        mlp_ratio=4.0,
    ).to(device)
    reference = VisionTransformer(
        img_size=size,
        patch_size=patch,
        in_chans=1,
        num_classes=10,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=4.0,
        qkv_bias=True,
    ).to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in reference.parameters())
    x = torch.randn(batch, 1, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    steps = {"ours": step_seconds(ours, x, y, device), "timm": step_seconds(reference, x, y, device)}
    for step in steps.values():  # warm-up
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    ours_s, timm_s = statistics.median(times["ours"]), statistics.median(times["timm"])
    tokens = (size // patch) ** 2 + 1
    print(
        f"2D {size}x{size} patch {patch} ({tokens} tokens), dim {dim}, depth {depth}, heads {heads}, batch {batch},"
        f" params ours {n_ours:,} / timm {n_ref:,}: ours {ours_s * 1e3:.1f} ms, timm {timm_s * 1e3:.1f} ms,"
        f" ratio {ours_s / timm_s:.3f} (goal <= 1.05)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per synthetic task (the last one is timed)")
    parser.add_argument("--quick", action="store_true", help="the small shape, 1 repeat, 1 epoch on 64 samples")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.batch, args.epochs = 1, 4, 1
    shapes, samples = (SHAPES[-1:], {"n_train": 64, "n_val": 32}) if args.quick else (SHAPES, {})
    device = select_device(args.device, args.threads)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    for shape in shapes:
        compare_step(*shape, batch=args.batch, repeats=args.repeats, device=device)
    for task in ("synthetic2d", "synthetic3d", "synthetic_video"):
        info = task_info(task)
        config = TrainConfig(
            task=task, task_options=samples, epochs=args.epochs, device=args.device, num_threads=args.threads
        )
        result = train(config)
        per_epoch = result["seconds"] / result["epochs"]
        print(
            f"{task}: input {info.input_shape}, patch {info.patch_size} -> {info.patch_grid} = "
            f"{torch.Size(info.patch_grid).numel()} tokens, dim {config.model.dim}, depth {config.model.depth}, "
            f"batch {config.batch_size}: {per_epoch:.2f} s/epoch (train + validation, mean of {result['epochs']}), "
            f"{info.default_metric} after {result['epochs']} epochs = "
            f"{result['history'][-1][info.default_metric]:.3f}"
        )


if __name__ == "__main__":
    main()
