"""The Ray auth token of a private local Ray (`driver.ray_session`). Ray 2.60 binds its gRPC servers on every
interface (and turns 127.0.0.1 into the node's address: there is no loopback-only option), so its token auth,
on by default for a new local cluster, is what keeps a private Ray to its owner (tests/search/test_ray_token.py
checks every port it opens). The token file, which Ray would write to `~/.ray/auth_token` with the default umask
(readable by every user of the machine), is created here first, or its mode tightened, so only its owner reads it.
A caller who sets RAY_AUTH_MODE=disabled (Ray's documented opt-out) is obeyed: Ray reads it at import."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_ENV = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def default_token_path() -> Path:
    """Where Ray looks for its token when neither RAY_AUTH_TOKEN nor RAY_AUTH_TOKEN_PATH is set."""
    return Path.home() / ".ray" / "auth_token"


def ensure_private_token() -> Path | None:
    """The token file a local Ray will read, readable by its owner only (mode 0600 in a 0700 folder): a new
    random token when there is none. None when the environment supplies the token (nothing is written)."""
    if any(os.environ.get(name) for name in TOKEN_ENV):
        return None
    return private_token_file(default_token_path())


def private_token_file(path: Path) -> Path:
    """`path`, holding a Ray token and readable by its owner only (mode 0600; a folder it makes is 0700): a new
    random token when the file does not exist, else its mode tightened. Returns `path`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        return path
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    return path
