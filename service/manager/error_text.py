"""The `error` of a study as the API shows it (to anyone: reads are not authenticated): the driver's log tail
without terminal colour codes, file system paths, internal addresses or secrets, and at most
MAX_ERROR_CHARS long (its end kept: the exception is at the end of a log)."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_ERROR_CHARS = 2000
HIDDEN = "***"

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s@/]*@", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"\b((?:[a-z_]*_)?(?:password|passwd|pwd|token|secret|api_key))(\s*[=:]\s*|=)(['\"]?)[^\s'\"&,;]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer)\s+\S+", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.:/~-])(?:~|/)[\w.+@%-]*(?:/[\w.+@%-]+)+")
_ADDRESS = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b|\[[0-9a-f:]+\](?::\d{1,5})?", re.IGNORECASE)


def sanitize_error(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """`text` safe to show: every known secret (4+ characters) and anything that looks like a password,
    token or URL credential replaced by ***, paths by their last part (`.../driver.py`), IP addresses by
    <address>, colour and control codes removed, cut to its last MAX_ERROR_CHARS characters."""
    if text is None:
        return None
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    text = _URL_CREDENTIALS.sub(rf"\1:{HIDDEN}@", text)
    text = _KEY_VALUE.sub(rf"\1\2\3{HIDDEN}", text)
    text = _BEARER.sub(rf"\1 {HIDDEN}", text)
    text = _PATH.sub(lambda match: ".../" + match.group(0).rsplit("/", 1)[-1], text)
    text = _ADDRESS.sub("<address>", text)
    if len(text) > MAX_ERROR_CHARS:
        text = "..." + text[-(MAX_ERROR_CHARS - 3) :]
    return text
