"""A failed trial's stored `error`: its cause first (`<ExceptionType>: <message>`, the trainable's own exception
rather than Ray's wrapper), then the last lines of the traceback Ray wrote (`error.txt`), bounded and cut at a
line, with no ANSI colour codes (Ray colours its task names)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: ECMA-48 control sequences (colours, cursor moves): `ESC [ params intermediates final`.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
#: The last line of a Python traceback: `package.module.TypeName: message` (or the bare type).
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b.*)$")
HEAD_LIMIT = 600
NO_TEXT = "errored past its retries"


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences."""
    return ANSI.sub("", text)


def cause_line(error: BaseException) -> str:
    """`<ExceptionType>: <message>` of the innermost cause Ray wrapped (`RayTaskError.cause`)."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    message = strip_ansi(str(error)).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def last_exception_line(traceback: str) -> str:
    """The traceback's last `TypeName: message` line (its module path dropped); else its last line."""
    lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    for line in reversed(lines):
        match = EXCEPTION_LINE.match(line)
        if match:
            return match.group(1)
    return lines[-1] if lines else NO_TEXT


def error_text(head: str, traceback: str, limit: int) -> str:
    """`head` (capped at HEAD_LIMIT characters), then as many of `traceback`'s last whole lines as fit in
    `limit` characters in all; ANSI codes removed from both."""
    head = strip_ansi(head)
    head = head if len(head) <= HEAD_LIMIT else head[: HEAD_LIMIT - 1] + "…"
    room = limit - len(head) - len("\n…\n")
    tail = strip_ansi(traceback).strip()
    if not tail or room <= 0:
        return head[:limit]
    if len(tail) > room:
        tail = "…\n" + tail[-room:].split("\n", 1)[-1]
    return f"{head}\n{tail}"


def trial_error_text(trial: Any, limit: int) -> str:
    """The stored error of a Tune trial that failed past its retries (`ray.tune.experiment.Trial`): its
    pickled exception's cause line (else the traceback's last exception line), then the traceback's tail,
    `limit` characters at most."""
    traceback = ""
    if trial.error_file and Path(trial.error_file).is_file():
        traceback = Path(trial.error_file).read_text(errors="replace")
    try:
        error = trial.get_pickled_error()
    except Exception:  # noqa: BLE001 - an exception class the driver cannot unpickle: the text still names it
        error = None
    head = cause_line(error) if error is not None else last_exception_line(strip_ansi(traceback))
    return error_text(head, traceback, limit)
