"""`head_watch`: a driver's watch of its Ray head's GCS port (issue 30 row 9), on real sockets: a port that
accepts is alive, one that refuses for GONE_AFTER_S is a head gone (told once, in one line)."""

from __future__ import annotations

import socket
import threading
import time

from afpe.search.head_watch import GONE_AFTER_S, PERIOD_S, head_refuses, watch_head


def test_a_head_that_stops_listening_is_told_gone_once() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    told: list[str] = []
    stop = threading.Event()
    thread = watch_head(address, told.append, stop)
    time.sleep(2 * PERIOD_S + 0.5)
    assert not told and not head_refuses(address)
    listener.close()
    closed = time.monotonic()
    thread.join(GONE_AFTER_S + 4 * PERIOD_S)
    stop.set()
    assert head_refuses(address)
    assert len(told) == 1 and address in told[0], told
    assert time.monotonic() - closed >= GONE_AFTER_S
