"""Comma lists from the user's text (a command's `--grid 14,14`, a per-axis option's "4,8,8"); standard library
only, so every command module can import it without slowing `afpe --help`."""

from __future__ import annotations

from afpe.core.errors import UserError


def comma_items(text: str) -> list[str]:
    """'4, 8,,8' -> ['4', '8', '8']: the stripped items, empty ones skipped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_list(text: str, kind: type = float) -> list:
    """'1,0.25' -> [1.0, 0.25] (empty items skipped); raises UserError naming the bad list."""
    try:
        return [kind(item) for item in comma_items(text)]
    except ValueError:
        raise UserError(f"expected a comma-separated list of {kind.__name__}s, got {text!r}") from None
