"""Which flows race for a link (Network.unfairness_among = "together"; maxmin.py applies it).

A flow races when it starts within ``window`` seconds of another running flow on one of its
links out; then both do, and each one's weight (its unfairness draw) counts from that moment
on, for as long as it runs. A flow that starts alone, or only behind flows older than the
window, never races: its weight stays 1. Only flows younger than the window are kept.
"""

from collections.abc import Callable

Links = tuple[int, ...]


class Races:
    def __init__(self, window: float):
        self.window = window
        # flow id: [its start, its links, its links out, its draw while it has not raced]
        self._young: dict[int, list] = {}

    def start(
        self,
        now: float,
        flow: int,
        links: Links,
        out: set[int],
        draw: float,
        running: Callable[[Links, int], bool],
    ) -> tuple[float, list[tuple[Links, int, float]]]:
        """The weight the new flow starts with (its draw if it races, else 1), and (links,
        flow, draw) of each flow that races for the first time now: its weight is to be
        multiplied by its draw."""
        rivals = []
        for other, (born, its_links, its_out, _) in list(self._young.items()):
            if now - born > self.window or not running(its_links, other):
                del self._young[other]
            elif its_out & out:
                rivals.append(other)
        self._young[flow] = [now, links, out, None if rivals else draw]
        joined = []
        for other in rivals:
            young = self._young[other]
            if young[3] is not None:  # its first race: its weight counts from now on
                joined.append((young[1], other, young[3]))
                young[3] = None
        return (draw if rivals else 1.0), joined
