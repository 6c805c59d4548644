"""The worker's side of child runs (:mod:`runner.child_runs`): create them, start them, read their end.

A :class:`ChildStarter` serves one run's turn. For each child the run's log
records as started (``ChildRunStarted``) it stores the child run, idempotently
by its id, and asks the Runner to start it; once a turn, since a turn that
follows a crash does not know whether the last one got that far. It then
reads the open children's records and, for each that ended, gives the
``ChildRunEnded`` event to record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from runner import serialization
from runner.child_runs import child_ended, child_failed
from runner.continuation import load_sub_workflow
from runner.errors import InvalidArgument
from runner.events import ChildRunEnded, RunSubmitted
from runner.serialization import encode_event
from runner.shipping import pickle_definition
from runner.store import NewRun
from runner.store_handle import StoreHandle
from runner.workflow import Workflow

if TYPE_CHECKING:
    from runner.state import WorkflowState

log = logging.getLogger("runner")

RUNNER_ANSWER_TIMEOUT = 10.0  # seconds to wait for the Runner to take a child; a Runner start takes it anyway


class ChildStarter:
    def __init__(self, run_id: str, store: StoreHandle, runner: Any = None) -> None:
        self.run_id = run_id
        self.store = store
        self.runner = runner  # the Runner actor's handle; None: the children stay pending (tests)
        self._started: set[str] = set()  # child run ids stored and handed to the Runner this turn

    async def start(self, state: WorkflowState) -> list[ChildRunEnded]:
        """Store and start the open children not started this turn; a ChildRunEnded (failed) for
        each whose input its workflow refuses."""
        refused: list[ChildRunEnded] = []
        for node_name, child_id in state.open_children().items():
            if child_id in self._started:
                continue
            try:
                workflow, value = await self._child_of(state, node_name)
                new = self._new_run(workflow, child_id, value, state.trace_context)
            except InvalidArgument as exc:
                refused.append(child_failed(node_name, child_id, "refused", str(exc)))
                continue
            await self.store.create_run(new)  # durable; the same run if an earlier turn stored it
            self._started.add(child_id)
            await self._hand_to_runner(new)
        return refused

    async def ended(self, state: WorkflowState) -> list[ChildRunEnded]:
        """A ChildRunEnded for each open child whose run has ended."""
        children = state.open_children()
        node_of = {child: node for node, child in children.items()}
        events: list[ChildRunEnded] = []
        for record in await self.store.get_runs(list(children.values())):
            if record.status.is_terminal:
                last = await self.store.last_event(record.run_id)
                last_event = None if last is None else last.event
                events.append(child_ended(node_of[record.run_id], record.run_id, last_event, record.status))
        return events

    async def _child_of(self, state: WorkflowState, node_name: str) -> tuple[Workflow, Any]:
        """The workflow and input of ``node_name``'s child: a child-run component's, or the
        sub-workflow a step continued into (runner.continuation), read from its fact."""
        sub_workflow = state.sub_workflow(node_name)
        if sub_workflow is not None:
            blob = await self.store.load_fact(sub_workflow.hash)
            sub = load_sub_workflow(sub_workflow, lambda _: serialization.loads(blob))
            return sub.workflow, sub.input
        node = state.workflow.nodes[node_name]
        assert node.child is not None
        return node.child, state.results()[node.after[0]] if node.after else state.input

    def _new_run(
        self, workflow: Workflow, child_id: str, value: Any, trace_context: dict[str, str] | None = None
    ) -> NewRun:
        checked = workflow.check_input(value)
        submitted = RunSubmitted(
            workflow=workflow.name,
            input=checked,
            definition_hash=workflow.definition_hash(),
            parent_run_id=self.run_id,
            trace_context=trace_context,  # the child is part of its parent's trace
        )
        encode_event(submitted)  # an input that cannot be stored is refused before anything is written
        return NewRun(
            run_id=child_id,
            workflow=workflow.name,
            definition=pickle_definition(workflow),
            definition_hash=workflow.definition_hash(),
            events=(submitted,),
            parent_run_id=self.run_id,
        )

    async def _hand_to_runner(self, new: NewRun) -> None:
        """Ask the Runner to start the stored child (its submit is idempotent by id). Should it not
        answer, the child stays pending: the next Runner start, or the parent's next turn, starts it."""
        if self.runner is None:
            return
        try:
            call = self.runner.submit.remote(new)
            await asyncio.wait_for(asyncio.wrap_future(call.future()), RUNNER_ANSWER_TIMEOUT)
        except Exception as exc:
            self._started.discard(new.run_id)
            log.warning("run %s: could not hand child run %s to the Runner: %s", self.run_id, new.run_id, exc)
