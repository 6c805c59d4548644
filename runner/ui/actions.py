"""What the run page's buttons do: one client call per action, from a submitted form.

Only a server started with ``allow_actions`` routes here; without it the POST
endpoints answer 403 and the buttons are not drawn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.errors import InvalidArgument
from runner.vocabulary import Vocabulary

if TYPE_CHECKING:
    from runner.client import Client


class Action(Vocabulary):
    SIGNAL = "signal"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    REPLAY = "replay"
    FORK = "fork"


@dataclass(frozen=True, kw_only=True)
class Done:
    """What an action did: the run to show next and a line to say so."""

    run_id: str
    notice: str


def perform(client: Client, run_id: str, action: Action, form: Mapping[str, str]) -> Done:
    """Carry out ``action`` on ``run_id``; the client's errors (RunNotFound, IllegalTransition ...) pass through."""
    if action is Action.SIGNAL:
        name = _required(form, "name")
        payload_text = form.get("payload", "").strip()
        try:
            payload = json.loads(payload_text) if payload_text else None
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"the payload is not valid JSON ({exc.msg}): {payload_text!r}") from None
        signal_id = client.signal(run_id, name, payload)
        return Done(run_id=run_id, notice=f"signal {name} #{signal_id} stored")
    if action in (Action.APPROVE, Action.REJECT):
        approval = _required(form, "approval")
        decide = client.approve if action is Action.APPROVE else client.reject
        decision = decide(run_id, approval, by=_required(form, "by"), comment=form.get("comment", ""))
        return Done(run_id=run_id, notice=f"approval {approval} {decision.verb} by {decision.by}")
    if action is Action.CANCEL:
        return Done(run_id=run_id, notice=f"cancel asked: {client.cancel(run_id).status.value}")
    if action is Action.PAUSE:
        return Done(run_id=run_id, notice=f"pause asked: {client.pause(run_id).status.value}")
    if action is Action.RESUME:
        client.resume(run_id, reason=form.get("reason", ""))
        return Done(run_id=run_id, notice="resumed")
    if action is Action.REPLAY:
        handle = client.replay(run_id)
        return Done(run_id=handle.run_id, notice=f"replay of {run_id}")
    handle = client.fork(run_id, from_step=_required(form, "from_step"))
    return Done(run_id=handle.run_id, notice=f"fork of {run_id} from step {form['from_step']}")


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InvalidArgument(f"the form needs a {name!r}")
    return value
