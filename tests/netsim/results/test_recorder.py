"""The recorder's summary figures, from hand-made steps and messages."""

import torch

from netsim.algorithms import FedAvg
from netsim.network.message import Message
from netsim.results.read import read_csv, read_json
from netsim.results.recorder import Recorder, stopped_by


def message(src: int, dst: int, n: int, drop_reason: str = "") -> Message:
    msg = Message(src, dst, "x", {"x": torch.zeros(n)}, t_send=0.0, t_arrive=1.0)
    msg.dropped, msg.drop_reason = bool(drop_reason), drop_reason
    return msg


def test_mb_sent_per_worker_counts_every_nodes_sends_servers_too(tmp_path):
    recorder = Recorder(tmp_path, {}, ["worker", "worker", "server"])
    sent = [message(0, 2, 1000), message(2, 0, 1000), message(2, 1, 3000, drop_reason="loss")]
    for msg in [*sent, message(1, 2, 5000, drop_reason="queue")]:  # the last never left node 1
        recorder.message(msg)
    summary = recorder.summary("ps", "AsyncPS", sim_time=1.0, wall_time=0.0)
    assert summary["bytes_sent"] == sum(msg.size for msg in sent)
    assert summary["mb_sent_per_worker"] == sum(msg.size for msg in sent) / 2 / 1e6
    recorder.close()


def test_a_federated_runs_steps_are_the_servers_rounds_times_local_steps(tmp_path):
    # two of four clients per round, three local steps each; worker 3 never trains, so no
    # step is every worker's
    recorder = Recorder(tmp_path, {"round_size": 2}, ["worker"] * 4 + ["server"])
    reached = []
    for round_, clients in enumerate([(0, 1), (0, 2)]):
        for node in clients:
            for step in range(3 * round_ + 1, 3 * round_ + 4):
                recorder.step(node, step, 0.0, 1.0, 2.3)
            reached.append(recorder.steps_reached())
    assert reached == [1, 3, 4, 6]  # half a round's steps, a round, ...
    recorder.evaluation(1.0, "global", "test", 0.5, 1.0)
    assert recorder.last_eval["steps"] == 6
    recorder.close()


def test_federated_evaluations_count_rounds_times_local_steps(simulate):
    # 6,000 samples on four clients, batch 500: 3 local steps per round, 2 clients per round
    sim, _ = simulate(FedAvg(rounds=3, C=0.5), workers=4, batch=500, model="logistic", eval_every=3)
    evals = read_csv(sim.recorder.dir / "evals.csv", text=("node", "split"))
    assert evals["steps"].tolist() == [0, 3, 6, 9, 9]
    assert evals["split"].tolist() == ["subset"] * 4 + ["test"]


def test_summary_json_says_not_complete_from_the_start_until_the_run_ends(tmp_path):
    (tmp_path / "summary.json").write_text('{"run": "r", "final_accuracy": 0.9}')  # an old run
    recorder = Recorder(tmp_path, {"run": "r"}, ["worker"])
    assert read_json(tmp_path / "summary.json") == {"run": "r", "complete": False}
    recorder.step(0, 1, 0.0, 1.0, 2.3)
    recorder.close(recorder.summary("r", "SGD", sim_time=1.0, wall_time=0.0))
    summary = read_json(tmp_path / "summary.json")
    assert summary["complete"] is True and "stopped" not in summary
    assert summary["steps_per_worker"] == 1


def test_a_run_that_stopped_early_keeps_what_it_reached_and_why(tmp_path):
    recorder = Recorder(tmp_path, {"run": "r"}, ["worker"])
    recorder.step(0, 1, 0.0, 1.0, 2.3)
    recorder.close(recorder.summary("r", "SGD", 1.0, 0.0), stopped=stopped_by(KeyboardInterrupt()))
    summary = read_json(tmp_path / "summary.json")
    assert summary["complete"] is False and summary["stopped"] == "interrupted"
    assert summary["steps_per_worker"] == 1 and read_csv(tmp_path / "steps.csv")["step"] == [1]
    assert stopped_by(ValueError("bad\nvalue")) == "ValueError: bad"


def test_an_interrupt_while_a_row_is_written_waits_until_the_row_is_counted(tmp_path):
    # a signal that lands just after a row reached its file (the CLI's handlers call
    # interrupts.interrupt) raises only once the summary's counts hold that row too
    import pytest

    from netsim import interrupts

    recorder = Recorder(tmp_path, {"run": "r"}, ["worker", "worker"])
    rows = {
        "steps": lambda: recorder.step(0, 1, 0.0, 1.0, 2.3),
        "messages": lambda: recorder.message(message(0, 1, 10)),
    }
    for name, write in rows.items():
        writer = recorder._writers[name]

        class Interrupted:  # the real writer, then the signal
            def writerow(self, row, writer=writer):
                writer.writerow(row)
                interrupts.interrupt(KeyboardInterrupt())

        recorder._writers[name] = Interrupted()
        with pytest.raises(KeyboardInterrupt):
            write()
        recorder._writers[name] = writer
    recorder.step(1, 1, 0.0, 1.5, 2.2)
    recorder.close(recorder.summary("r", "SGD", 1.5, 0.0), stopped="interrupted")
    summary = read_json(tmp_path / "summary.json")
    assert summary["steps_per_worker"] == 1 and len(read_csv(tmp_path / "steps.csv")["step"]) == 2
    assert summary["messages"] == 1 and summary["bytes_sent"] == message(0, 1, 10).size
    with pytest.raises(KeyboardInterrupt):  # outside a row, at once
        interrupts.interrupt(KeyboardInterrupt())
