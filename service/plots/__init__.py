"""Plots: one module per plot kind (its numbers, its figure, its registration in `kinds.PLOT_KINDS`), the shared
bounds and styles (`shared.py`). Importing the package registers every kind, in the order the pages show them."""

# isort: off
from afpe.service.plots import ratio, axes, contour, history, intermediate, similarity, importance, timeline  # noqa: F401
from afpe.service.plots import compare, trend  # noqa: F401
# isort: on
