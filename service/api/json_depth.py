"""The nesting depth of a JSON text, counted without parsing it: Python's `json` recurses once per level (a
RecursionError near 1000), and a deep value that parses still breaks every later read (validation, the
status, a plot's flattening). Texts deeper than MAX_JSON_DEPTH are refused before they are parsed."""

from __future__ import annotations

MAX_JSON_DEPTH = 32  # a spec nests 4 deep (trainer.model.patch_size: [..]); task options a few more


def json_depth(text: str) -> int:
    """The deepest nesting of `[` and `{` in the JSON `text` (0 for a scalar), brackets inside strings not
    counted; a linear scan, whatever the depth. Malformed JSON gets some count (`json.loads` judges it)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
