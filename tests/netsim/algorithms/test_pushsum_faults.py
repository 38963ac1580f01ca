"""SGP under faults keeps push-sum's mass where its sender can know a push was refused (an
offline receiver, a cut link, a partition): the weights still sum to n."""

import csv

import pytest

from netsim.algorithms import SGP
from netsim.faults import Crash, LinkDown, Partition
from tests.conftest import UNDER_FAULTS, make_simulation

SETTINGS = UNDER_FAULTS


def mass(tmp_path, faults, **settings):
    sim = make_simulation(SGP(timeout="0.05s"), tmp_path, **(SETTINGS | settings), faults=faults)
    sim.run()
    held = sum(node.state["w"] for node in sim.nodes)
    flying = sum(m.payload["w"] for m in sim.fabric.in_flight())
    with open(tmp_path / "messages.csv") as handle:
        reasons = {r["reason"] for r in csv.DictReader(handle) if r["dropped"] == "1"}
    return held + flying, reasons


@pytest.mark.parametrize(
    "faults, reason",
    [
        ([Partition([[0, 1]], at="0.1s", until="0.3s")], "partition"),
        (
            [LinkDown(0, 1, at="0.1s", until="0.3s"), LinkDown(2, 3, at="0.1s", until="0.5s")],
            "link down",
        ),
    ],
    ids=["partition", "link_down"],
)
def test_refused_pushes_are_taken_back(tmp_path, faults, reason):
    total, reasons = mass(tmp_path, faults)
    assert reason in reasons  # the fault refused pushes
    assert total == pytest.approx(4.0, abs=1e-9)


def test_without_faults_the_mass_is_n(tmp_path):
    total, reasons = mass(tmp_path, [])
    assert reasons <= {"in flight"}
    assert total == pytest.approx(4.0, abs=1e-9)


def test_a_crashed_out_neighbour_no_longer_drains_the_mass(tmp_path):
    # the survivors keep what they held when worker 2 crashed: n minus worker 2's own w (in
    # its state, counted by mass()) and the pushes in its mailbox (none at this moment);
    # without taking refused pushes back, half a node's mass went to the dead worker at
    # every other round and the total fell to 1.0
    total, reasons = mass(tmp_path, [Crash(2, at="0.1s")], steps=60)
    assert "offline" in reasons
    assert total == pytest.approx(4.0, abs=1e-9)
