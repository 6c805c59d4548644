"""Approvals: a wait that a person answers with approve or reject.

``wf.wait_for_approval("deploy")`` is a wait (:class:`~runner.workflow.NodeKind` WAIT)
on the reserved signal ``approval:deploy``. ``client.approve`` / ``client.reject`` put
a :class:`Decision` in the run's inbox under that signal with the dedupe key
``approval:deploy``, so a run stores at most one decision per approval: the first
decision stands, the same call sent again returns it, another decision is refused
(:class:`~runner.errors.ApprovalAlreadyDecided`). The worker records the decision it
takes as an :class:`~runner.events.ApprovalDecided` event (who, when, the comment),
then what the workflow said a rejection does (:class:`OnReject`). Pure: no Ray, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runner.errors import ApprovalAlreadyDecided, InvalidArgument, UnknownApproval
from runner.events import ApprovalDecided
from runner.vocabulary import Vocabulary

SIGNAL_PREFIX = "approval:"
"""Approval signals are named ``approval:NAME``; ':' is not allowed in a wait_for signal name,
so no plain wait can take a decision by accident."""

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OnReject(Vocabulary):
    """What a rejection does to the run."""

    FAIL = "fail"  # the run fails with ApprovalRejected (naming the approval and who rejected)
    SKIP = "skip"  # the approval is skipped; components whose upstreams were all skipped are too
    BRANCH = "branch"  # the Decision is the approval's value either way; downstream branches on .approved


def is_approval_name(name: object) -> bool:
    """A plain identifier: letters, digits and '_', not starting with a digit."""
    return isinstance(name, str) and bool(IDENTIFIER.match(name))


def signal_name(approval: str) -> str:
    """The inbox signal (and dedupe key) that carries ``approval``'s decision."""
    return SIGNAL_PREFIX + approval


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Who decided an approval, when (unix seconds) and why; the approval's value downstream."""

    approval: str
    approved: bool
    by: str
    comment: str = ""
    decided_at: float = 0.0

    def to_payload(self) -> dict[str, Any]:
        """The decision as a signal payload (plain JSON, readable from SQL)."""
        return {
            "approval": self.approval,
            "approved": self.approved,
            "by": self.by,
            "comment": self.comment,
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_payload(cls, approval: str, payload: object) -> Decision | None:
        """The decision a signal payload holds; None if it holds none (a hand-sent signal)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("approved"), bool):
            return None
        by, comment, at = payload.get("by"), payload.get("comment", ""), payload.get("decided_at", 0.0)
        if not isinstance(by, str) or not isinstance(comment, str) or not isinstance(at, (int, float)):
            return None
        return cls(approval=approval, approved=payload["approved"], by=by, comment=comment, decided_at=float(at))

    @classmethod
    def of(cls, event: ApprovalDecided) -> Decision:
        """The decision an ApprovalDecided event records."""
        return cls(
            approval=event.approval,
            approved=event.approved,
            by=event.by,
            comment=event.comment,
            decided_at=event.decided_at,
        )

    def same_choice(self, other: Decision) -> bool:
        """The same decision by the same person with the same comment (the time aside)."""
        return (self.approved, self.by, self.comment) == (other.approved, other.by, other.comment)

    @property
    def verb(self) -> str:
        return "approved" if self.approved else "rejected"


def check_decision_args(approval: object, by: object, comment: object) -> None:
    """InvalidArgument unless the approval name is an identifier, ``by`` names someone and
    ``comment`` is text."""
    if not is_approval_name(approval):
        raise InvalidArgument(f"approval name must be a plain identifier (letters, digits, '_'), got {approval!r}")
    if not isinstance(by, str) or not by.strip():
        raise InvalidArgument(f"by= must name who decides (a non-empty string), got {by!r}")
    if not isinstance(comment, str):
        raise InvalidArgument(f"comment must be a string, got {comment!r}")


def check_known(run_id: str, approval: str, known: tuple[str, ...]) -> None:
    """UnknownApproval unless the run's workflow waits for ``approval``."""
    if approval not in known:
        raise UnknownApproval(run_id, approval, list(known))


def stored_decision(run_id: str, asked: Decision, stored_payload: object) -> Decision:
    """The decision that stands once ``asked`` was posted and the inbox answered with
    ``stored_payload``: ``asked`` itself, or the same choice made before (a call sent again);
    a different earlier decision raises ApprovalAlreadyDecided."""
    stored = Decision.from_payload(asked.approval, stored_payload)
    if stored is None:
        raise InvalidArgument(
            f"the inbox of run {run_id!r} holds a signal {signal_name(asked.approval)!r} that is no decision; "
            "approval signals are sent by approve/reject only"
        )
    if not stored.same_choice(asked):
        raise ApprovalAlreadyDecided(run_id, asked.approval, stored.verb, stored.by)
    return stored
