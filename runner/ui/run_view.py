"""Everything the run page shows, read once per request: the record, the definition, the
folded state, the history (capped) and the run's lineage."""

from __future__ import annotations

from dataclasses import dataclass

from runner import serialization
from runner.events import ChildRunStarted, FactReused, RunContinuedAsNew, StoredEvent
from runner.reader import StoreReader
from runner.state import WorkflowState
from runner.step_view import StepInfo
from runner.store import RunRecord
from runner.ui.queries import RunQueries, RunRow
from runner.vocabulary import Vocabulary
from runner.workflow import Workflow

MAX_EVENTS_SHOWN = 2_000  # the page shows the latest events of a longer history


class Link(Vocabulary):
    """How two runs are related."""

    CHILD = "child"  # started by a component of its parent
    CONTINUATION = "continuation"  # the parent continued as this run
    FORK = "fork"  # reuses the parent's results upstream of a step
    REPLAY = "replay"  # the same definition and input again


@dataclass(frozen=True, kw_only=True)
class Relative:
    run_id: str
    link: Link
    status: str = ""


@dataclass(frozen=True, kw_only=True)
class RunView:
    record: RunRecord
    workflow: Workflow | None
    definition_error: str  # why the definition could not be loaded here ("" if it could)
    state: WorkflowState | None
    steps: list[StepInfo]
    events: list[StoredEvent]  # the latest MAX_EVENTS_SHOWN
    events_total: int
    parent: Relative | None
    descendants: list[Relative]

    @property
    def cursor(self) -> int:
        return self.record.last_seq


def read_run(reader: StoreReader, queries: RunQueries, run_id: str) -> RunView:
    """The run page's data (RunNotFound for an unknown id)."""
    record = reader.get_run(run_id)
    history = reader.history(run_id)
    workflow: Workflow | None = None
    definition_error = ""
    try:
        loaded = serialization.loads(record.definition)
        workflow = loaded if isinstance(loaded, Workflow) else None
    except Exception as exc:  # the definition's code cannot be imported in this process
        definition_error = f"{type(exc).__name__}: {exc}"
    state = WorkflowState.from_events(workflow, history) if workflow is not None else None
    return RunView(
        record=record,
        workflow=workflow,
        definition_error=definition_error,
        state=state,
        steps=state.steps() if state is not None else [],
        events=history[-MAX_EVENTS_SHOWN:],
        events_total=len(history),
        parent=_parent(reader, record, history),
        descendants=_descendants(reader, queries, run_id, history),
    )


def _parent(reader: StoreReader, record: RunRecord, history: list[StoredEvent]) -> Relative | None:
    parent_id = record.parent_run_id
    if parent_id is None:
        return None
    try:
        parent = reader.get_run(parent_id)
    except Exception:  # deleted since
        return Relative(run_id=parent_id, link=_link_from_own_history(history))
    link = _link_from_own_history(history)
    if link is Link.REPLAY:  # or a child or continuation: the parent's history says which
        for stored in reader.history(parent_id):
            event = stored.event
            if isinstance(event, ChildRunStarted) and event.child_run_id == record.run_id:
                link = Link.CHILD
            elif isinstance(event, RunContinuedAsNew) and event.successor_run_id == record.run_id:
                link = Link.CONTINUATION
    return Relative(run_id=parent_id, link=link, status=parent.status.value)


def _link_from_own_history(history: list[StoredEvent]) -> Link:
    """A fork's first events reuse its parent's results; a replay's do not."""
    return Link.FORK if any(isinstance(s.event, FactReused) for s in history[:50]) else Link.REPLAY


def _descendants(reader: StoreReader, queries: RunQueries, run_id: str, history: list[StoredEvent]) -> list[Relative]:
    children = {e.event.child_run_id for e in history if isinstance(e.event, ChildRunStarted)}
    successors = {e.event.successor_run_id for e in history if isinstance(e.event, RunContinuedAsNew)}
    relatives: list[Relative] = []
    for row in queries.descendants(run_id):
        relatives.append(
            Relative(run_id=row.run_id, link=_link_of(reader, row, children, successors), status=row.status)
        )
    return relatives


def _link_of(reader: StoreReader, row: RunRow, children: set[str], successors: set[str]) -> Link:
    if row.run_id in children:
        return Link.CHILD
    if row.run_id in successors:
        return Link.CONTINUATION
    return _link_from_own_history(reader.read_events(row.run_id, 0, 50))
