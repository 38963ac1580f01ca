"""docs/reference.md is what docs/reference.py writes from the code."""

import runpy
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_reference_md_is_up_to_date():
    render = runpy.run_path(str(DOCS / "reference.py"))["render"]
    assert (DOCS / "reference.md").read_text() == render(), (
        "docs/reference.md is stale: run .venv/bin/python docs/reference.py"
    )


def test_a_results_column_without_a_description_stops_the_script(monkeypatch):
    from netsim.results import recorder

    monkeypatch.setattr(recorder, "STEPS", (*recorder.STEPS, "energy"))
    render = runpy.run_path(str(DOCS / "reference.py"))["render"]
    with pytest.raises(SystemExit, match=r"describe the steps.csv columns \['energy'\]"):
        render()
