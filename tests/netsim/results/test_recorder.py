"""The recorder's summary figures, from hand-made steps and messages."""

import torch

from netsim.network.message import Message
from netsim.results.recorder import Recorder


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
