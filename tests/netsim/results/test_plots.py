import csv
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from netsim.results import aggregate, plots
from netsim.results.plots import plot_experiment, step_times, summary_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = [
    "accuracy_vs_time.png",
    "accuracy_vs_bytes.png",
    "accuracy_vs_steps.png",
    "step_time_hist.png",
    "timeline.png",
]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def write_run(exp, name, roles, steps, messages, evals, summary, **config):
    run = exp / name
    run.mkdir(parents=True)
    workers = roles.count("worker")
    config |= {"run": name, "algorithm": summary["algorithm"], "roles": roles, "workers": workers}
    (run / "config.json").write_text(json.dumps(config))
    write_csv(run / "steps.csv", ["node", "step", "t_start", "t_end", "loss"], steps)
    if messages is not None:
        header = ["src", "dst", "kind", "bytes", "data_bytes", "t_send", "t_arrive", "dropped"]
        write_csv(run / "messages.csv", header, messages)
    if evals is not None:
        header = ["t", "node", "split", "accuracy", "loss", "steps", "bytes"]
        write_csv(run / "evals.csv", header, evals)
    (run / "summary.json").write_text(json.dumps({"run": name, **summary}))
    return run


@pytest.fixture
def experiment(tmp_path):
    """A single-machine run without messages and a 2-worker parameter-server run."""
    exp = tmp_path / "exp"
    write_run(
        exp,
        "single",
        ["worker"],
        steps=[[0, 1, 0.0, 0.5, 2.3], [0, 2, 0.5, 1.0, 2.1], [0, 3, 1.0, 1.5, 1.9]],
        messages=None,
        evals=[
            [0.0, "global", "subset", 0.1, 2.3, 0, 0],
            [1.0, "global", "subset", 0.4, 2.0, 2, 0],
            [1.5, "global", "test", 0.45, 1.9, 3, 0],
        ],
        summary={
            "algorithm": "sgd",
            "workers": 1,
            "final_accuracy": 0.45,
            "sim_time": 1.5,
            "step_time": {"p5": 0.5, "p50": 0.5, "p95": 0.5, "mean": 0.5},
            "bytes_sent": 0,
        },
    )
    # Worker 1's rows come out of step order, as interleaved writes may leave them.
    write_run(
        exp,
        "ps",
        ["worker", "worker", "server"],
        steps=[
            [0, 1, 0.0, 0.5, 2.3],
            [1, 2, 1.2, 2.0, 2.0],
            [1, 1, 0.0, 0.7, 2.3],
            [0, 2, 1.1, 1.6, 2.1],
        ],
        messages=[
            [0, 2, "grad", 4000, 3900, 0.5, 0.9, 0],
            [1, 2, "grad", 4000, 3900, 0.7, 1.0, 1],
            [2, 0, "params", 4000, 3900, 0.9, 1.1, 0],
            [2, 1, "params", 4000, 3900, 1.0, 1.2, 0],
            [1, 2, "grad", 4000, 3900, 1.3, "", 1],  # dropped before an arrival time existed
        ],
        evals=[
            [0.0, "global", "subset", 0.1, 2.3, 0, 0],
            [0.0, 0, "subset", 0.1, 2.3, 0, 0],
            [1.2, "global", "subset", 0.3, 2.1, 1, 12000],
            [2.0, "global", "test", 0.3456, 2.0, 2, 16000],
        ],
        summary={
            "algorithm": "ps-sync",
            "workers": 2,
            "final_accuracy": 0.3456,
            "sim_time": 2.04,
            "step_time": {"p5": 0.5125, "p50": 0.8, "p95": 1.2476, "mean": 0.825},
            "bytes_sent": 16000,
        },
    )
    return exp


def test_step_times_are_gaps_between_step_ends_of_workers_only(experiment):
    np.testing.assert_allclose(step_times(experiment / "single"), [0.5, 0.5, 0.5])
    # Node 2 is the server and has no steps; worker 1 is sorted by step before differencing.
    np.testing.assert_allclose(step_times(experiment / "ps"), [0.5, 1.1, 0.7, 1.3])


def test_step_times_ignore_non_worker_roles(tmp_path):
    write_run(
        tmp_path,
        "r",
        ["server", "worker"],
        steps=[[0, 1, 0.0, 9.0, 1.0], [1, 1, 0.0, 0.25, 1.0], [1, 2, 0.25, 1.0, 1.0]],
        messages=None,
        evals=None,
        summary={"algorithm": "x"},
    )
    np.testing.assert_allclose(step_times(tmp_path / "r"), [0.25, 0.75])
    write_csv(tmp_path / "r" / "steps.csv", ["node", "step", "t_start", "t_end", "loss"], [])
    assert step_times(tmp_path / "r").size == 0


def test_plot_experiment_writes_five_valid_pngs(experiment):
    paths = plot_experiment(experiment, timeline=(0, 2.0))
    assert sorted(p.name for p in paths) == sorted(FIGURES)
    for path in paths:
        assert path.parent == experiment
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, path.name


def test_summary_table_formats_each_run(experiment):
    table = summary_table(experiment)
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two runs sorted by name
    assert lines[2].split("|")[1].strip() == "ps"
    assert [c.strip() for c in lines[2].split("|")[2:-1]] == [
        "ps-sync", "2", "34.56", "2.0", "0.512", "0.800", "1.248", "0.01",
    ]  # fmt: skip
    assert [c.strip() for c in lines[3].split("|")[1:-1]] == [
        "single", "sgd", "1", "45.00", "1.5", "0.500", "0.500", "0.500", "0.00",
    ]  # fmt: skip
    assert len({len(line) for line in lines}) == 1  # fixed width


def test_interrupted_runs_do_not_crash(experiment):
    (experiment / "ps" / "evals.csv").write_text("")
    (experiment / "single" / "evals.csv").unlink()
    (experiment / "single" / "summary.json").unlink()
    with open(experiment / "ps" / "steps.csv", "a") as f:
        f.write("0,3,1.6,2")  # a row cut short by a kill
    bare = experiment / "bare"
    bare.mkdir()
    write_csv(bare / "evals.csv", ["t", "node", "split", "accuracy", "loss", "steps", "bytes"], [])

    paths = plot_experiment(experiment)
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)
    np.testing.assert_allclose(step_times(experiment / "ps"), [0.5, 1.1, 0.7, 1.3])
    table = summary_table(experiment)
    assert "bare" in table and "ps" in table and "single" not in table
    assert "| bare " in table and table.count(" - ") >= 7


def test_no_runs_still_writes_figures(tmp_path):
    assert len(plot_experiment(tmp_path)) == 5
    assert summary_table(tmp_path).count("\n") == 2


@pytest.fixture
def figures(monkeypatch):
    """The figures plot_experiment draws, by file name, kept open to be inspected."""
    drawn = {}
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, tight=True: drawn.setdefault(path.name, fig) and path
    )
    yield drawn
    for fig in drawn.values():
        plt.close(fig)


def test_the_table_and_the_bytes_axis_show_one_measure_the_servers_sends_included(
    tmp_path, figures
):
    # Four workers send 665 kB to the server, which sends as much back: 1.33 MB per worker.
    roles = ["worker"] * 4 + ["server"]
    messages = [[w, 4, "grad", 665_000, 665_000, 0.0, 1.0, 0] for w in range(4)]
    messages += [[4, w, "params", 665_000, 665_000, 1.0, 2.0, 0] for w in range(4)]
    evals = [
        [0.0, "global", "subset", 0.1, 2.3, 0, 0],
        [2.0, "global", "test", 0.5, 1.0, 1, 5_320_000],
    ]
    summary = {"algorithm": "AsyncPS", "workers": 4, "bytes_sent": 5_320_000}
    write_run(tmp_path, "async_ps", roles, [[0, 1, 0.0, 1.0, 2.0]], messages, evals, summary)
    plot_experiment(tmp_path)
    lines = summary_table(tmp_path).splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    assert lines[2].split("|")[header.index("MB sent per worker")].strip() == "1.33"
    ax = figures["accuracy_vs_bytes.png"].axes[0]
    assert ax.get_xlabel().startswith("MB sent per worker")
    assert [line.get_xdata()[-1] for line in ax.lines[:2]] == [0.0, 1.33]  # curve, final star


def test_the_step_time_histogram_has_a_neutral_title(experiment, figures):
    plot_experiment(experiment)
    title = figures["step_time_hist.png"].get_suptitle()
    assert title == "Seconds per step of each worker: computing and waiting for messages"


@pytest.mark.parametrize(
    "timeline, window",
    [(None, (0.0, 10.0)), ((1, 1.5), (1.0, 1.5)), ((0.5, None), (0.5, 2.0 * 1.01))],
)
def test_the_timeline_shows_the_window_asked_for(experiment, figures, timeline, window):
    plot_experiment(experiment, timeline=timeline)
    fig = figures["timeline.png"]
    assert [ax.get_xlim() for ax in fig.axes] == [pytest.approx(window)] * 2  # ps, single
    assert fig.get_suptitle().startswith(f"Timeline from {window[0]:g} s to {window[1]:g} s")


@pytest.mark.parametrize("timeline", [(2, 1), (-1, 5), (0, float("inf")), "0:30", (1,)])
def test_a_bad_timeline_window_is_one_line(experiment, timeline):
    with pytest.raises(ValueError, match=r"^timeline=\(start, end\) takes simulated seconds"):
        plot_experiment(experiment, timeline=timeline)


def test_the_timeline_of_many_nodes_stays_under_1440_pixels(tmp_path, figures):
    roles = ["worker"] * 16
    steps = [[node, 1, 0.0, 1.0, 2.0] for node in range(16)]
    for name in ("a", "b", "c"):
        write_run(tmp_path, name, roles, steps, None, None, {"algorithm": "sgd"})
    plot_experiment(tmp_path)
    assert figures["timeline.png"].get_size_inches()[1] * plots.DPI <= 1440


def test_the_timeline_legend_names_both_compute_greys(experiment, figures):
    plot_experiment(experiment)
    fig = figures["timeline.png"]
    legend = fig.legends[0]
    handles = zip(legend.texts, legend.legend_handles, strict=True)
    shades = {text.get_text(): tuple(handle.get_facecolor()) for text, handle in handles}
    odd, even = shades["compute, odd steps"], shades["compute, even steps"]
    drawn = {tuple(c) for ax in fig.axes for bars in ax.collections for c in bars.get_facecolors()}
    assert odd != even and {odd, even} <= drawn


def test_the_steps_axis_says_federated_runs_count_rounds_times_local_steps(tmp_path, figures):
    evals = [[0.0, "global", "subset", 0.1, 2.3, 0, 0], [1.0, "global", "test", 0.5, 1.0, 6, 0]]
    summary = {"algorithm": "FedAvg"}
    write_run(tmp_path, "fedavg", ["worker", "server"], [], None, evals, summary, round_size=1)
    plot_experiment(tmp_path)
    fig = figures.pop("accuracy_vs_steps.png")
    xlabel = fig.axes[0].get_xlabel()
    plt.close(fig)
    assert xlabel == "Server rounds x local steps (all clients' steps / clients per round)"
    write_run(tmp_path, "gossip", ["worker"], [], None, evals, {"algorithm": "GoSGD"})
    plot_experiment(tmp_path)
    ax = figures["accuracy_vs_steps.png"].axes[0]
    assert ax.get_xlabel() == "Steps every worker reached; federated runs: rounds x local steps"
    legend = [text.get_text() for text in ax.get_legend().texts]
    assert legend[:2] == ["fedavg (rounds x local steps)", "gossip"]


def write_seeds(exp, name, finals):
    """A 2-worker run with one seed=<s>/ folder per final accuracy; seed s's curve is
    10 s points at accuracy final - 0.1 then final."""
    for seed, final in enumerate(finals):
        write_run(
            exp / name,
            f"seed={seed}",
            ["worker", "worker"],
            steps=[[0, 1, 0.0, 0.5, 2.3], [1, 1, 0.0, 0.5 + seed / 10, 2.3]],
            messages=None,
            evals=[
                [0.0, "global", "subset", final - 0.1, 2.3, 0, 0],
                [10.0, "global", "subset", final, 2.0, 1, 1000],
                [10.0, "global", "test", final, 2.0, 1, 1000],
            ],
            summary={
                "algorithm": "GoSGD",
                "workers": 2,
                "final_accuracy": final,
                "sim_time": 10.0 + seed,
                "step_time": {"p5": 0.5, "p50": 0.5, "p95": 0.5 + seed / 10},
                "bytes_sent": 1000,
            },
        )


def test_the_table_shows_mean_and_95_percent_interval_over_seeds(tmp_path):
    write_seeds(tmp_path, "gossip", [0.5, 0.6, 0.7])
    write_seeds(tmp_path, "alone", [0.45])  # one seed=0/ folder: a mean of one, no interval
    lines = summary_table(tmp_path).splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines]
    assert cells[0][:5] == ["run", "algorithm", "workers", "seeds", "final acc (%)"]
    half = aggregate.t_quantile(2) * 0.1 / np.sqrt(3) * 100
    assert cells[3][:6] == ["gossip", "GoSGD", "2", "3", f"60.00 ± {half:.2f}", "11.0 ± 2.5"]
    assert cells[2][:5] == ["alone", "GoSGD", "2", "1", "45.00"]
    assert plots.SEEDS_NOTE in lines[-1]
    assert len({len(line) for line in lines[:4]}) == 1  # still fixed width


def test_seeds_picks_which_seed_folders_are_read(tmp_path):
    write_seeds(tmp_path, "gossip", [0.5, 0.6, 0.7])
    row = summary_table(tmp_path, seeds={"gossip": [0, 2]}).splitlines()[2]
    half = aggregate.t_quantile(1) * np.sqrt(0.02) / np.sqrt(2) * 100
    assert [c.strip() for c in row.split("|")[4:6]] == ["2", f"60.00 ± {half:.2f}"]
    # a later run with one seed writes into the run's own folder
    (tmp_path / "gossip" / "summary.json").write_text(json.dumps({"final_accuracy": 0.9}))
    row = summary_table(tmp_path, ["gossip"], seeds={"gossip": None}).splitlines()[2]
    assert "90.00" in row and "seeds" not in summary_table(tmp_path, seeds={"gossip": None})


def test_seeded_runs_are_drawn_as_a_mean_curve_in_a_shaded_band(tmp_path, figures):
    write_seeds(tmp_path, "gossip", [0.5, 0.6, 0.7])
    write_seeds(tmp_path, "other", [0.3])
    plot_experiment(tmp_path)
    ax = figures["accuracy_vs_time.png"].axes[0]
    mean = next(line for line in ax.lines if line.get_label() == "gossip (3 seeds)")
    np.testing.assert_allclose(mean.get_ydata(), [50.0, 60.0])
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_paths()]
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    half = aggregate.t_quantile(2) * 10 / np.sqrt(3)
    assert (low, high) == (pytest.approx(50 - half), pytest.approx(60 + half))
    legend = [t.get_text() for t in ax.get_legend().texts]
    assert "other" in legend and "95% interval over seeds" in legend
    hist = figures["step_time_hist.png"].axes[0]
    assert hist.get_title(loc="left") == "gossip  (6 steps, 3 seeds)"  # every seed's steps


def test_seeds_that_did_not_finish_are_left_out_of_the_means(tmp_path):
    write_seeds(tmp_path, "gossip", [0.5, 0.6, 0.1])
    cut = tmp_path / "gossip" / "seed=2" / "summary.json"
    cut.write_text(json.dumps(json.loads(cut.read_text()) | {"complete": False}))
    row = [c.strip() for c in summary_table(tmp_path).splitlines()[2].split("|")[1:-1]]
    half = aggregate.t_quantile(1) * np.sqrt(0.005) / np.sqrt(2) * 100
    assert row[:5] == ["gossip (incomplete)", "GoSGD", "2", "2", f"55.00 ± {half:.2f}"]


def test_a_wide_interval_is_drawn_within_0_and_100_percent(tmp_path, figures):
    write_seeds(tmp_path, "noniid", [0.15, 0.95, 0.2])
    plot_experiment(tmp_path)
    ax = figures["accuracy_vs_time.png"].axes[0]
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_paths()]
    heights = band.get_paths()[0].vertices[:, 1]
    assert heights.min() == 0.0 and heights.max() == 100.0  # the interval itself spans more
    (bars,) = ax.containers
    assert bars.lines[2][0].get_segments()[0][:, 1].tolist() == [0.0, 100.0]
