"""The final score against a swept setting, from hand-made sweep.json and summaries."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from netsim.results import aggregate, sweep_plot


def write_point(exp, name, run, values, finals):
    """A sweep point: one summary.json per seed (its own folder for a single one)."""
    folders = (
        [exp / name] if len(finals) == 1 else [exp / name / f"seed={s}" for s in range(len(finals))]
    )
    for folder, final in zip(folders, finals, strict=True):
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"final_accuracy": final}))
    return name, {"run": run, "values": values}


@pytest.fixture
def figures(monkeypatch):
    drawn = {}
    monkeypatch.setattr(
        plt.Figure, "savefig", lambda fig, path, **_: drawn.setdefault(path.name, fig)
    )
    yield drawn
    plt.close("all")


def test_one_line_per_run_a_point_per_value_at_the_mean_over_seeds(tmp_path, figures):
    points = dict(
        [
            write_point(tmp_path, "gossip,p=0.1", "gossip", {"p": 0.1}, [0.5, 0.6, 0.7]),
            write_point(tmp_path, "gossip,p=0.9", "gossip", {"p": 0.9}, [0.8, 0.8, 0.8]),
            write_point(tmp_path, "sgd", "sgd", {}, [0.9]),  # not reached by the key
        ]
    )
    manifest = {"keys": ["p"], "values": {"p": [0.1, 0.9]}, "runs": points}
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    path = sweep_plot.plot(tmp_path)
    assert path == tmp_path / "final_vs_p.png"
    ax = figures[path.name].axes[0]
    (bars,) = ax.containers  # one errorbar line
    line = bars.lines[0]
    assert bars.get_label() == "gossip"
    np.testing.assert_allclose(line.get_xdata(), [0.1, 0.9])
    np.testing.assert_allclose(line.get_ydata(), [60.0, 80.0])
    half = aggregate.t_quantile(2) * 10 / np.sqrt(3)
    segments = bars.lines[2][0].get_segments()  # the error bars
    np.testing.assert_allclose([s[:, 1] for s in segments], [[60 - half, 60 + half], [80, 80]])
    assert ax.get_title() == "Final accuracy vs p, mean ± 95% interval over seeds"


def test_text_values_are_spaced_evenly_and_other_keys_make_lines(tmp_path, figures):
    points = dict(
        write_point(tmp_path, f"r,bw={bw},n={n}", "r", {"bw": bw, "n": n}, [acc])
        for bw, n, acc in (("1Gbit/s", 2, 0.5), ("10Mbit/s", 2, 0.4), ("1Gbit/s", 4, 0.6))
    )
    values = {"bw": ["1Gbit/s", "10Mbit/s"], "n": [2, 4]}
    (tmp_path / "sweep.json").write_text(
        json.dumps({"keys": ["bw", "n"], "values": values, "runs": points})
    )
    assert sweep_plot.plot(tmp_path) is None  # two keys: say which
    ax = figures[sweep_plot.plot(tmp_path, "bw").name].axes[0]
    lines = {
        bars.get_label(): (list(bars.lines[0].get_xdata()), list(bars.lines[0].get_ydata()))
        for bars in ax.containers
    }
    assert lines == {"r,n=2": ([0, 1], [50.0, 40.0]), "r,n=4": ([0], [60.0])}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1Gbit/s", "10Mbit/s"]


def test_no_sweep_json_draws_nothing(tmp_path):
    assert sweep_plot.plot(tmp_path) is None
