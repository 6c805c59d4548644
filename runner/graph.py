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


def _ident(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


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
    lines = ["flowchart TD", f"  input((input of {workflow.name}))"]
    for node in workflow.nodes.values():
        opening, closing = _SHAPES[node.kind]
        lines.append(f'  {_ident(node.name)}{opening}"{_label(node)}"{closing}')
    for node in workflow.nodes.values():
        if not node.after and node.takes_input:
            lines.append(f"  input --> {_ident(node.name)}")
        for up in node.after:
            lines.append(f"  {_ident(up)} --> {_ident(node.name)}")
    return "\n".join(lines) + "\n"
