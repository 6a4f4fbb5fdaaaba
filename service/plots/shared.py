"""What every plot kind shares: the bound on the markers of a scatter (`shown_points`), the title notes saying
how many of the trials a plot shows and how physical positions read, and the marker and state colours."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import numpy as np

MAX_POINTS = 2_000  # markers per scatter
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
