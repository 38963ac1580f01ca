"""Experiment files, loaded as modules of their own.

An experiment file runs as a module named after it (``netsim_experiment_<stem>``), not as a
bare namespace, so classes it defines (an algorithm of the user's own) can be pickled by
reference; the real runtime sends the file's source with the run, and every node process
loads it under the same name before it reads the run's settings (netsim/real/process.py).
"""

from __future__ import annotations

import re
import sys
import traceback
import types
from pathlib import Path

from netsim.checks import ours
from netsim.experiment import ConfigError, Experiment

SOURCES: dict[str, str] = {}  # module name -> source of every experiment file loaded


def load(path: str) -> Experiment:
    """The ``experiment`` an experiment file defines."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"no experiment file {path!r}: pass a path like experiments/ps_vs_p2p.py")
    name = "netsim_experiment_" + re.sub(r"\W", "_", file.stem)
    source = file.read_text()
    try:
        module = define(name, source, str(file))
    except SyntaxError as error:
        raise ConfigError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:
        if ours(error):
            raise
        lines = [
            n
            for frame, n in traceback.walk_tb(error.__traceback__)
            if frame.f_code.co_filename == str(file)
        ]
        where = f"{path}:{lines[-1]}" if lines else path
        raise ConfigError(f"{where}: {type(error).__name__}: {error}".splitlines()[0]) from None
    experiment = getattr(module, "experiment", None)
    if not isinstance(experiment, Experiment):
        raise ConfigError(f"{path} must define `experiment = Experiment(...)`")
    return experiment


def define(name: str, source: str, filename: str) -> types.ModuleType:
    """Runs source as the module ``name`` (registered first: dataclasses look it up)."""
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    SOURCES[name] = source
    return module
