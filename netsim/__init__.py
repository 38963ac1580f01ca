"""netsim: a discrete-event network emulator for decentralized deep learning.

Real PyTorch training runs on every simulated node; a SimPy clock decides when each step ends and
when each message arrives. See README.md for the two commands and DESIGN.md for the architecture.
"""

import importlib

# the public names, imported on first use (PEP 562): `import netsim` does not load torch, so that
# `python -m netsim` can say one line, not a traceback, for a Ctrl-C while torch loads
_PUBLIC = {
    "Compute": "netsim.engine.compute",
    "Experiment": "netsim.experiment",
    "Network": "netsim.network",
    "Run": "netsim.experiment",
    "Settings": "netsim.experiment",
    "run": "netsim.runner",
    "sweep": "netsim.sweeps",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'netsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
