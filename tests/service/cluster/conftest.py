"""Fixtures of the cluster tests: "another host" on this machine, as a network namespace of its own."""

from __future__ import annotations

import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class OtherHost:
    """A network namespace (`namespace`, also a fine host name) at `ip`, reaching this host at `head_ip`."""

    namespace: str
    head_ip: str  # this host's end of the veth pair: the address the other host reaches this one at
    ip: str  # the other host's


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    """A network namespace joined to this host by a veth pair on a /30 of its own (10.x.y.z), its default route
    through this host; removed afterwards (root is needed for it, as CI has: `.ci/run`). The filesystem stays
    shared."""
    tag = uuid.uuid4().hex[:6]
    namespace, here, there = f"afpe-{tag}", f"afh{tag}", f"afw{tag}"
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(256)}.{4 * random.randrange(64)}"
    prefix, last = subnet.rsplit(".", 1)
    head_ip, ip = f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}"
    inside = ["ip", "-n", namespace]
    steps = [
        ["ip", "netns", "add", namespace],
        ["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", namespace],
        ["ip", "addr", "add", f"{head_ip}/30", "dev", here],
        ["ip", "link", "set", here, "up"],
        [*inside, "addr", "add", f"{ip}/30", "dev", there],
        [*inside, "link", "set", there, "up"],
        [*inside, "link", "set", "lo", "up"],
        [*inside, "route", "add", "default", "via", head_ip],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True)
        yield OtherHost(namespace, head_ip, ip)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)  # its end of the pair goes with it
        subprocess.run(["ip", "link", "del", here], capture_output=True)
