"""What every plot kind shares: the bound on the markers of a scatter (`shown_points`), the title notes saying
how many of the trials a plot shows and how physical positions read, the marker and state colours, the figure of
a plot without data (`empty_figure`), axis ranges with room around the data (`padded_range`) and ratio ticks on
a log axis (`ratio_ticks`)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np
import plotly.graph_objects as go

MAX_POINTS = 2_000  # markers per scatter
PADDING = 0.06  # room left on each side of the data in an axis range, as a share of the data's span
MAX_RATIO_TICKS = 11
NO_TRIAL = "no COMPLETE trial yet: this plot draws the finished trials' values"
BEST_MARKER = {"symbol": "star", "size": 16, "color": "crimson", "line": {"width": 1, "color": "black"}}
STATE_COLORS = {"COMPLETE": "steelblue", "PRUNED": "darkorange", "FAIL": "firebrick", "RUNNING": "gray"}


def shown_points(
    values: Sequence[float], direction: str, always: Iterable[int] = (), cap: int = MAX_POINTS
) -> list[int]:
    """Indices (ascending) of the points a scatter of `values` shows: every one when there are at most `cap`;
    else the indices `always`, the cap // 4 best values in `direction` ('maximize' or 'minimize') and evenly
    spaced ones of the others, `cap` in all (more when `always` is longer)."""
    n = len(values)
    if n <= cap:
        return list(range(n))
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    if direction == "maximize":
        order = order[::-1]
    kept = set(always) | set(order[: cap // 4].tolist())
    rest = np.setdiff1d(np.arange(n), np.fromiter(kept, dtype=int, count=len(kept)))
    spare = max(cap - len(kept), 0)
    kept.update(rest[np.linspace(0, len(rest) - 1, spare).astype(int)].tolist() if spare else [])
    return sorted(kept)


def positions_note(note: str | None) -> str:
    """The physical positions' note as a title's second line ('' for normalized positions)."""
    return "" if note is None else f"<br><sup>{html.escape(note, quote=False)}</sup>"


def shown_note(shown: int, total: int, what: str = "trials") -> str:
    """' (n of N trials shown)' when a plot shows fewer than all, else ''."""
    return f" ({shown} of {total} {what} shown)" if shown < total else ""


def empty_figure(title: str, reason: str) -> go.Figure:
    """A plot without data: its `title` and, in the middle, `reason` (why it is empty), no axes (Plotly's axes of
    an empty figure, -1 to 6 and -1 to 4, say nothing)."""
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis_visible=False,
        yaxis_visible=False,
        annotations=[{"text": reason, "showarrow": False, "xref": "paper", "yref": "paper", "font_size": 16}],
    )
    return fig


def padded_range(values: Iterable[float | None], log: bool = False, pad: float = PADDING) -> list[float] | None:
    """An axis range holding every finite `values` with `pad` of their span to spare on each side, so no point
    sits on the frame (one value: `pad` of its size, or of one decade on a `log` axis); on a `log` axis (whose
    Plotly range is in log10) over the positive values. None without any value."""
    kept = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not kept:
        return None
    low, high = (math.log10(v) if log else v for v in (min(kept), max(kept)))
    span = (high - low) or (1.0 if log else abs(low) or 1.0)
    return [low - pad * span, high + pad * span]


def ratio_label(ratio: float) -> str:
    """A power of two as a ratio: 16 -> '16', 0.0625 -> '1/16'; others with 3 significant digits."""
    exact = Fraction(ratio).limit_denominator(1 << 20)
    if float(exact) == ratio and (exact.numerator == 1 or exact.denominator == 1):
        return str(exact)
    return f"{ratio:.3g}"


def ratio_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks of a log axis of ratios from `low` to `high`: the powers of two between them (every k-th one so at
    most MAX_RATIO_TICKS), labelled as ratios ('1/16', ..., '1', ..., '16')."""
    first, last = math.ceil(math.log2(low) - 1e-9), math.floor(math.log2(high) + 1e-9)
    step = max(1, math.ceil((last - first + 1) / MAX_RATIO_TICKS))
    values = [2.0**k for k in range(first, last + 1) if k % step == 0]
    return values, [ratio_label(v) for v in values]
