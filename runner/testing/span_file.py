"""A TracerProvider for every Ray process of a test: spans written to a file as JSON lines.

An example of configuring traces in Ray's processes, used by the Ray tests and the benchmark:
:func:`runtime_env` names this module's :func:`setup` in ``RUNNER_TRACING_SETUP`` and the
file in ``RUNNER_SPAN_FILE``; each process that inherits those (the Runner's actors, their
step tasks) sets its provider before its first span. Needs ``opentelemetry-sdk``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from runner.tracing import SETUP_ENV_VAR

ENV_VAR = "RUNNER_SPAN_FILE"


def runtime_env(path: Path) -> dict[str, Any]:
    """The runtime_env fields that make every Ray process of a job write its spans to ``path``."""
    return {"env_vars": {SETUP_ENV_VAR: f"{__name__}:setup", ENV_VAR: str(path)}}


def setup() -> None:
    """Set this process's TracerProvider (the application's part, not the runner's)."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process; a line per span
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n"))
    )
    trace.set_tracer_provider(provider)


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans written to ``path`` so far (a line still being written is left for later)."""
    if not path.exists():
        return []
    spans = []
    for line in path.read_text().splitlines():
        try:
            spans.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return spans
