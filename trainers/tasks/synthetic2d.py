"""`synthetic2d`: which quadrant of a 32x32 image the bright square is in (64 tokens by default)."""

from afpe.trainers.tasks.phantoms import OrthantPhantomTask
from afpe.trainers.tasks.registry import register_task


@register_task
class Synthetic2D(OrthantPhantomTask):
    name = "synthetic2d"
    axis_names = ("rows", "cols")
