"""`synthetic3d`: which octant of a 24^3 volume the bright cube is in (216 tokens by default; with
`anisotropy=1,1,4` the volume is 24x24x6 with patches (4,4,1), still 216 tokens)."""

from pydantic import Field

from afpe.trainers.tasks.phantoms import OrthantPhantomTask, PhantomOptions
from afpe.trainers.tasks.registry import register_task


class Synthetic3DOptions(PhantomOptions):
    size: int = Field(24, ge=8, le=256, description="isotropic edge length before anisotropy")


@register_task
class Synthetic3D(OrthantPhantomTask):
    name = "synthetic3d"
    axis_names = ("d0", "d1", "d2")
    Options = Synthetic3DOptions
