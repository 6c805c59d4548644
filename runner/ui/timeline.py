"""A run's timeline (a Gantt): one bar per attempt of each step or map item, as SVG.

Built from the history alone: an attempt starts at its StepStarted and ends at
the FactProduced, StepFailed or StepLost of the same component and item (or is
still running, drawn up to ``now``). Pure: no Ray, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from runner.events import FactProduced, StepFailed, StepLost, StepStarted, StoredEvent
from runner.vocabulary import Vocabulary

MAX_ROWS = 150  # a map of thousands of items is summarised past this many rows
ROW_H, LABEL_W, CHART_W, MARGIN = 18, 190, 640, 8


class Outcome(Vocabulary):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    LOST = "lost"


OUTCOME_COLOURS = {
    Outcome.RUNNING: "#60a5fa",
    Outcome.DONE: "#22c55e",
    Outcome.FAILED: "#ef4444",
    Outcome.LOST: "#a8a29e",
}


@dataclass(frozen=True, kw_only=True)
class Bar:
    node: str
    item: int | None
    attempt: int
    start: float
    end: float | None  # None: still running
    outcome: Outcome

    @property
    def label(self) -> str:
        return self.node if self.item is None else f"{self.node}[{self.item}]"


def bars(history: list[StoredEvent]) -> list[Bar]:
    """Every attempt in the history, in the order they started."""
    open_: dict[tuple[str, int | None], tuple[int, float]] = {}
    done: list[Bar] = []
    for stored in history:
        event = stored.event
        if isinstance(event, StepStarted):
            open_[(event.node, event.item)] = (event.attempt, event.at)
        elif isinstance(event, (FactProduced, StepFailed, StepLost)):
            started = open_.pop((event.node, event.item), None)
            if started is None:
                continue  # an inline step or a reused result: nothing ran as a task
            outcome = (
                Outcome.DONE
                if isinstance(event, FactProduced)
                else Outcome.FAILED
                if isinstance(event, StepFailed)
                else Outcome.LOST
            )
            done.append(
                Bar(
                    node=event.node,
                    item=event.item,
                    attempt=started[0],
                    start=started[1],
                    end=event.at,
                    outcome=outcome,
                )
            )
    for (node, item), (attempt, start) in open_.items():
        done.append(Bar(node=node, item=item, attempt=attempt, start=start, end=None, outcome=Outcome.RUNNING))
    return sorted(done, key=lambda b: (b.start, b.label))


def to_svg(all_bars: list[Bar], now: float) -> str:
    """The Gantt as one ``<svg>``: a row per component (and map item), a bar per attempt."""
    if not all_bars:
        return '<p class="muted">No step has started yet.</p>'
    rows: list[str] = []
    for bar in all_bars:
        if bar.label not in rows:
            rows.append(bar.label)
    hidden = max(0, len(rows) - MAX_ROWS)
    shown = set(rows[:MAX_ROWS])
    t0 = min(b.start for b in all_bars)
    t1 = max(max((b.end or now) for b in all_bars), t0 + 1e-3)
    scale = CHART_W / (t1 - t0)
    height = MARGIN * 2 + (min(len(rows), MAX_ROWS) + 1) * ROW_H
    width = LABEL_W + CHART_W + MARGIN * 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline">',
        f'<text x="{LABEL_W}" y="{MARGIN + 11}" class="axis">0 s</text>',
        f'<text x="{LABEL_W + CHART_W}" y="{MARGIN + 11}" text-anchor="end" class="axis">{t1 - t0:.3f} s</text>',
    ]
    for index, label in enumerate(rows[:MAX_ROWS]):
        y = MARGIN + (index + 1) * ROW_H
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 12}" text-anchor="end" class="label">{escape(label)}</text>')
    row_of = {label: index for index, label in enumerate(rows[:MAX_ROWS])}
    for bar in all_bars:
        if bar.label not in shown:
            continue
        y = MARGIN + (row_of[bar.label] + 1) * ROW_H + 3
        x = LABEL_W + (bar.start - t0) * scale
        w = max(2.0, ((bar.end or now) - bar.start) * scale)
        seconds = (bar.end or now) - bar.start
        parts.append(
            f'<rect class="bar" data-node="{escape(bar.node)}" data-outcome="{bar.outcome.value}" x="{x:.1f}" y="{y}" '
            f'width="{w:.1f}" height="{ROW_H - 6}" fill="{OUTCOME_COLOURS[bar.outcome]}">'
            f"<title>{escape(bar.label)} attempt {bar.attempt}: {bar.outcome.value}, {seconds:.3f} s</title></rect>"
        )
    parts.append("</svg>")
    if hidden:
        parts.append(f'<p class="muted">{hidden} more rows (map items) not drawn.</p>')
    return "".join(parts)
