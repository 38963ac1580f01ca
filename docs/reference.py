"""Writes docs/reference.md from the code: `.venv/bin/python docs/reference.py`.

The results columns are described here, keyed by the recorder's own headers, so a column added
there without a description stops this script. Everything else is read from the code: each
algorithm's module docstring, its dataclass fields with their defaults (and a field's trailing
comment), the message kinds and record names it declares (``sends``, ``records``; a test holds
them to what a run writes), the roles its layout gives, the sharing methods, and the
``topologies.graphs`` builders' signatures and docstrings. tests/docs/test_reference.py fails
when docs/reference.md is not what this script writes.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import networkx as nx

from netsim import algorithms
from netsim.algorithms import hooks, sharing
from netsim.results import recorder
from topologies import graphs

OUT = Path(__file__).with_name("reference.md")

FILES = {
    "steps.csv": (
        recorder.STEPS,
        "One row per training step of a node, written when the step's compute ends.",
        {
            "node": "the node's id",
            "step": "the node's step count after this step, from 1",
            "t_start": "simulated seconds when the step began",
            "t_end": "simulated seconds when its compute ended and its update was applied",
            "loss": "the training loss on the step's batch",
        },
    ),
    "messages.csv": (
        recorder.MESSAGES,
        "One row per message, written when it arrives or is dropped; a message still in "
        "flight when the run ends is written then, as sent and not delivered.",
        {
            "src": "the sender's node id",
            "dst": "the receiver's node id",
            "kind": "the kind the algorithm named in `node.send` (see the table below)",
            "bytes": "its exact size on the wire: the length of its msgpack encoding (header, "
            "payload field names, scalars and tensor data)",
            "data_bytes": "the part of `bytes` that is raw tensor and array data; "
            "`bytes - data_bytes` is metadata",
            "t_send": "simulated seconds when it was sent",
            "t_arrive": "simulated seconds when it was delivered or dropped; `nan` for a "
            "message the network never settled (`in flight`; for real, an edge's `loss`)",
            "dropped": "1 if it was not delivered, else 0",
            "reason": 'why it was not delivered, empty if it was: `"loss"` (the edge\'s `loss`), '
            '`"queue"` (a full NIC `queue`: it never left its sender), `"in flight"` (still on '
            'its way when the run ended), `"unreachable"` (real runtime: the connection to its '
            'receiver failed); the faults\' (`faults=[...]`): `"offline"` (its sender or '
            'receiver was offline when it was sent, or its receiver when it arrived), `"link '
            'down"`, `"partition"` (dropped at send), `"loss"` (a `LossBurst`, at arrival)',
        },
    ),
    "evals.csv": (
        recorder.EVALS,
        "One row per model evaluated: at the start, every `eval_every`, and at the end.",
        {
            "t": "simulated seconds",
            "node": '`"global"` for the global model (the algorithm\'s `global_model`: the mean '
            "of the workers' rows unless the algorithm says otherwise, the server's model for "
            "`SyncPS`, `AsyncPS` and `FedAvg`, for `AllReduceSGD` the first online "
            "worker's, which its whole group holds); a worker's id for that worker's own model "
            "(`eval_nodes`, `eval_local`)",
            "split": '`"subset"`: the fixed `eval_subset` test samples, during the run; '
            '`"test"`: the full test set, once at the end (with `eval_local`: each worker\'s '
            "users' test samples, both times)",
            "accuracy": "the fraction of samples classified correctly; `nan` for rating data",
            "loss": "mean cross-entropy; for rating data (MovieLens) the RMSE",
            "steps": "the steps every worker had reached (the x axis of the curves)",
            "bytes": "bytes of every message sent so far by any node, a server's too; a "
            "message dropped by a full queue never left its node and does not count",
        },
    ),
    "records.csv": (
        recorder.RECORDS,
        "One row per `node.record(name, value)`: algorithm state (see the table below); "
        'with faults, the kernel\'s `"offline"` rows: 1 when a node goes offline, 0 when it '
        "comes back (the timeline shades the intervals between).",
        {
            "t": "simulated seconds",
            "node": "the node that recorded it (a server's id is the number of workers)",
            "name": "what it is",
            "value": "a plain number",
        },
    ),
}


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)


def render() -> str:
    classes = [getattr(algorithms, name) for name in algorithms.__all__]
    out = [
        "# Reference",
        "",
        "Generated from the code by `.venv/bin/python docs/reference.py`; edit the code, not "
        "this page (a test fails when the page is stale).",
        "",
        "- [Results files](#results-files)",
        "- [Algorithms](#algorithms): " + ", ".join(f"`{c.__name__}`" for c in classes),
        "- [Sharing methods](#sharing-methods)",
        "- [Graph builders](#graph-builders)",
        "",
        *results_section([c for c in classes if inspect.isclass(c)]),
        "## Algorithms",
        "",
        "In `netsim.algorithms`. Each is a frozen dataclass: the arguments below are its fields.",
        "",
    ]
    described: set[str] = set()  # modules whose docstring is already on the page
    for algorithm in classes:
        out += algorithm_section(algorithm, described)
    out += sharing_section()
    out += graphs_section()
    return "\n".join(out).rstrip() + "\n"


def results_section(classes: list[type]) -> list[str]:
    out = [
        "## Results files",
        "",
        "`results/<experiment>/<run>/` holds config.json (every setting, the roles of the "
        "nodes, the execution mode), summary.json (final figures, wall time, peak memory) and "
        "these CSV files. Times are simulated seconds.",
        "",
    ]
    for name, (header, what, meanings) in FILES.items():
        missing = [column for column in header if column not in meanings]
        if missing:
            raise SystemExit(f"docs/reference.py: describe the {name} columns {missing}")
        out += [f"### {name}", "", what, "", "| column | meaning |", "| --- | --- |"]
        out += [f"| `{column}` | {meanings[column]} |" for column in header]
        out.append("")
    out += ["Message kinds (`kind`) by algorithm:", "", "| algorithm | kind | carries |"]
    out.append("| --- | --- | --- |")
    for cls in classes:
        out += [f"| `{cls.__name__}` | `{k}` | {v} |" for k, v in cls.sends.items()]
    out += ["", "Records (`name`) by algorithm; the others record nothing:", ""]
    out += ["| algorithm | name | meaning |", "| --- | --- | --- |"]
    for cls in classes:
        out += [f"| `{cls.__name__}` | `{k}` | {v} |" for k, v in cls.records.items()]
    return [*out, ""]


def algorithm_section(algorithm, described: set[str]) -> list[str]:
    name = algorithm.__name__
    if not inspect.isclass(algorithm):  # a variant: a function returning a configured class
        parameters = inspect.signature(algorithm).parameters.values()
        args = ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in parameters)
        return [f"### {name}", "", f"`{name}({args})`: {inspect.getdoc(algorithm)}", ""]
    instance = algorithm()
    out = [f"### {name}", "", f"`{name}({call(instance)})`", ""]
    out += arguments(algorithm)
    out += [
        f"- roles: {roles(instance)}",
        f"- sends: {', '.join(f'`{k}`' for k in algorithm.sends) or 'nothing'}; "
        f"records: {', '.join(f'`{k}`' for k in algorithm.records) or 'nothing'}",
        f"- needs a connected graph: {'yes' if hooks.needs_connected(instance) else 'no'}; "
        f"the run ends when {ending(instance)}",
        "",
    ]
    if algorithm.__module__ in described:
        return [*out, "Described with the algorithm above, from the same module.", ""]
    described.add(algorithm.__module__)
    return [*out, "```text", inspect.getdoc(sys.modules[algorithm.__module__]), "```", ""]


def call(instance) -> str:
    return ", ".join(f"{f.name}={default(f)!r}" for f in dataclasses.fields(instance))


def default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def arguments(cls: type) -> list[str]:
    """A table of the fields: type, default and the trailing comment on the field's line."""
    fields = dataclasses.fields(cls)
    if not fields:
        return ["No arguments.", ""]
    notes = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M))
    out = ["| argument | type | default | note |", "| --- | --- | --- | --- |"]
    for f in fields:
        cells = [f"`{f.name}`", f"`{f.type}`", f"`{default(f)!r}`", notes.get(f.name, "")]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return [*out, ""]


def roles(instance) -> str:
    """What the layout makes of a 4-worker graph: role tuples and how many nodes run each."""
    _, layout = hooks.layout(instance, nx.complete_graph(4))
    counts: dict[tuple, int] = {}
    for names in layout:
        counts[tuple(names)] = counts.get(tuple(names), 0) + 1
    words = []
    for names, count in counts.items():
        who = "each worker" if names[0] == "worker" else f"{count} extra node"
        words.append(f"{who} runs {' and '.join(f'`{n}`' for n in names)}")
    return "; ".join(words)


def ending(instance) -> str:
    drives = " and ".join(f"`{role}`" for role in hooks.drives(instance))
    if hooks.stop(instance, "all") == "first":
        return "the first worker is done"
    if hooks.rounds(instance):
        return f"its {drives} role returns after `rounds` rounds (no `steps` needed)"
    return f"every {drives} role has returned (each stops when its budget is spent)"


def sharing_section() -> list[str]:
    out = [
        "## Sharing methods",
        "",
        "In `netsim.algorithms.sharing`, the `share` argument of `P2PPull`, `GoSGD`, `DPSGD` "
        "and `RWM`.",
        "",
        "```text",
        inspect.getdoc(sharing),
        "```",
        "",
    ]
    for cls in (sharing.Full, sharing.Partial, sharing.RandomAlpha, sharing.SubSampling):
        args = ", ".join(
            f.name if f.default is dataclasses.MISSING else f"{f.name}={f.default!r}"
            for f in dataclasses.fields(cls)
        )
        summary = inspect.getdoc(cls).split("\n\n")[0].replace("\n", " ")
        out += [f"- `{cls.__name__}({args})`: {summary}"]
    return [*out, ""]


def graphs_section() -> list[str]:
    out = [
        "## Graph builders",
        "",
        "In `topologies.graphs`; `topology=` names one by its key in `graphs.GRAPHS` "
        f"({', '.join(f'`{name}`' for name in graphs.GRAPHS)}), or takes any networkx graph.",
        "",
    ]
    for function in [*graphs.GRAPHS.values(), graphs.build, graphs.check]:
        signature = str(inspect.signature(function))
        signature = re.sub(r"networkx\.classes\.\w+\.(\w+)", r"nx.\1", signature)
        out += [f"### {function.__name__}{signature}", ""]
        sections = numpydoc(inspect.getdoc(function))
        out += [paragraphs(sections.get("", [])), ""]
        parameters = sections.get("Parameters", [])
        for line in parameters:
            if line and not line.startswith(" "):
                names, _, kind = line.partition(" : ")
                out.append(f"- `{names}` ({kind}):")
            elif line.strip():
                out[-1] += " " + line.strip()
        if parameters:
            out.append("")
        if "References" in sections:
            out += ["References: " + paragraphs(sections["References"]), ""]
    return out


def numpydoc(doc: str) -> dict[str, list[str]]:
    """A numpydoc docstring's sections by title ("" for the text before the first)."""
    lines, sections, title = doc.splitlines(), {"": []}, ""
    i = 0
    while i < len(lines):
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if underline and set(underline) == {"-"}:
            title, i = lines[i].strip(), i + 2
            sections[title] = []
            continue
        sections[title].append(lines[i])
        i += 1
    return sections


def paragraphs(lines: list[str]) -> str:
    text = "\n".join(lines).strip()
    return "\n\n".join(p.replace("\n", " ") for p in re.split(r"\n\s*\n", text))


if __name__ == "__main__":
    main()
