"""netsim.run: runs left from earlier settings are marked in the table and the figures."""

import gc
import json
import weakref
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pytest

import netsim
from netsim import Experiment, Run
from netsim.algorithms import SGD
from netsim.results import plots

TINY = {"data": "synthetic_fmnist", "model": "logistic", "batch": 8, "eval_subset": 50}
TINY |= {"execution": "loop", "device": "cpu", "steps": 2, "eval_every": 1}


@pytest.fixture
def figures(monkeypatch):
    """The figures netsim.run drew last, by file name, kept open to be inspected."""
    drawn = {}
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, tight=True: drawn.update({path.name: fig}) or path
    )
    yield drawn
    plt.close("all")


def rerun_one(out, *assignments):
    """Runs both runs, then only "one" after the --set assignments; returns the table."""
    runs = [Run("one", SGD(), workers=1), Run("two", SGD(), workers=2)]
    netsim.run(Experiment("marks", runs=runs, **TINY), out, progress=False)
    experiment = Experiment("marks", runs=runs, **TINY)
    experiment.override(list(assignments))
    experiment.select(["one"])
    netsim.run(experiment, out, progress=False)
    return (out / "marks" / "summary.md").read_text()


def test_runs_made_with_other_settings_are_marked_with_the_settings_that_differ(tmp_path, figures):
    table = rerun_one(tmp_path, "lr=0.1", "two.batch=4", "one.eval_subset=40")
    note = (
        "Runs marked * were made with other settings than the experiment has now: two (batch, lr)"
    )
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:4]]
    assert names == ["one", "two*"] and table.rstrip().endswith(note)
    legend = [t.get_text() for t in figures["accuracy_vs_time.png"].axes[0].get_legend().texts]
    assert legend[:2] == ["one", "two*"] and legend[-1] == note.replace(": ", ":\n", 1)


def test_runs_made_with_the_same_settings_are_not_marked(tmp_path, figures):
    table = rerun_one(tmp_path)
    assert "*" not in table.split("\n\n")[0] and "Runs marked" not in table


@dataclass(frozen=True)
class FailsAt:
    """SGD that fails at worker 0's step `at`."""

    at: int

    async def worker(self, node):
        while not node.done:
            await node.train()
            if node.id == 0 and node.steps == self.at:
                raise RuntimeError("boom")


def test_a_failed_rerun_into_the_same_folder_leaves_a_summary_marked_incomplete(tmp_path):
    settings = TINY | {"steps": 5, "eval_every": 10, "workers": 1}
    netsim.run(Experiment("rerun", runs=[Run("r", SGD())], **settings), tmp_path, progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        netsim.run(Experiment("rerun", runs=[Run("r", FailsAt(2))], **settings), tmp_path)
    summary = json.loads((tmp_path / "rerun" / "r" / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped"] == "RuntimeError: boom"
    assert summary["algorithm"] == "FailsAt" and summary["steps_per_worker"] == 2
    table = plots.summary_table(tmp_path / "rerun")
    assert "| r (incomplete) | FailsAt" in table and plots.INCOMPLETE_NOTE in table


def test_each_finished_simulation_is_freed_before_the_next_run_starts(tmp_path, monkeypatch):
    # a run's objects refer to each other, so only the cycle collector frees its models; with
    # the collector left to its own schedule (off here), run() itself must free them
    from netsim.sim import Simulation

    finished, original = [], Simulation.run

    def spy(self):
        summary = original(self)
        finished.append(weakref.ref(self))
        return summary

    monkeypatch.setattr(Simulation, "run", spy)
    runs = [Run("one", SGD(), workers=1), Run("two", SGD(), workers=2)]
    gc.disable()
    try:
        netsim.run(Experiment("freed", runs=runs, **TINY), tmp_path, progress=False, plot=False)
        assert len(finished) == 2 and [ref() for ref in finished] == [None, None]
    finally:
        gc.enable()
