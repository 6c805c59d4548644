"""A workflow's graph as SVG, each component coloured by its status (map items as progress).

Drawn server-side, no script: components are placed in layers by their longest
path from the input (a component sits one layer below its deepest upstream),
and arrows run from each upstream to its component. Pure: no Ray, no I/O.
"""

from __future__ import annotations

from html import escape

from runner.step_view import StepInfo, StepStatus
from runner.workflow import Workflow

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 170, 46, 30, 44, 12

STATUS_COLOURS: dict[str, str] = {
    StepStatus.PENDING: "#e5e7eb",
    StepStatus.READY: "#dbeafe",
    StepStatus.RUNNING: "#93c5fd",
    StepStatus.RETRYING: "#fcd34d",
    StepStatus.WAITING: "#c4b5fd",
    StepStatus.DONE: "#86efac",
    StepStatus.SKIPPED: "#f3f4f6",
    StepStatus.FAILED: "#fca5a5",
}


def layers(workflow: Workflow) -> list[list[str]]:
    """Component names by layer: a component's layer is one more than its deepest upstream's."""
    depth: dict[str, int] = {}
    for name, node in workflow.nodes.items():  # definition order lists upstreams first
        depth[name] = 1 + max((depth.get(up, 0) for up in node.after), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name, d in depth.items():
        out[d].append(name)
    return out


def _caption(step: StepInfo | None) -> str:
    if step is None:
        return ""
    text = step.status.value if isinstance(step.status, StepStatus) else str(step.status)
    if step.items is not None:
        text += f" {step.items_done or 0}/{step.items}"
    if step.attempts > max(1, step.items or 0):  # a map's attempts add up its items'
        text += f" ×{step.attempts}"
    return text


def to_svg(workflow: Workflow, steps: list[StepInfo]) -> str:
    """The graph as one ``<svg>`` element; each box has ``data-node`` and ``data-status``."""
    by_name = {s.name: s for s in steps}
    rows = layers(workflow)
    widest = max((len(r) for r in rows), default=1)
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = MARGIN * 2 + len(rows) * BOX_H + max(0, len(rows) - 1) * GAP_Y
    place: dict[str, tuple[float, float]] = {}
    for depth, names in enumerate(rows):
        offset = (width - (len(names) * BOX_W + (len(names) - 1) * GAP_X)) / 2
        for index, name in enumerate(names):
            place[name] = (offset + index * (BOX_W + GAP_X), MARGIN + depth * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="graph of {escape(workflow.name)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
    ]
    for name, node in workflow.nodes.items():
        x, y = place[name]
        for up in node.after:
            ux, uy = place[up]
            x1, y1, x2, y2 = ux + BOX_W / 2, uy + BOX_H, x + BOX_W / 2, y
            mid = (y1 + y2) / 2
            parts.append(
                f'<path d="M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2 - 2:.0f}" '
                'fill="none" stroke="#6b7280" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for name, node in workflow.nodes.items():
        x, y = place[name]
        step = by_name.get(name)
        status = str(step.status) if step is not None else "pending"
        fill = STATUS_COLOURS.get(status, "#e5e7eb")
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<g class="node" data-node="{escape(name)}" data-status="{escape(status)}">'
            f"<title>{escape(name)} ({node.kind.value}): {escape(_caption(step))}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="{14 if node.kind.value in ("wait", "sleep") else 5}" '
            f'fill="{fill}" stroke="#374151" stroke-width="{2 if node.kind.value == "map" else 1}"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" class="name">{escape(label)}</text>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" class="caption">'
            f"{escape(node.kind.value)} · {escape(_caption(step))}</text>"
            "</g>"
        )
        if step is not None and step.items:
            done = (step.items_done or 0) / step.items
            parts.append(
                f'<rect x="{x + 4:.0f}" y="{y + BOX_H - 6:.0f}" width="{(BOX_W - 8) * done:.1f}" height="3" fill="#15803d"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
