"""Event payloads and values as short, safe text for the page: large values truncated,
facts stored apart shown as links that load them on demand. Pure."""

from __future__ import annotations

import dataclasses
from html import escape
from typing import Any

from runner.events import SKIPPED, ErrorInfo, Event, FactRef

MAX_VALUE_CHARS = 300  # a value in the history is cut to this many characters
MAX_FACT_CHARS = 100_000  # a loaded fact is cut to this many


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def value_html(value: Any, fact_url: str = "/facts/") -> str:
    """A value as escaped HTML; a FactRef as a link to load it."""
    if isinstance(value, FactRef):
        size = f"{value.size:,} bytes" + (f", {value.length} items" if value.length is not None else "")
        return f'<a class="fact" href="{fact_url}{escape(value.hash)}">fact {escape(value.hash[:12])}… ({size})</a>'
    if isinstance(value, ErrorInfo):
        return f'<span class="error">{escape(truncate(f"{value.type}: {value.message}"))}</span>'
    if value is SKIPPED:
        return "SKIPPED"
    try:
        text = repr(value)
    except Exception as exc:  # a user value whose __repr__ raises
        text = f"<unprintable {type(value).__name__}: {exc}>"
    return escape(truncate(text))


def fields_html(event: Event) -> str:
    """An event's fields (but its time) as ``name=value`` pairs."""
    pairs = []
    for f in dataclasses.fields(event):
        if f.name == "at":
            continue
        value = getattr(event, f.name)
        if value is None or value == "":
            continue
        pairs.append(f'<span class="field"><b>{escape(f.name)}</b>={value_html(value)}</span>')
    return " ".join(pairs)
