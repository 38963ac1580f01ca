"""Equal-budget cuts on hand-made evaluation curves."""

import json

import numpy as np
import pytest

from netsim.results import compare


def fake_run(root, name, workers, rows, final=None):
    """rows: (t, steps, bytes in total, accuracy) on the test subset; final: one such row on
    the full test set."""
    run = root / name
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"workers": workers}))
    (run / "config.json").write_text(json.dumps({"eval_subset": 1000}))
    lines = ["t,node,split,accuracy,loss,steps,bytes"]
    lines += [f"{t},global,subset,{acc},1.0,{steps},{b}" for t, steps, b, acc in rows]
    if final is not None:
        t, steps, b, acc = final
        lines.append(f"{t},global,test,{acc},1.0,{steps},{b}")
    (run / "evals.csv").write_text("\n".join(lines) + "\n")


def test_each_run_is_read_at_the_cheaper_runs_budget(tmp_path):
    # (t, steps, bytes in total, accuracy); two workers each
    fake_run(tmp_path, "fast", 2, [(0, 0, 0, 0.1), (1, 10, 8e6, 0.5), (2, 20, 16e6, 0.7)])
    fake_run(tmp_path, "lean", 2, [(0, 0, 0, 0.1), (3, 10, 2e6, 0.4), (6, 15, 4e6, 0.6)])
    rows = {r["cut"]: r for r in compare.cuts(tmp_path, "fast", "lean")}
    assert rows["equal rounds"]["budget"] == 15
    assert (rows["equal rounds"]["fast"], rows["equal rounds"]["lean"]) == (0.5, 0.6)
    assert rows["equal time"]["budget"] == 2
    assert (rows["equal time"]["fast"], rows["equal time"]["lean"]) == (0.7, 0.1)
    assert rows["equal bytes"]["budget"] == pytest.approx(2.0)  # MB per worker
    assert (rows["equal bytes"]["fast"], rows["equal bytes"]["lean"]) == (0.1, 0.6)


def test_write_makes_a_table_and_a_figure(tmp_path):
    fake_run(tmp_path, "a", 1, [(0, 0, 0, 0.1), (1, 1, 1e6, 0.2)])
    fake_run(tmp_path, "b", 1, [(0, 0, 0, 0.1), (2, 1, 5e5, 0.3)])
    table = compare.write(tmp_path, [("a", "b")])
    row = (
        "| a vs b | equal bytes | 0.5 MB sent per worker | test subset of 1,000 | 10.00% | 30.00% |"
    )
    assert row in table
    assert (tmp_path / "cuts.png").stat().st_size > 5000
    assert (tmp_path / "cuts.md").read_text().strip() == table


def test_a_cut_reads_both_runs_on_the_same_split_and_says_which(tmp_path):
    # (t, steps, bytes, accuracy): the subset curve, then the final full test evaluation
    fake_run(tmp_path, "short", 1, [(0, 0, 0, 0.1), (1, 10, 1e6, 0.5)], final=(1, 10, 1e6, 0.9))
    fake_run(
        tmp_path,
        "long",
        1,
        [(0, 0, 0, 0.1), (1, 10, 1e6, 0.4), (2, 20, 2e6, 0.6)],
        final=(2, 20, 2e6, 0.8),
    )
    fake_run(tmp_path, "same", 1, [(0, 0, 0, 0.1), (2, 20, 3e6, 0.55)], final=(2, 20, 3e6, 0.7))
    # short ends within every budget, long does not: both on the subset, never short's final
    for row in compare.cuts(tmp_path, "short", "long"):
        assert (row["split"], row["short"], row["long"]) == ("subset", 0.5, 0.4), row["cut"]
    rows = {r["cut"]: r for r in compare.cuts(tmp_path, "long", "same")}
    # both end at 20 rounds and 2 s: both on the full test set there
    for cut in ("equal rounds", "equal time"):
        assert (rows[cut]["split"], rows[cut]["long"], rows[cut]["same"]) == ("test", 0.8, 0.7)
    assert (rows["equal bytes"]["split"], rows["equal bytes"]["same"]) == ("subset", 0.1)
    table = compare.write(tmp_path, [("long", "same")])
    assert (
        "| long vs same | equal rounds | 20.0 rounds | full test set | 80.00% | 70.00% |" in table
    )
    assert "| long vs same | equal bytes | 2.0 MB sent per worker | test subset of 1,000 |" in table


def test_runs_of_several_seeds_are_cut_seed_by_seed_and_averaged(tmp_path):
    from netsim.results import aggregate

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    # seed s: a reaches 0.5 + s/10 by its end at 1 s, b 0.3 by 2 s (0.2 at 1 s)
    for seed in (0, 1):
        acc = 0.5 + seed / 10
        fake_run(tmp_path / "a", f"seed={seed}", 1, [(0, 0, 0, 0.1), (1, 10, 1e6, acc)])
        fake_run(
            tmp_path / "b", f"seed={seed}", 1, [(0, 0, 0, 0.1), (1, 5, 5e5, 0.2), (2, 10, 1e6, 0.3)]
        )
    rows = {r["cut"]: r for r in compare.cuts(tmp_path, "a", "b")}
    time = rows["equal time"]
    assert (time["budget"], time["seeds"]) == (1, 2)
    assert (time["a"], time["b"]) == (pytest.approx(0.55), pytest.approx(0.2))
    half = aggregate.t_quantile(1) * np.sqrt(0.005) / np.sqrt(2)
    assert time["ci"]["a"] == pytest.approx(half) and time["ci"]["b"] == 0.0
    table = compare.write(tmp_path, [("a", "b")])
    assert (
        f"| a vs b | equal time | 1.0 s (mean of 2 seeds) | test subset of 1,000 | "
        f"55.00% ± {100 * half:.2f} | 20.00% ± 0.00 |" in table
    )
