"""The registry of plot kinds (`afpe.encodings.registry`'s convention): one module per kind under
`afpe.service.plots` computes its numbers (a typed, Plotly-free `*Data`, testable on its own as Optuna's
`_get_<kind>_info`), draws them (`*_figure`, as Optuna's `_get_<kind>_plot`) and registers itself with
`register_plot`. A study kind reads one study's trials (`GET /api/studies/{name}/plots/{kind}`, the study
page); a kind across studies (`across_studies`: compare, trend) draws what the service's query of several
studies answered (the `/compare` and `/trend` pages). The package imports every kind module, in the order the
pages show them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from afpe.core.registry import Registry
from afpe.search.spec import SearchSpace

Data = TypeVar("Data")


@dataclass(frozen=True)
class StudyPlot(Generic[Data]):
    """A plot of one study: `data(trials, space)` computes its numbers (ValueError when the study has none for
    it), `figure(numbers)` draws them."""

    name: str
    data: Callable[[Sequence[FrozenTrial], SearchSpace], Data]
    figure: Callable[[Data], go.Figure]
    across_studies: ClassVar[bool] = False


@dataclass(frozen=True)
class StudiesPlot(Generic[Data]):
    """A plot across studies: `figure(numbers)` draws the numbers the service's query of those studies answered."""

    name: str
    figure: Callable[[Data], go.Figure]
    across_studies: ClassVar[bool] = True


PLOT_KINDS: Registry[StudyPlot | StudiesPlot] = Registry("plot kind")


def register_plot(
    name: str, data: Callable[[Sequence[FrozenTrial], SearchSpace], Data]
) -> Callable[[Callable[[Data], go.Figure]], Callable[[Data], go.Figure]]:
    """Decorator: register the decorated figure function as the study plot kind `name` with its data function."""

    def register(figure: Callable[[Data], go.Figure]) -> Callable[[Data], go.Figure]:
        PLOT_KINDS.register(StudyPlot(name, data, figure))
        return figure

    return register


def register_studies_plot(name: str) -> Callable[[Callable[[Data], go.Figure]], Callable[[Data], go.Figure]]:
    """Decorator: register the decorated figure function as the plot kind across studies `name`."""

    def register(figure: Callable[[Data], go.Figure]) -> Callable[[Data], go.Figure]:
        PLOT_KINDS.register(StudiesPlot(name, figure))
        return figure

    return register


def list_plot_kinds(across_studies: bool = False) -> list[str]:
    """The study plot kinds in the order the study page shows them (or, `across_studies`, compare and trend)."""
    return PLOT_KINDS.names(across_studies=across_studies)


def build_figure(kind: str, trials: Sequence[FrozenTrial], space: SearchSpace) -> go.Figure:
    """The figure of study plot `kind`; ValueError for an unknown kind or when the study has no data for it."""
    plot = PLOT_KINDS.get(kind)
    if not isinstance(plot, StudyPlot):
        raise ValueError(f"plot kind {kind!r} draws several studies, not one")
    return plot.figure(plot.data(trials, space))


def studies_figure(kind: str, data: object) -> go.Figure:
    """The figure of plot kind `kind` across studies from the numbers its query answered."""
    plot = PLOT_KINDS.get(kind)
    if not isinstance(plot, StudiesPlot):
        raise ValueError(f"plot kind {kind!r} draws one study")
    return plot.figure(data)
