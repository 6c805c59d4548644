"""What ``Client.signal`` returns: the signal's id in the run's inbox, and whether it was a duplicate.

A signal sent with a ``key`` is stored once per run and key: sent again with the
same key (by this process or another, before or after a restart), nothing is
stored and the answer is the first signal's id with ``duplicate`` True. Each
call has an identity of its own (``call_id``), stored with the signal, so a call
that Ray sent again after a Runner restart is not taken for a duplicate of itself.
Pure: no Ray, no I/O.
"""

from __future__ import annotations

from runner.store import Signal, check_dedupe_key

USER_KEY_PREFIX = "key:"
"""Inbox dedupe keys of signals sent with a user's ``key`` (``key:<key>``), apart from the
calls' own identities (uuids) and approval decisions (``approval:<name>``)."""


class SignalId(int):
    """The signal's id in its run's inbox (an ``int``), with ``duplicate``: True if a signal with
    the same key was stored before and this call stored nothing."""

    duplicate: bool

    def __new__(cls, signal_id: int, *, duplicate: bool = False) -> SignalId:
        value = super().__new__(cls, signal_id)
        value.duplicate = duplicate
        return value

    def __str__(self) -> str:  # printed as the number it is
        return int.__repr__(self)

    def __repr__(self) -> str:
        return f"SignalId({int(self)}, duplicate={self.duplicate})"


def dedupe_key_for(key: str | None, call_id: str) -> str:
    """The inbox dedupe key of a signal sent with user ``key`` (None: the call's own identity)."""
    check_dedupe_key(key, "key")
    return call_id if key is None else USER_KEY_PREFIX + key


def answer(signal: Signal, call_id: str) -> SignalId:
    """What the call ``call_id`` that stored or found ``signal`` returns."""
    return SignalId(signal.signal_id, duplicate=signal.call_id != call_id)
