"""A real run's stall check under faults: the simulation's (netsim/lives.py) on real time.

The simulation sees at once that nothing is left to happen; a real run only sees that
nothing happens. So: a run with faults and without ``until`` has stalled when no step
ended and no message arrived for ``quiet`` seconds (10 s, or 5 times its longest step if
longer) while no node can come back, or while nodes came back n + 1 times without any of
that (churn drawn from a distribution goes on for ever). The run then ends with one line
saying which nodes the plan has offline, what was dropped and that a timeout lets the
algorithm go on; its rows so far are kept.
"""

from __future__ import annotations

from collections import Counter

from netsim.real.outages import Schedule

QUIET = 10.0  # s without a step or an arrival before a stall is declared, at the least


class Watchdog:
    def __init__(self, plan, roles: list[str], seed: int):
        self.schedule = Schedule(plan, roles, seed, 0)
        self.n = len(roles)
        self.last = 0.0  # when the last step ended or message arrived, run's clock
        self.longest = 0.0  # the longest step so far, s
        self.dropped: Counter[str] = Counter()

    def progress(self, t: float, step: float = 0.0) -> None:
        self.last = max(self.last, t)
        self.longest = max(self.longest, step)

    def saw(self, op: str, args: tuple) -> None:
        """A message's report to the ledger: an arrival is progress, a drop is counted."""
        if op == "sent":
            reason = args[7]
        elif op == "arrived":
            reason = args[4] if len(args) > 4 else ""
            if not reason:
                self.progress(args[3])
        else:  # lost
            reason = args[3]
        if reason:
            self.dropped[reason] += 1

    def stalled(self, now: float) -> bool:
        quiet = max(QUIET, 5 * self.longest)
        if now - self.last < quiet:
            return False
        comebacks, ahead = 0, False
        for node in range(self.n):
            for t, change, _, _ in self.schedule.changes(node):
                if t > now:
                    ahead = True
                    break
                comebacks += change < 0 and t > self.last
        return not ahead or comebacks > self.n

    def why(self, now: float) -> str:
        gone = [i for i in range(self.n) if self.schedule.offline(i, now)]
        said = [f"no step ended and no message arrived for {now - self.last:.1f} s"]
        if gone:
            said.append(f"node{'s' * (len(gone) > 1)} {', '.join(map(str, gone))} offline")
        counts = ", ".join(f"{reason} {k}" for reason, k in sorted(self.dropped.items()))
        total = sum(self.dropped.values())
        lost = f" ({total} message{'s' * (total > 1)} dropped: {counts})" if counts else ""
        said.append(
            f"faults or loss caused it{lost}; a timeout lets the algorithm go on without them"
        )
        return "; ".join(said)
