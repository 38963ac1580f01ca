"""The timeline figure: a Gantt chart of every node's compute and transfers over a window of
simulated time, one panel per run (plots.py saves it as timeline.png)."""

import math
from collections import Counter

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from netsim.results.read import Run

DEFAULT = (0.0, 10.0)  # the first 10 simulated seconds
MAX_HEIGHT = 12.0  # inches (1,440 px): more nodes share it in thinner rows
ROW_HEIGHT = 0.32  # inches per node, until MAX_HEIGHT
COMPUTE_SHADES = ("0.5", "0.7")  # odd and even steps
DROPPED_COLOR = "tab:red"
OFFLINE_COLOR = "mistyrose"  # a node's row while it is offline (faults)
# Message kinds avoid the compute grey and the dropped red, so every bar reads one way.
KIND_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:cyan", "tab:olive"]


def check(timeline) -> tuple[float, float | None]:
    """timeline=(start, end) in simulated seconds, end None for the end of the runs (None for
    DEFAULT); one line of ValueError for anything else."""
    if timeline is None:
        return DEFAULT
    try:
        start, end = timeline
        start, end = float(start), None if end is None else float(end)
    except (TypeError, ValueError):
        start, end = math.nan, None
    if not (0 <= start < math.inf and (end is None or start < end < math.inf)):
        raise ValueError(
            f"timeline=(start, end) takes simulated seconds with 0 <= start < end (end None: "
            f"to the end of the runs), e.g. (0, 30) or (100, None); got {timeline!r}"
        )
    return start, end


def node_labels(roles: list[str]) -> list[str]:
    """Workers are w0, w1, ...; other roles go by name, numbered only if they repeat."""
    total, seen, labels = Counter(roles), Counter(), []
    for role in roles:
        if role == "worker":
            labels.append(f"w{seen[role]}")
        else:
            labels.append(f"{role}{seen[role]}" if total[role] > 1 else role)
        seen[role] += 1
    return labels


def _last_time(runs: list[Run]) -> float:
    ends = [np.nanmax(run.steps["t_end"]) for run in runs if run.steps]
    ends += [np.nanmax(run.messages["t_send"]) for run in runs if run.messages]
    return max(ends, default=0.0)


def figure(runs: list[Run], timeline=None):
    """Per node a compute bar, its uploads just above it and its downloads just below."""
    start, end = check(timeline)
    if end is None:
        end = max(_last_time(runs), start) * 1.01 or start + 1.0
    window = (start, end)
    kinds = sorted({k for run in runs for k in run.messages.get("kind", [])})
    kind_color = {k: KIND_COLORS[i % len(KIND_COLORS)] for i, k in enumerate(kinds)}
    shown = [run for run in runs if run.roles]
    nodes = sum(len(run.roles) for run in shown)
    # Past MAX_HEIGHT the rows get thinner instead of the figure taller.
    row = min(ROW_HEIGHT, (MAX_HEIGHT - 1.3 - 0.9 * len(shown)) / max(nodes, 1))
    row = max(row, 0.05)
    heights = [0.9 + row * len(run.roles) for run in shown] or [1.5]
    fig = Figure(figsize=(10, min(1.3 + sum(heights), MAX_HEIGHT)), layout="constrained")
    axes = fig.subplots(len(heights), 1, squeeze=False, height_ratios=heights)
    axes = axes[:, 0]
    fig.suptitle(
        f"Timeline from {start:g} s to {end:g} s of simulated time\n"
        "compute per node; uploads drawn above its row, downloads below"
    )
    if not shown:
        axes[0].text(
            0.5, 0.5, "no nodes yet", ha="center", va="center", transform=axes[0].transAxes
        )
    for ax, run in zip(axes[: len(shown)], shown, strict=True):
        labels = node_labels(run.roles)
        for node, spans in (run.offline or {}).items():
            for a, b in spans:
                b = end if b is None else min(b, end)
                if b > start and a < end:
                    ax.axhspan(node - 0.5, node + 0.5, *_fraction(a, b, window), fc=OFFLINE_COLOR)
        if run.steps:
            s = run.steps
            for i in range(len(labels)):
                mine = (s["node"] == i) & (s["t_start"] < end) & (s["t_end"] > start)
                spans = _spans(s["t_start"][mine], s["t_end"][mine])
                # Alternating shades keep back-to-back steps apart at any zoom.
                shade = np.where(s["step"][mine] % 2 == 1, *COMPUTE_SHADES)
                ax.broken_barh(spans, (i - 0.15, 0.3), facecolors=list(shade))
        if run.messages:
            _draw_transfers(ax, run.messages, window, kind_color)
        # Thin rows get every k-th label only, so that labels never overlap.
        every = int(np.ceil(0.12 / row))
        ticks = range(0, len(labels), every)
        ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=8 if len(labels) > 12 else 10)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlim(start, end)
        ax.set_title(run.name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("Simulated time (s)")
    handles = [
        Patch(color=COMPUTE_SHADES[0], label="compute, odd steps"),
        Patch(color=COMPUTE_SHADES[1], label="compute, even steps"),
    ]
    handles += [Patch(color=c, alpha=0.6, label=k) for k, c in kind_color.items()]
    if any(run.offline for run in runs):
        handles.append(Patch(color=OFFLINE_COLOR, label="offline"))
    if any(np.any(run.messages.get("dropped", np.empty(0)) == 1) for run in runs):
        handles.append(Patch(fc="white", ec=DROPPED_COLOR, hatch="////", label="dropped"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6))
    return fig


def shade_offline(ax, run: Run) -> None:
    """Each offline interval of the run's nodes as a faint band of the run's colour across
    the axes (an accuracy curve against simulated time): darker where more nodes are down."""
    last, alpha = _last_time([run]), 0.15 / max(len(run.roles), 1)  # all down: about 0.14
    for spans in (run.offline or {}).values():
        for a, b in spans:
            ax.axvspan(a, last if b is None else b, color=run.color or "0.5", alpha=alpha, lw=0)


def _fraction(a: float, b: float, window: tuple[float, float]) -> tuple[float, float]:
    """[a, b] as fractions of the window's width (axhspan's xmin and xmax)."""
    start, end = window
    return max(a - start, 0.0) / (end - start), (min(b, end) - start) / (end - start)


def _spans(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return np.column_stack([start, end - start])


def _draw_transfers(ax, m: dict, window: tuple[float, float], kind_color: dict) -> None:
    """Uploads in a strip above the sender's compute bar, downloads below the receiver's."""
    start, end = window
    # A dropped message may have no arrival time; show it as a blip at its send time.
    arrive = np.where(np.isnan(m["t_arrive"]), m["t_send"] + (end - start) / 200, m["t_arrive"])
    seen = (m["t_send"] < end) & (arrive > start)
    for kind, color in kind_color.items():
        of_kind = seen & (m["kind"] == kind)
        delivered, dropped = of_kind & (m["dropped"] == 0), of_kind & (m["dropped"] == 1)
        # A dropped message never reaches the receiver's downlink.
        for sel, col, y, style in (
            (delivered, "src", -0.36, {"fc": color, "alpha": 0.6}),
            (delivered, "dst", 0.18, {"fc": color, "alpha": 0.6}),
            (dropped, "src", -0.36, {"fc": "none", "ec": DROPPED_COLOR, "hatch": "////"}),
        ):
            for node in np.unique(m[col][sel]):
                row = sel & (m[col] == node)
                ax.broken_barh(_spans(m["t_send"][row], arrive[row]), (node + y, 0.18), **style)
