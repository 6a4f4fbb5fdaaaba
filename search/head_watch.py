"""A driver ends soon after its Ray cluster's head is gone (issue 30 row 9).

Ray's own driver notices a lost GCS only after `gcs_rpc_server_reconnect_timeout_s` (60 s), renewing its study's
lease all the while: a `kill -9` of `afpe serve` takes its private head with it (the head's watcher), and the
drivers of its jobs lived a minute more, holding their studies. Ray offers no call that answers quickly when the
GCS is gone (its client retries for that same minute), so this watch, written by hand, opens a TCP connection to
the GCS port every `PERIOD_S`: refused for `GONE_AFTER_S` on end (nothing listens there any more: the head
stopped), the head is gone and `on_gone` gets one line (the driver lets go of its lease and ends). A connection
that only times out (a remote head behind a slow network) proves nothing and is left to Ray's own minute.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

PERIOD_S = 1.0
GONE_AFTER_S = 3.0
CONNECT_TIMEOUT_S = 2.0


def head_refuses(address: str) -> bool:
    """Whether `address` (host:port) refuses a TCP connection (nothing listens there); False when it accepts it
    or the attempt only timed out or failed otherwise."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def watch_head(address: str, on_gone: Callable[[str], None], stop: threading.Event) -> threading.Thread:
    """A daemon thread probing the head's GCS at `address` (host:port) every PERIOD_S until `stop` is set; it
    calls `on_gone` (once) with one line when the address has refused connections for GONE_AFTER_S on end."""

    def run() -> None:
        refused_since = None
        while not stop.wait(PERIOD_S):
            if not head_refuses(address):
                refused_since = None
                continue
            now = time.monotonic()
            refused_since = refused_since if refused_since is not None else now
            if now - refused_since >= GONE_AFTER_S and not stop.is_set():
                on_gone(f"the Ray cluster's head at {address} is gone (refused connections for {GONE_AFTER_S:.0f} s)")
                return

    thread = threading.Thread(target=run, name="afpe-head-watch", daemon=True)
    thread.start()
    return thread
