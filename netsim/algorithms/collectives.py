"""All-reduce schedules: who sends which slice of a vector to whom, round by round.

A schedule gives each of n nodes the same number of rounds. In a round a node sends slices of
its vector as it stands at the round's start, then takes the slices its peers send it in the
same round, adding them into its own (``reduce`` rounds) or copying them over it (gather
rounds). Each node holds the sum of all n vectors at the end, the same bits everywhere: every
slice is summed by one node and copied to the others. The vector of P entries is cut into n
chunks (the first P mod n one entry longer), so a ring step carries about P/n entries.

- ``ring`` (Patarasuk and Yuan 2009; Baidu, Horovod): n - 1 reduce-scatter steps, node i sending
  chunk i - s to i + 1 at step s, then n - 1 all-gather steps: 2(n - 1) chunks per node.
- ``tree``: a binomial tree (Thakur, Rabenseifner and Gropp 2005): reduce to node 0 in
  ceil(log2 n) rounds, node i + 2^r sending its whole vector to i at round r, then broadcast
  back down the same tree.
- ``halving_doubling``: Rabenseifner's algorithm (ibid.): reduce-scatter by recursive halving
  (partner i xor 2^r, each sending the half the other keeps), then all-gather by recursive
  doubling. With n not a power of two, p = 2^floor(log2 n): the first 2(n - p) nodes pair up,
  each even one handing its vector to the odd one after it (and getting the sum back at the
  end), so that p nodes run the core.
"""

from __future__ import annotations

from typing import NamedTuple


class Round(NamedTuple):
    sends: list[tuple[int, int, int]]  # (peer, start, end): x[start:end] to peer
    recvs: list[tuple[int, int, int]]  # (peer, start, end): from peer, into x[start:end]
    reduce: bool  # add what arrives (reduce) or copy it (gather)


def chunks(P: int, n: int) -> list[tuple[int, int]]:
    """The n slices (start, end) a vector of P entries is cut into; the first P mod n are one
    entry longer."""
    bounds = [0]
    for c in range(n):
        bounds.append(bounds[-1] + P // n + (c < P % n))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _empty(n: int, rounds: int, reduce: list[bool]) -> list[list[Round]]:
    return [[Round([], [], reduce[t]) for t in range(rounds)] for _ in range(n)]


def _move(plan, t: int, src: int, dst: int, start: int, end: int) -> None:
    if end > start:  # a slice of nothing is not sent
        plan[src][t].sends.append((dst, start, end))
        plan[dst][t].recvs.append((src, start, end))


def ring(n: int, P: int) -> list[list[Round]]:
    c = chunks(P, n)
    plan = _empty(n, 2 * (n - 1), [True] * (n - 1) + [False] * (n - 1))
    for i in range(n):
        for s in range(n - 1):
            _move(plan, s, i, (i + 1) % n, *c[(i - s) % n])
            _move(plan, n - 1 + s, i, (i + 1) % n, *c[(i + 1 - s) % n])
    return plan


def tree(n: int, P: int) -> list[list[Round]]:
    m = (n - 1).bit_length()  # ceil(log2 n)
    plan = _empty(n, 2 * m, [True] * m + [False] * m)
    for r in range(m):
        d = 1 << r
        for i in range(0, n - d, 2 * d):
            _move(plan, r, i + d, i, 0, P)
            _move(plan, 2 * m - 1 - r, i, i + d, 0, P)
    return plan


def halving_doubling(n: int, P: int) -> list[list[Round]]:
    p = 1 << (n.bit_length() - 1)
    extra, m = n - p, p.bit_length() - 1
    fold = 1 if extra else 0
    plan = _empty(n, 2 * m + 2 * fold, [True] * (fold + m) + [False] * (m + fold))
    # core rank -> node: the odd node of each of the first extra pairs, then the rest
    node = [2 * k + 1 for k in range(extra)] + list(range(2 * extra, n))
    for k in range(extra):
        _move(plan, 0, 2 * k, 2 * k + 1, 0, P)
        _move(plan, len(plan[0]) - 1, 2 * k + 1, 2 * k, 0, P)
    c = chunks(P, p)
    held = [(0, p)] * p  # the chunks each core rank is responsible for
    for r in range(m):
        d = p >> (r + 1)
        for i in range(p):
            lo, hi = held[i]
            mid = (lo + hi) // 2
            keep, give = ((lo, mid), (mid, hi)) if not i & d else ((mid, hi), (lo, mid))
            _move(plan, fold + r, node[i], node[i ^ d], c[give[0]][0], c[give[1] - 1][1])
            held[i] = keep
    for r in range(m):
        d = 1 << r
        for i in range(p):
            lo, hi = held[i]
            _move(plan, fold + m + r, node[i], node[i ^ d], c[lo][0], c[hi - 1][1])
        held = [
            (min(held[i][0], held[i ^ d][0]), max(held[i][1], held[i ^ d][1])) for i in range(p)
        ]
    return plan


SCHEDULES = {"ring": ring, "tree": tree, "halving_doubling": halving_doubling}
