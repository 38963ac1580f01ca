"""Faults as text: ``--set faults=...`` (and ``--sweep faults=...``), parsed with ast into the
fault classes, never evaluated; anything else is one line before any run starts."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from netsim import Experiment, Run
from netsim.algorithms import SGD, GoSGD
from netsim.experiment import ConfigError
from netsim.faults import Churn, Crash, LinkDown, LossBurst, Partition, Slow
from netsim.grid import expand, parse_grid
from netsim.network.fault_text import parse_faults
from netsim.network.faults import FaultError

ROOT = Path(__file__).resolve().parents[2]
USE = "use Crash, LinkDown, Partition, Slow, LossBurst or Churn"


@pytest.mark.parametrize(
    "text, faults",
    [
        ('Crash(1, at="2s")', [Crash(1, at="2s")]),
        (
            "Crash(1, at='2s', restart='3s', state='reset')",
            [Crash(1, at="2s", restart="3s", state="reset")],
        ),
        ("LinkDown(0, 1, at=2, until=4.5)", [LinkDown(0, 1, at=2, until=4.5)]),
        (
            "Partition([[0, 1], (2, 3)], at='1s', until='2s')",
            [Partition([[0, 1], (2, 3)], at="1s", until="2s")],
        ),
        ("Slow(2, 3.0, at=0, until='30s')", [Slow(2, 3.0, at=0, until="30s")]),
        ("LossBurst(0.5, at='2s', until='6s')", [LossBurst(0.5, at="2s", until="6s")]),
        ('Churn(fraction=0.2, session="2s")', [Churn(fraction=0.2, session="2s")]),
        ('Churn(trace="availability.csv")', [Churn(trace="availability.csv")]),
        (
            '[Crash(1, at="2s", restart="3s", state="reset"), LossBurst(0.5, at="2s", until="6s")]',
            [Crash(1, at="2s", restart="3s", state="reset"), LossBurst(0.5, at="2s", until="6s")],
        ),
        ("Crash(1, at=1), Crash(2, at=-1)", [Crash(1, at=1), Crash(2, at=-1)]),
        ("[]", []),
        ("()", []),
        ("none", []),
        ("None", []),
        (" NONE ", []),
    ],
)
def test_text_gives_the_faults(text, faults):
    assert parse_faults(text) == faults


@pytest.mark.parametrize(
    "text, message",
    [
        ("[Crsh(1, at='2s')]", f"faults: unknown fault 'Crsh'; {USE}"),
        ("print('hi')", f"faults: unknown fault 'print'; {USE}"),
        ("__import__('os')", f"faults: unknown fault '__import__'; {USE}"),
        ("__import__('os').system('true')", "is not a fault such as Crash(1, at='2s')"),
        ("os.system('true')", "faults: os.system('true') is not a fault such as"),
        ("netsim.faults.Crash(1, at=1)", "is not a fault such as"),
        ("Crash(1, at=1).node", "is not a fault such as"),
        ("lambda: Crash(1, at=1)", "faults: lambda: Crash(1, at=1) is not a fault"),
        ("Crash", "faults: Crash is not a fault such as"),
        ("x", "faults: x is not a fault such as"),
        ("[1, 2]", "faults: 1 is not a fault such as"),
        ("{'a': 1}", "is not a fault such as"),
        ("Crash(1, att='2s')", "faults: Crash(1, att='2s'): no argument 'att'; Crash takes node, "),
        ("Crash(1)", "missing a required argument: 'at'; Crash takes node, at, restart=None"),
        ("Slow(1, 2, 3, 4, 5)", "too many positional arguments; Slow takes node, factor, at"),
        ("Crash(1, at=x)", "faults: Crash(1, at=x): x is not a literal"),
        ("Crash(1, at=__import__('os'))", "__import__('os') is not a literal"),
        ("Crash(1, at=(lambda: 1)())", "is not a literal"),
        ("Crash(1, at=os.sep)", "os.sep is not a literal"),
        ("Crash(1, at=1 + 1)", "1 + 1 is not a literal"),
        ("Crash(1, at=-'x')", "-'x' is not a literal"),
        ("Crash(True, at=1)", "True is not a literal"),
        ("Crash(*[1], at=1)", "*[1] is not a literal"),
        ("Crash(**{'node': 1, 'at': 1})", "name each argument"),
        ("Partition([[[0]]], at=1, until=2)", "[0] is not a literal"),
        ("Partition([['a']], at=1, until=2)", "'a' is not a literal"),
        ("LossBurst(0.5, at=b'1', until=2)", "b'1' is not a literal"),
        ("[Crash(1, at='2s')", "faults: cannot read \"[Crash(1, at='2s')\": write a fault"),
        ("", "faults: cannot read '': write a fault"),
        ("import os", "faults: cannot read 'import os'"),
    ],
)
def test_anything_but_faults_with_literal_arguments_is_one_line(text, message):
    with pytest.raises(FaultError) as caught:
        parse_faults(text)
    line = str(caught.value)
    assert message in line and line.startswith("faults: ") and "\n" not in line


def tiny(**shared):
    return Experiment(
        "faulty",
        runs=[Run("a", SGD()), Run("b", GoSGD(p=1.0), faults=[Crash(0, at=1)])],
        model="logistic",
        data="synthetic_fmnist",
        steps=4,
        workers=4,
        **shared,
    )


def resolved(experiment):
    return {name: settings.faults for name, settings in experiment.resolve()}


def test_set_faults_reaches_the_runs_as_any_setting():
    experiment = tiny()
    experiment.override(['faults=[Crash(1, at="2s", restart="3s", state="reset")]'])
    crash = Crash(1, at="2s", restart="3s", state="reset")
    assert resolved(experiment) == {"a": [crash], "b": [Crash(0, at=1)]}  # b sets its own
    experiment.override(['b.faults=Churn(fraction=0.2, session="2s")'])
    assert resolved(experiment)["b"] == [Churn(fraction=0.2, session="2s")]
    for none in ("none", "None", "[]"):
        experiment.override([f"faults={none}", f"b.faults={none}"])
        assert all(list(faults) == [] for faults in resolved(experiment).values())
    experiment.override(["faults=Crash(1, at=1)"])
    described = dict(experiment.resolve())["a"].describe()["faults"]  # config.json: as declared
    assert described == [{"name": "Crash", "node": 1, "at": 1, "restart": None, "state": "keep"}]


def test_a_bad_fault_in_set_names_the_run():
    experiment = tiny()
    experiment.override(["faults=[Crsh(1, at='2s')]"])
    with pytest.raises(ConfigError, match=rf"^run 'a': faults: unknown fault 'Crsh'; {USE}$"):
        experiment.resolve()


def test_sweep_takes_faults_as_values():
    grid = parse_grid(["faults=[Crash(1, at='2s'), LossBurst(0.5, at=1, until=2)],none"])
    expanded, points = expand(tiny(), grid)
    faults = resolved(expanded)
    assert faults == {
        "a,faults=Crash_1_at_2s_LossBurst_0.5_at_1_until_2": [
            Crash(1, at="2s"),
            LossBurst(0.5, at=1, until=2),
        ],
        "a,faults=none": [],
        "b": [Crash(0, at=1)],  # sets its own faults: no point of the grid reaches it
    }


EXPERIMENT = """
from netsim import Compute, Experiment, Run
from netsim.algorithms import GoSGD
experiment = Experiment("faulty", model="logistic", data="synthetic_fmnist", workers=4,
    steps=24, batch=8, eval_subset=50, eval_every="2s", compute=Compute(step_time="0.25s"),
    runs=[Run("gossip", GoSGD(p=1.0))])
"""


def netsim(tmp_path, *args):
    spec = tmp_path / "exp.py"
    spec.write_text(EXPERIMENT)
    command = [sys.executable, "-m", "netsim", str(spec), "--out", str(tmp_path / "out")]
    return subprocess.run(
        [*command, "--no-progress", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_set_faults_on_the_command_line_takes_effect(tmp_path):
    fault = 'faults=[Crash(1, at="2s", restart="3s", state="reset")]'
    result = netsim(tmp_path, "--set", fault)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "out" / "faulty" / "gossip"
    offline = [m for m in rows(run / "messages.csv") if m["reason"] == "offline"]
    assert offline and all(2 <= float(m["t_send"]) < 5 for m in offline)
    assert {m["dropped"] for m in offline} == {"1"}
    assert "1" in {m["dst"] for m in offline}
    records = rows(run / "records.csv")
    went = [(r["t"], r["node"], r["value"]) for r in records if r["name"] == "offline"]
    assert went == [("2.0", "1", "1"), ("5.0", "1", "0")]


@pytest.mark.parametrize(
    "fault, message",
    [
        ("faults=[Crsh(1, at='2s')]", f"run 'gossip': faults: unknown fault 'Crsh'; {USE}"),
        ("faults=__import__('os').system('touch HACKED')", "is not a fault such as"),
        ("faults=Crash(1, at='abc')", "run 'gossip': faults[0] = Crash(node=1, at='abc'"),
        ("faults=Crash(9, at='2s')", "no node 9 in this run; nodes are 0..3"),
    ],
    ids=["unknown", "hostile", "bad-time", "bad-node"],
)
def test_a_bad_fault_on_the_command_line_is_one_line_before_any_run(
    tmp_path, capsys, fault, message
):
    # main() in this process (a process of its own pays 4 s of imports; the hostile one runs
    # in its own below)
    from netsim.__main__ import main

    spec = tmp_path / "exp.py"
    spec.write_text(EXPERIMENT)
    code = main([str(spec), "--out", str(tmp_path / "out"), "--no-progress", "--set", fault])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netsim: error: ") and message in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (ROOT / "HACKED").exists()


def test_a_hostile_fault_in_a_process_of_its_own_is_one_line_and_runs_nothing(tmp_path):
    result = netsim(tmp_path, "--set", "faults=__import__('os').system('touch HACKED')")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a fault such as" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not (ROOT / "HACKED").exists()
