"""A workflow's graph as Mermaid text (``runner graph MODULE:WORKFLOW``). Pure."""

from __future__ import annotations

import re

from runner.workflow import Node, NodeKind, Workflow

_SHAPES = {
    NodeKind.STEP: ("[", "]"),
    NodeKind.RULE: ("{", "}"),
    NodeKind.MAP: ("[[", "]]"),
    NodeKind.WAIT: ("([", "])"),
    NodeKind.SLEEP: ("([", "])"),
}


def _idents(workflow: Workflow) -> dict[str, str]:
    """A Mermaid id per component: ``n_`` and its name with '.' and '-' as '_', numbered when two collide."""
    idents: dict[str, str] = {}
    taken: set[str] = set()
    for name in workflow.nodes:
        base = ident = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        count = 1
        while ident in taken:  # "a-b", "a.b" and "a_b" are three components
            count += 1
            ident = f"{base}_{count}"
        taken.add(ident)
        idents[name] = ident
    return idents


def _label(node: Node) -> str:
    if node.kind is NodeKind.WAIT:
        text = f"wait for {node.signal}"
    elif node.kind is NodeKind.SLEEP:
        text = f"sleep {node.seconds:g}s"
    elif node.kind is NodeKind.MAP:
        text = f"map {node.name}"
    elif node.kind is NodeKind.RULE:
        text = f"rule {node.name}"
    else:
        text = node.name
    if node.name not in text:
        text = f"{node.name}: {text}"
    extras = []
    if node.policy.retries:
        extras.append(f"retries {node.policy.retries}")
    if node.inline:
        extras.append("inline")
    if extras:
        text += " (" + ", ".join(extras) + ")"
    return text.replace('"', "'")


def to_mermaid(workflow: Workflow) -> str:
    """``flowchart TD`` text: one shape per component kind, one arrow per dependency."""
    ident = _idents(workflow)
    lines = ["flowchart TD", f'  input(("input of {workflow.name}"))']
    for node in workflow.nodes.values():
        opening, closing = _SHAPES[node.kind]
        lines.append(f'  {ident[node.name]}{opening}"{_label(node)}"{closing}')
    for node in workflow.nodes.values():
        if not node.after and node.takes_input:
            lines.append(f"  input --> {ident[node.name]}")
        for up in node.after:
            lines.append(f"  {ident[up]} --> {ident[node.name]}")
    return "\n".join(lines) + "\n"
