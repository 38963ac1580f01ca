"""Offline intervals (faults) read back from records.csv and shaded in the figures."""

from matplotlib.colors import to_rgba

from netsim import Compute
from netsim.algorithms import SGD
from netsim.faults import Crash
from netsim.results import read, timeline
from tests.conftest import make_simulation


def test_a_crash_is_read_back_and_shaded_on_its_node_row(tmp_path):
    faults = [Crash(1, at=2, restart=3), Crash(0, at=6)]
    settings = {"model": "logistic", "workers": 2, "steps": 20, "eval_every": "5s"}
    make_simulation(
        SGD(), tmp_path / "e" / "r", compute=Compute(step_time="0.5s"), faults=faults, **settings
    ).run()
    (run,) = read.load(tmp_path / "e", ["r"])
    assert run.offline == {1: [(2.0, 5.0)], 0: [(6.0, None)]}
    fig = timeline.figure([run], (0, 10))
    shaded = [
        p.get_bbox().bounds
        for p in fig.axes[0].patches
        if p.get_facecolor() == to_rgba(timeline.OFFLINE_COLOR)
    ]
    # (x0, y0, width, height) in the row's axes coordinates: x as a fraction of the window,
    # y in data units around the node's row
    assert sorted((round(x, 9), round(w, 9)) for x, _, w, _ in shaded) == [(0.2, 0.3), (0.6, 0.4)]
