"""Every real-runtime test ends with no node process left behind."""

import os
import time
from pathlib import Path

import pytest


def node_processes() -> set[str]:
    """pid and command line of each live netsim node process and agent (``netsim worker``)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            b"netsim" in argv
            and b"worker" in argv
            and state != "Z"
            and int(proc.name) != os.getpid()
        ):
            found.add(f"{proc.name}: " + b" ".join(argv).decode(errors="replace"))
    return found


@pytest.fixture(autouse=True)
def no_orphans():
    before = node_processes()  # another run's, on a shared machine
    yield
    deadline = time.monotonic() + 10
    while node_processes() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node_processes() - before == set()
