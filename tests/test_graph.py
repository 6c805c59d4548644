"""``runner.graph.to_mermaid``: every component once, one arrow per dependency, a shape per kind. Pure."""

from __future__ import annotations

import re

from runner import Workflow
from runner.graph import to_mermaid

DEFINITION = re.compile(
    r'^  (?P<id>\w+)(?P<open>\[\[|\[|\{|\(\[|\(\()"(?P<label>[^"]*)"(?P<close>\]\]|\]|\}|\]\)|\)\))$'
)
ARROW = re.compile(r"^  (?P<up>\w+) --> (?P<down>\w+)$")


def parse(text: str) -> tuple[dict[str, tuple[str, str, str]], list[tuple[str, str]]]:
    """Mermaid text -> ({id: (opening, label, closing)}, [(from id, to id)]); every line must be one or the other."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert text.endswith("\n")
    nodes: dict[str, tuple[str, str, str]] = {}
    arrows: list[tuple[str, str]] = []
    for line in lines[1:]:
        if node := DEFINITION.match(line):
            assert node["id"] not in nodes, f"{node['id']} defined twice"
            nodes[node["id"]] = (node["open"], node["label"], node["close"])
        elif arrow := ARROW.match(line):
            arrows.append((arrow["up"], arrow["down"]))
        else:
            raise AssertionError(f"not a Mermaid node or arrow: {line!r}")
    for up, down in arrows:
        assert up in nodes and down in nodes, f"arrow {up} --> {down} to an undefined node"
    return nodes, arrows


def by_label(nodes: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """The component each id stands for, read from its label ("name", "name: ..." or "kind name")."""
    names = {}
    for ident, (_, label, _) in nodes.items():
        head = label.split(" (")[0]
        if ":" in head:
            name = head.split(":")[0]
        elif head.startswith(("map ", "rule ", "input of ")):
            name = "input" if head.startswith("input of ") else head.split(" ", 1)[1]
        else:
            name = head
        names[ident] = name
    return names


def every_kind() -> Workflow:
    wf = Workflow("every-kind.v2")

    @wf.step()
    def load(order: dict) -> list:
        return order["lines"]

    @wf.step()
    def clock() -> float:  # a root that takes no input
        return 0.0

    @wf.map(after=load, retries=2)
    def price(line: dict) -> float:
        return line["price"]

    @wf.reduce(after=price)
    def total(prices: list) -> float:
        return sum(prices)

    @wf.rule(after=total, when=lambda amount: amount > 100)
    def review(amount: float) -> str:
        return "review"

    approve = wf.wait_for("approve", after=review)
    pause = wf.sleep(1.5, name="cool_off", after=approve)

    @wf.step(after=[total, pause, clock], inline=True)
    def receipt(amount: float, approval: object, at: float) -> dict:
        return {"amount": amount}

    return wf


def test_every_component_once_with_its_shape() -> None:
    nodes, _ = parse(to_mermaid(every_kind()))
    shapes = {name: (nodes[ident][0], nodes[ident][2]) for ident, name in by_label(nodes).items()}
    assert shapes == {
        "input": ("((", "))"),
        "load": ("[", "]"),
        "clock": ("[", "]"),
        "price": ("[[", "]]"),  # map
        "total": ("[", "]"),  # a reduce is a step
        "review": ("{", "}"),  # rule
        "wait_approve": ("([", "])"),
        "cool_off": ("([", "])"),
        "receipt": ("[", "]"),
    }
    labels = {name: nodes[ident][1] for ident, name in by_label(nodes).items()}
    assert labels["input"] == "input of every-kind.v2"
    assert labels["price"] == "map price (retries 2)"
    assert labels["review"] == "rule review"
    assert labels["wait_approve"] == "wait_approve: wait for approve"
    assert labels["cool_off"] == "cool_off: sleep 1.5s"
    assert labels["receipt"] == "receipt (inline)"
    assert labels["load"] == "load"


def test_one_arrow_per_dependency_and_from_the_input_to_roots_that_take_it() -> None:
    workflow = every_kind()
    nodes, arrows = parse(to_mermaid(workflow))
    name = by_label(nodes)
    edges = [(name[up], name[down]) for up, down in arrows]
    assert len(edges) == len(set(edges))
    assert set(edges) == {
        ("input", "load"),  # clock takes no input: no arrow
        ("load", "price"),
        ("price", "total"),
        ("total", "review"),
        ("review", "wait_approve"),
        ("wait_approve", "cool_off"),
        ("total", "receipt"),
        ("cool_off", "receipt"),
        ("clock", "receipt"),
    }
    assert len(edges) == sum(len(node.after) for node in workflow.nodes.values()) + 1


def test_names_with_odd_characters_stay_distinct() -> None:
    wf = Workflow("odd-names.x_1")
    wf.step(lambda x: x, name="a-b")
    wf.step(lambda v: v, name="a.b", after="a-b")
    wf.step(lambda v: v, name="a_b", after="a.b")
    wf.step(lambda v: v, name="a_b_2", after="a_b")
    wf.step(lambda v, w: v, name="A.B-c.d", after=["a-b", "a_b_2"])
    text = to_mermaid(wf)
    nodes, arrows = parse(text)
    name = by_label(nodes)
    assert sorted(name.values()) == sorted(["input", "a-b", "a.b", "a_b", "a_b_2", "A.B-c.d"])
    assert all(re.fullmatch(r"\w+", ident) for ident in nodes)  # ids are plain identifiers
    assert {(name[up], name[down]) for up, down in arrows} == {
        ("input", "a-b"),
        ("a-b", "a.b"),
        ("a.b", "a_b"),
        ("a_b", "a_b_2"),
        ("a-b", "A.B-c.d"),
        ("a_b_2", "A.B-c.d"),
    }
    assert nodes["input"][1] == "input of odd-names.x_1"


def test_ids_cannot_be_mermaid_keywords_and_output_is_stable() -> None:
    wf = Workflow("keywords")
    wf.step(lambda x: x, name="end")
    wf.step(lambda v: v, name="graph", after="end")
    wf.step(lambda v: v, name="subgraph", after="graph")
    text = to_mermaid(wf)
    nodes, _ = parse(text)
    assert not set(nodes) & {"end", "graph", "subgraph", "style", "class", "click"}
    assert sorted(by_label(nodes).values()) == ["end", "graph", "input", "subgraph"]
    assert to_mermaid(wf) == text


def test_a_single_step() -> None:
    wf = Workflow("one")

    @wf.step()
    def only(x: int) -> int:
        return x

    assert to_mermaid(wf) == 'flowchart TD\n  input(("input of one"))\n  n_only["only"]\n  input --> n_only\n'
