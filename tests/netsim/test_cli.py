"""The command line: bad input exits non-zero with one clear line and no traceback."""

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netsim import interrupts
from netsim.__main__ import Terminated, _sigterm_interrupts
from netsim.engine.execution import Steps
from netsim.results.recorder import Recorder
from netsim.runner import run as run_experiment
from tests.netsim.test_executor import tiny

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = """
import networkx as nx
from netsim import Experiment, Network, Run
from netsim.algorithms import SGD, P2PPull
experiment = Experiment("cli", data="{data}", steps=2, batch=8, eval_subset=50,
    network=Network(bandwidth="{bandwidth}"), topology={topology},
    runs=[Run("one", SGD(), workers=1), Run("p2p", P2PPull())])
"""


def netsim(
    tmp_path, *args, data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"', env=None
):
    spec = tmp_path / "exp.py"
    spec.write_text(EXPERIMENT.format(data=data, bandwidth=bandwidth, topology=topology))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "netsim",
            str(spec),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def error_line(capsys, tmp_path, *args, **fields) -> str:
    """The CLI's main() in this process on a bad input (a process of its own pays 4 s of
    imports; test_a_bad_key_in_a_process_of_its_own_is_one_line checks that one): exit status
    2, one line on stderr, no traceback, nothing written. Returns the line."""
    from netsim.__main__ import main

    spec = tmp_path / "exp.py"
    values = {"data": "synthetic_fmnist", "bandwidth": "1Gbit/s", "topology": '"ring"'}
    spec.write_text(EXPERIMENT.format(**(values | fields)))
    code = main([str(spec), "--out", str(tmp_path / "out"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsim: error: "), err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    return lines[0]


def test_a_bad_key_in_a_process_of_its_own_is_one_line(tmp_path):
    result = netsim(tmp_path, "--set", "stepz=3")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("netsim: error: ") and "unknown --set key 'stepz'" in lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "fields, args, message",
    [
        ({}, ["--set", "stepz=3"], "unknown --set key 'stepz'"),
        ({"bandwidth": "-5Mbit/s"}, [], "bandwidth"),
        ({"topology": "nx.Graph([(0, 1), (2, 3)])"}, [], "components"),
        ({"data": "fashion_mnist"}, [], "apt-get install dataset-fashion-mnist"),
        ({}, ["--set", "model=resnet"], "unknown model 'resnet'"),
        ({}, ["--timeline", "5:2"], "--timeline takes START:END in simulated seconds"),
    ],
    ids=[
        "unknown-key",
        "negative-bandwidth",
        "disconnected",
        "missing-data",
        "bad-model",
        "timeline",
    ],
)
def test_bad_input_is_one_line_without_traceback(
    tmp_path, capsys, monkeypatch, fields, args, message
):
    monkeypatch.setenv("NETSIM_DATA", str(tmp_path / "nowhere"))
    assert message in error_line(capsys, tmp_path, *args, **fields)


def test_missing_experiment_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "netsim", str(tmp_path / "none.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "no experiment file" in result.stderr


def test_a_good_run_prints_the_summary_table_and_writes_results(tmp_path):
    result = netsim(tmp_path, "--set", "workers=3")
    assert result.returncode == 0, result.stderr
    assert "one" in result.stdout and "p2p" in result.stdout
    out = tmp_path / "out" / "cli"
    for name in ("accuracy_vs_time.png", "step_time_hist.png", "timeline.png", "summary.md"):
        assert (out / name).is_file(), name
    for run in ("one", "p2p"):
        for name in ("config.json", "steps.csv", "messages.csv", "evals.csv", "summary.json"):
            assert (out / run / name).is_file(), (run, name)


def in_process(tmp_path, *args):
    """The CLI's main() in this process, so that a test can watch what it draws or prints."""
    from netsim.__main__ import main

    spec = tmp_path / "exp.py"
    spec.write_text(
        EXPERIMENT.format(data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"')
    )
    return main([str(spec), "--out", str(tmp_path / "out"), "--only", "one", *args])


def test_timeline_picks_the_window_that_timeline_png_shows(tmp_path, monkeypatch):
    from netsim.results import plots

    drawn = {}
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, tight=True: drawn.setdefault(path.name, fig) and path
    )
    assert in_process(tmp_path, "--no-progress", "--timeline", "0.5:") == 0
    start, end = drawn["timeline.png"].axes[0].get_xlim()
    assert start == 0.5 and end > start


@pytest.mark.parametrize("steps, warned", [(20, True), (50, False)])
def test_few_evaluations_are_one_warning_line_before_runs_start(tmp_path, capsys, steps, warned):
    assert in_process(tmp_path, "--set", f"steps={steps}", "--set", "eval_every=10") == 0
    lines = capsys.readouterr().err.splitlines()
    warning = (
        "netsim: warning: run 'one' takes 20 steps and evaluates every 10 steps: 3 points per "
        "curve; for more, --set eval_every=2"
    )
    assert [line for line in lines if "warning" in line] == ([warning] if warned else [])
    if warned:  # before the line that reports the run's end
        assert lines.index(warning) < next(i for i, x in enumerate(lines) if x.startswith("one: "))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "two"], "--seeds takes a count K or seeds S,S,..., got 'two'"),
        (["--seeds", "0"], "--seeds K needs K >= 1, got 0"),
        (["--sweep", "lr"], "--sweep takes KEY=V1,V2,..., got 'lr'"),
        (["--sweep", "algorithm.q=1,2"], "no run's algorithm has a field 'q'"),
        (["--seeds", "2", "--runtime", "real"], "--seeds, --sweep, --jobs and --ray are for"),
        (["--seeds", "2", "--jobs", "2", "--ray"], "--jobs sizes the local pool"),
        (["--jobs", "0"], "jobs is the number of runs at a time, >= 1, got 0"),
    ],
    ids=["seeds-text", "seeds-zero", "sweep-no-values", "sweep-no-run", "real", "jobs-ray", "jobs"],
)
def test_bad_sweeps_are_one_line_before_any_run(tmp_path, capsys, args, message):
    assert message in error_line(capsys, tmp_path, *args)


def test_ray_missing_is_one_line(tmp_path):
    import os

    fake = tmp_path / "no_ray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = os.environ | {"PYTHONPATH": str(fake)}
    result = netsim(tmp_path, "--seeds", "2", "--ray", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "netsim: error: --ray needs Ray: pip install -e '.[ray]' (or pip install ray)"
    )
    assert not (tmp_path / "out").exists()


def test_sigterm_stops_like_ctrl_c_with_rows_flushed_and_the_summary_not_complete(tmp_path):
    import json
    import signal
    import time

    spec = tmp_path / "exp.py"
    spec.write_text(
        EXPERIMENT.format(data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"')
    )
    command = [sys.executable, "-m", "netsim", str(spec), "--out", str(tmp_path / "out")]
    command += ["--no-progress", "--only", "one", "--set", "steps=1_000_000_000"]
    command += ["--set", "eval_every=1_000_000_000", "--set", "model=logistic"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "out" / "cli" / "one"
    while process.poll() is None and len(read_lines(run / "evals.csv")) < 2:  # running
        time.sleep(0.1)
    time.sleep(1.0)  # some steps, not flushed: the next flush is at the end
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1].startswith("netsim: terminated (SIGTERM); results")
    assert "Traceback" not in stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False and summary["stopped"] == "terminated (SIGTERM)"
    assert len(read_lines(run / "steps.csv")) == 1 + summary["steps_per_worker"]


@pytest.mark.parametrize("first", ["SIGINT", "error"])
def test_a_sigterm_while_a_stopped_run_writes_its_summary_waits_until_it_is_written(
    tmp_path, monkeypatch, first
):
    """Ctrl-C (or a failure) stops a run, and SIGTERM lands while the run writes what it
    reached: the summary still says why the run stopped. The run then ends with the Ctrl-C,
    as it would have without the SIGTERM (exit status 130), or, after a failure, with the
    SIGTERM."""
    monkeypatch.setattr(interrupts, "_pending", None)
    evaluation, summary = Recorder.evaluation, Recorder.summary
    calls = []

    def stopped(self, *args):  # once the run has made steps
        calls.append(1)
        if len(calls) == 2:
            if first == "error":
                raise RuntimeError("boom")
            signal.raise_signal(signal.SIGINT)
        return evaluation(self, *args)

    def terminated(self, *args):  # while the run writes its summary
        signal.raise_signal(signal.SIGTERM)
        return summary(self, *args)

    monkeypatch.setattr(Recorder, "evaluation", stopped)
    monkeypatch.setattr(Recorder, "summary", terminated)
    expected = KeyboardInterrupt if first == "SIGINT" else Terminated
    with _sigterm_interrupts(), pytest.raises(expected) as raised:
        run_experiment(tiny(), tmp_path, progress=False, plot=False)
    assert type(raised.value) is expected
    saved = json.loads((tmp_path / "tiny" / "one" / "summary.json").read_text())
    assert saved["complete"] is False and saved["steps_per_worker"] > 0
    assert saved["stopped"] == ("interrupted" if first == "SIGINT" else "RuntimeError: boom")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize(
    "source, message",
    [
        ("from netsim import Experiment\nexperiment = Experiment(\n", "exp.py:2: syntax error: "),
        ("import netsim\nexperiment = netsim.Experimnt('x', [])\n", "exp.py:2: AttributeError: "),
        (EXPERIMENT.format(data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"'), None),
    ],
    ids=["syntax", "name", "unwritable-out"],
)
def test_a_broken_file_or_an_unwritable_out_is_one_line_before_any_run(
    tmp_path, capsys, source, message
):
    from netsim.__main__ import main

    spec = tmp_path / "exp.py"
    spec.write_text(source)
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "results"
    assert main([str(spec), "--out", str(out), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsim: error: ")
    if message is None:
        assert f"cannot write results under '{out}/cli' (Not a directory)" in lines[0]
    else:
        assert lines[0].startswith(f"netsim: error: {spec.parent}/{message}")


def wait_for_handlers(process, *signums, within: float = 30.0) -> None:
    """Until process catches every one of signums (its SigCgt mask in /proc), or has ended.

    A signal sent before that lands in the interpreter's own start-up (about 50 ms in a venv
    whose editable install loads pathlib), where no program can answer it."""
    import time

    wanted = sum(1 << (signum - 1) for signum in signums)
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            status = Path(f"/proc/{process.pid}/status").read_text()
            caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:"))
                         .split()[1], 16)  # fmt: skip
            if caught & wanted == wanted:
                return
        time.sleep(0.002)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after", [0.0, 0.3, 0.7, 1.5])
def test_a_signal_at_any_moment_of_start_up_is_one_line_never_a_traceback(tmp_path, signum, after):
    """Whenever it lands once netsim runs (while torch loads, the file is read, or the first run
    has begun), the command ends with one line about it and its exit status, and nothing
    half-written. `after` counts from the moment netsim's handlers are in place."""
    import json
    import signal
    import time

    spec = tmp_path / "exp.py"
    spec.write_text(
        EXPERIMENT.format(data="synthetic_fmnist", bandwidth="1Gbit/s", topology='"ring"')
    )
    command = [sys.executable, "-m", "netsim", str(spec), "--out", str(tmp_path / "out")]
    command += ["--no-progress", "--set", "steps=1_000_000", "--set", "eval_every=1_000_000"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_handlers(process, signal.SIGINT, signal.SIGTERM)
        time.sleep(after)
        process.send_signal(getattr(signal, signum))
        stderr = process.communicate(timeout=120)[1]
    finally:  # a signal that went unheard must not leave a run going on for ever
        process.kill()
    assert process.returncode == (130 if signum == "SIGINT" else 143)
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    word = "interrupted" if signum == "SIGINT" else "terminated (SIGTERM)"
    assert last.startswith(f"netsim: {word}")
    if after == 0.0:  # the handlers are in place before torch loads
        assert last == f"netsim: {word} while starting; nothing was run"
    for summary in (tmp_path / "out").glob("cli/*/summary.json"):  # a run had started
        assert json.loads(summary.read_text())["complete"] is False


@pytest.mark.parametrize("execution", ["loop", "stacked"])
def test_ctrl_c_while_steps_are_computed_stops_the_run_not_fails_it(
    tmp_path, monkeypatch, execution
):
    """Ctrl-C lands while the engine computes several nodes' pending steps: it waits until
    they are computed, so that no node reads a step without its loss (a TypeError and exit
    status 1, before), and the run stops as interrupted."""
    kernels, computed = {}, []

    def interrupted(kernel):
        def compute(self, tickets, *args):
            computed.append(len(tickets))
            if computed.count(3) == 2:  # the second time all three nodes' steps are pending
                signal.raise_signal(signal.SIGINT)
            return kernels[kernel](self, tickets, *args)

        return compute

    for kernel in ("_loop", "_batched"):
        kernels[kernel] = getattr(Steps, kernel)
        monkeypatch.setattr(Steps, kernel, interrupted(kernel))
    monkeypatch.setattr(interrupts, "_pending", None)
    experiment = tiny(execution=execution, steps=100)
    experiment.select(["gossip"])
    with _sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, tmp_path, progress=False, plot=False)
    assert computed.count(3) == 2
    saved = json.loads((tmp_path / "tiny" / "gossip" / "summary.json").read_text())
    assert saved["complete"] is False and saved["stopped"] == "interrupted"
