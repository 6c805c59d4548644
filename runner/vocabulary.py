"""The base of every vocabulary in ray-runner: a ``str`` enum that prints as its value.

Members compare equal to their value (``RunStatus.FAILED == "failed"``), so a value
read from the store or a log needs no conversion to be compared, and ``str()`` and
f-strings show the plain word. Pure: no Ray, no I/O.
"""

from __future__ import annotations

import enum


class Vocabulary(str, enum.Enum):
    """A closed set of words: subclass it and list the members."""

    def __str__(self) -> str:
        return str(self.value)
