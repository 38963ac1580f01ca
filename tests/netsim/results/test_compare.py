"""Equal-budget cuts on hand-made evaluation curves."""

import json

import pytest

from netsim.results import compare


def fake_run(root, name, workers, rows):
    run = root / name
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"workers": workers}))
    lines = ["t,node,split,accuracy,loss,steps,bytes"]
    lines += [f"{t},global,subset,{acc},1.0,{steps},{b}" for t, steps, b, acc in rows]
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
    assert "| a vs b | equal bytes | 0.5 MB/node | 10.00% | 30.00% |" in table
    assert (tmp_path / "cuts.png").stat().st_size > 5000
    assert (tmp_path / "cuts.md").read_text().strip() == table
