"""Recorder: every step, message and evaluation as a row, written to CSV as the run goes.

Rows hold simulated quantities only (no wall-clock values), so the same seed on the same device
gives byte-identical CSV files; summary.json adds wall time and peak memory. Files are flushed at
every evaluation and on close, so an interrupted run keeps what it had. summary.json says
``"complete": false`` from the run's start until its end, and stays so, with why and what it
reached, for a run that was interrupted or failed.
"""

from __future__ import annotations

import csv
import json
import math
import resource
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from netsim.interrupts import hold, release
from netsim.network.message import Message
from netsim.results.read import mb_per_worker

STEPS = ("node", "step", "t_start", "t_end", "loss")
MESSAGES = (
    "src",
    "dst",
    "kind",
    "bytes",
    "data_bytes",
    "t_send",
    "t_arrive",
    "dropped",
    "reason",
)
EVALS = ("t", "node", "split", "accuracy", "loss", "steps", "bytes")
RECORDS = ("t", "node", "name", "value")


class Recorder:
    def __init__(self, run_dir: Path, config: dict, roles: list[str], progress=None):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.roles = roles
        self.workers = [i for i, role in enumerate(roles) if role == "worker"]
        self.progress = progress
        self.bytes_sent = 0
        self.messages = 0
        self.dropped = 0
        self.in_flight = 0  # sent and not delivered when the run ended: not dropped
        self.last_eval: dict | None = None
        self._records: dict[str, list[float]] = {}
        self._step_ends: dict[int, list[float]] = {i: [] for i in self.workers}
        # workers at each step count, so "steps every worker reached" is O(1) per step
        self._at_count = Counter({0: len(self.workers)})
        self._reached = 0
        # federated runs: workers chosen per round, and every worker's steps summed
        self._round_size = config.get("round_size")
        self._local_steps = 0
        self._files, self._writers = [], {}
        for name, header in (
            ("steps", STEPS),
            ("messages", MESSAGES),
            ("evals", EVALS),
            ("records", RECORDS),
        ):
            handle = open(self.dir / f"{name}.csv", "w", newline="")
            self._files.append(handle)
            self._writers[name] = csv.writer(handle, lineterminator="\n")
            self._writers[name].writerow(header)
        self._config = dict(config)
        self.config()
        # until the run ends: a folder run into again never keeps an earlier run's summary
        self._write_summary({"run": config.get("run"), "complete": False})

    def config(self, **extra) -> None:
        """Writes config.json: the run's settings, plus what the simulation decided (extra)."""
        self._config.update(extra)
        text = json.dumps(self._config, indent=2, default=str) + "\n"
        (self.dir / "config.json").write_text(text)

    def step(self, node: int, step: int, t_start: float, t_end: float, loss: float) -> None:
        hold()  # a Ctrl-C now waits until the row and the counts agree
        try:
            self._writers["steps"].writerow((node, step, repr(t_start), repr(t_end), repr(loss)))
            if node in self._step_ends:
                ends = self._step_ends[node]
                self._at_count[len(ends)] -= 1
                ends.append(t_end)
                self._local_steps += 1
                self._at_count[len(ends)] += 1
                while self._at_count[self._reached] == 0 and self._reached < len(ends):
                    self._reached += 1
                if self.progress is not None:
                    self.progress.update(1)
        finally:
            release()

    def message(self, m: Message) -> None:
        in_flight = m.drop_reason == "in flight"
        row = (
            m.src,
            m.dst,
            m.kind,
            m.size,
            m.data_bytes,
            repr(m.t_send),
            repr(m.t_arrive),
            int(m.dropped),
            m.drop_reason,
        )
        hold()
        try:
            self._writers["messages"].writerow(row)
            self.messages += 1
            self.dropped += int(m.dropped and not in_flight)
            self.in_flight += int(in_flight)
            if not (m.dropped and m.drop_reason == "queue"):  # it used the link
                self.bytes_sent += m.size
        finally:
            release()

    def record(self, t: float, node: int, name: str, value: float) -> None:
        if hasattr(value, "item"):  # a numpy or torch scalar: its repr is not a number
            value = value.item()
        self._writers["records"].writerow((repr(t), node, name, repr(value)))
        self._records.setdefault(name, []).append(value)

    def steps_reached(self) -> int:
        """The steps curves are plotted against and eval_every counts: the steps every worker
        has reached; in a federated run, where the workers a round leaves out wait, the
        server's rounds x local steps (all workers' steps / the workers chosen per round)."""
        if self._round_size:
            return self._local_steps // self._round_size
        return self._reached if self.workers else 0

    def evaluation(self, t: float, node, split: str, accuracy: float, loss: float) -> None:
        row = (
            repr(t),
            node,
            split,
            repr(accuracy),
            repr(loss),
            self.steps_reached(),
            self.bytes_sent,
        )
        self._writers["evals"].writerow(row)
        if node == "global":
            self.last_eval = dict(zip(EVALS, row, strict=True)) | {"accuracy": accuracy}
        self.flush()

    def flush(self) -> None:
        for handle in self._files:
            handle.flush()

    def summary(self, run: str, algorithm: str, sim_time: float, wall_time: float) -> dict:
        times = step_times(self._step_ends)
        pct = np.percentile(times, [5, 50, 95]) if len(times) else [float("nan")] * 3
        final = self.last_eval or {}
        return {
            "run": run,
            "algorithm": algorithm,
            "workers": len(self.workers),
            # null, not NaN, keeps summary.json strict JSON; rating data has no accuracy
            "final_accuracy": _or_none(final.get("accuracy")),
            "final_loss": _or_none(float(final.get("loss", "nan"))),
            "sim_time": sim_time,
            "steps_per_worker": self._reached if self.workers else 0,
            "step_time": {
                "p5": float(pct[0]),
                "p50": float(pct[1]),
                "p95": float(pct[2]),
                "mean": float(np.mean(times)) if len(times) else float("nan"),
            },
            # every node's sends, a server's too, per worker: the network load a worker costs
            "mb_sent_per_worker": mb_per_worker(self.bytes_sent, len(self.workers)),
            "bytes_sent": self.bytes_sent,
            "messages": self.messages,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
            "records": {
                name: {"mean": float(np.mean(v)), "max": float(np.max(v))}
                for name, v in self._records.items()
            },
            "wall_time_s": wall_time,
            "peak_rss_mb": peak_rss_mb(),
        }

    def close(self, summary: dict | None = None, stopped: str | None = None) -> None:
        """Closes the CSV files and writes summary.json: complete, or, when ``stopped`` says
        why the run ended early, not complete, with the figures it reached (without a summary
        it stays as the start wrote it)."""
        for handle in self._files:
            handle.close()
        if summary is None:
            return
        head = {"run": summary.get("run"), "complete": stopped is None}
        self._write_summary(head | summary | ({"stopped": stopped} if stopped else {}))

    def _write_summary(self, summary: dict) -> None:
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def stopped_by(error: BaseException) -> str:
    """Why a run ended early, in one line for summary.json."""
    if not isinstance(error, Exception):  # Ctrl-C, SIGTERM (netsim/__main__.py), cancelled
        return str(error) or "interrupted"
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _or_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def step_times(step_ends: dict[int, list[float]]) -> np.ndarray:
    """Seconds per batch (Cui's Table I): gaps between a worker's consecutive step ends."""
    gaps = [np.diff(np.asarray([0.0, *ends])) for ends in step_ends.values() if ends]
    return np.concatenate(gaps) if gaps else np.zeros(0)


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
