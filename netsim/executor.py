"""Running independent runs: one after another here, in a local process pool, or as Ray tasks.

A task is one run: its name, its settings (the seed among them) and its folder. It needs
nothing from any other run, so a pool worker or a Ray task runs it alone and writes that
folder alone. The same seed gives the same files whichever way it ran, at the same number
of torch threads: with another thread count, matrix products may sum in another order and
losses differ in their last bits. A pool worker computes with ``worker_threads(jobs)``
threads, a Ray task with one.

- here (``jobs=1``, or a single run): in this process, with the run's own progress bar;
- a local pool (the default): ``jobs`` spawned processes (default one per core), each
  limiting torch to its share of the cores, so they do not fight over them; a worker writes
  its run's folder directly;
- Ray (``ray=""`` for ``ray.init()``, or a cluster's address): one task per run, one CPU
  each. A task writes its run into a temporary folder on whichever machine Ray put it, then
  returns the files through Ray's object store; this process writes them into the run's
  folder (summary.json last), so a cluster needs no shared file system.

Experiment files are not importable modules (netsim/specfile.py), so their sources travel
with every task and are loaded in the worker before the run's settings are unpickled.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from netsim import interrupts, specfile
from netsim.experiment import ConfigError, Settings


@dataclass(frozen=True)
class Task:
    name: str
    settings: Settings
    folder: Path
    seeded: bool = False  # one of several seeds, in its seed=<s>/ folder

    @property
    def label(self) -> str:
        return f"{self.name} seed={self.settings.seed}" if self.seeded else self.name


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(jobs: int) -> int:
    """Torch threads of each of ``jobs`` pool workers: an equal share of the cores."""
    return max(1, cores() // jobs)


def run_here(task: Task, progress: bool = False) -> dict:
    """Simulates one run into its folder; returns its summary."""
    from netsim.sim import Simulation

    graph = task.settings.graph()
    return Simulation(task.name, task.settings, graph, task.folder, progress=progress).run()


def execute(tasks: list[Task], ended, jobs: int | None = None, ray=None, progress=True) -> None:
    """Runs the tasks; calls ended(task, summary, None), or ended(task, None, exception) for
    a run that failed, here as each run ends. A failed run does not stop the others. Ctrl-C
    stops every run at once (a pool's workers are terminated; Ray's tasks cancelled) and
    raises KeyboardInterrupt here."""
    if ray is not None:
        return _on_ray(tasks, ray, ended)
    jobs = min(jobs or cores(), len(tasks))
    if jobs <= 1:
        return _here(tasks, progress, ended)
    return _in_pool(tasks, jobs, ended)


def _here(tasks: list[Task], progress: bool, ended) -> None:
    for task in tasks:
        try:
            summary = run_here(task, progress)
        except Exception as exc:
            ended(task, None, exc)
        else:
            ended(task, summary, None)


def _pack(task: Task) -> tuple[dict[str, str], bytes]:
    return dict(specfile.SOURCES), pickle.dumps(task)


def _unpack(packed: tuple[dict[str, str], bytes]) -> Task:
    sources, blob = packed
    for name, source in sources.items():
        if name not in sys.modules:
            specfile.define(name, source, f"<{name}>")
    return pickle.loads(blob)


def _start_worker(threads: int) -> None:
    import threading

    import torch
    from tqdm import tqdm

    # Ctrl-C reaches the whole process group: the parent alone decides, and terminates us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    # tqdm's default lock is a named semaphore, which a terminated worker would leave behind
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)


_IN_RUN = False  # whether this worker is making a run, which SIGTERM then stops first
_STOPPED = False  # SIGTERM came: the process ends once its run has written what it reached


def _terminated(signum, frame):
    global _STOPPED
    if not _IN_RUN:
        os._exit(128 + signum)
    stop = SystemExit("terminated (SIGTERM)")
    if _STOPPED:  # again: once a worker has ended, the pool terminates every worker left,
        interrupts.again(stop)  # this one maybe while its run writes what it reached
        return
    _STOPPED = True
    interrupts.interrupt(stop)  # as the CLI's: a row being written is written and counted


def _pool_task(packed):
    global _IN_RUN
    _IN_RUN = True
    try:
        return run_here(_unpack(packed)), None
    except Exception as exc:
        return None, exc
    finally:
        _IN_RUN = False
        # the pool's worker loop would take the stop (a SystemExit, or whatever error it
        # became inside the run) for the task's result and go on to the next task
        if _STOPPED:
            os._exit(128 + signal.SIGTERM)


class PoolError(RuntimeError):
    """A worker process of the local pool died: the runs left cannot be made."""


def _in_pool(tasks: list[Task], jobs: int, ended) -> None:
    # spawn, not fork: a forked child of a process that has run torch's thread pool can hang.
    # concurrent.futures, not multiprocessing.Pool: a worker that dies (killed for memory, or
    # a script calling netsim.sweep unguarded, which every spawned worker runs again) breaks
    # the pool with an error, where multiprocessing.Pool would start new workers forever
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(worker_threads(jobs),),
    )
    try:
        futures = {pool.submit(_pool_task, _pack(task)): task for task in tasks}
        for future in as_completed(futures):
            ended(futures[future], *future.result())
    except BrokenProcessPool:
        _terminate(pool)
        raise PoolError(
            "a process of the local pool died (out of memory? a script must call "
            "netsim.sweep under `if __name__ == '__main__':`, as each worker runs it again)"
        ) from None
    except BaseException:
        _terminate(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stops every worker now (Ctrl-C): each exits as Python does (see _start_worker)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _ray_task(packed) -> tuple[dict | None, dict[str, bytes], Exception | None]:
    import torch

    torch.set_num_threads(1)  # Ray gives each task one CPU
    task = _unpack(packed)
    with tempfile.TemporaryDirectory(prefix="netsim-") as folder:
        here = Task(task.name, task.settings, Path(folder), task.seeded)
        try:
            summary, error = run_here(here), None
        except Exception as exc:
            summary, error = None, exc
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
    return summary, files, error


def connect_ray(address: str) -> bool:
    """Connects to Ray (a local one for ""); True if this call started it. One line if Ray
    is not installed or the cluster cannot be reached, before any run starts."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install -e '.[ray]' (or pip install ray)") from None
    if ray.is_initialized():
        return False
    try:
        # Ray's own warnings (token authentication on a local instance) are not the user's
        ray.init(address=address or None, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot reach Ray at {address or 'a local instance'}: {first}") from None
    return True


def disconnect_ray() -> None:
    import ray

    ray.shutdown()  # a local instance this process started stops; a cluster stays up


def _on_ray(tasks: list[Task], address: str, ended) -> None:
    import ray

    started = connect_ray(address)
    remote = ray.remote(num_cpus=1)(_ray_task)
    refs = {remote.remote(_pack(task)): task for task in tasks}
    pending = list(refs)
    try:
        while pending:
            (ready,), pending = ray.wait(pending, num_returns=1)
            task = refs[ready]
            try:
                summary, files, error = ray.get(ready)
            except ray.exceptions.RayError as exc:  # the task's worker died (memory, a node)
                summary, files, error = None, {}, RuntimeError(str(exc).strip().splitlines()[0])
            _write(task.folder, files)
            ended(task, summary, error)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            disconnect_ray()


def _write(folder: Path, files: dict[str, bytes]) -> None:
    """A Ray task's files into the run's folder, summary.json last: a run whose copy was cut
    short is not taken for a finished one."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda name: name == "summary.json"):
        (folder / name).write_bytes(files[name])
