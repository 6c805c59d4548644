"""The names Ray shows for this project's actors and step tasks (pure: no Ray here).

A Ray user looks at ``ray list actors``, ``ray list tasks``, the dashboard and the
timeline; the names below make them say what each process is:

- the Runner actor: ``runner`` in the namespace it supervises (the name clients
  look it up by, so it does not change);
- the Store actor: ``runner:<namespace>:store:<token>`` (``token`` new for each
  Runner start, so a restarted Runner never meets its predecessor's name);
- a Worker actor: ``runner:<namespace>:worker-<id>`` (the worker id the Runner's
  logs and leases use);
- a step task: ``<workflow>.<step>@<run id>``, a map item's ``<workflow>.<step>[<item>]@<run id>``,
  so ``ray list tasks --filter name=...`` finds a run's tasks and the timeline groups
  a workflow's steps.
"""

from __future__ import annotations

PREFIX = "runner"


def store_actor_name(namespace: str, token: str) -> str:
    """The Store actor's Ray name, e.g. ``runner:orders:store:1a2b3c4d5e6f``."""
    return f"{PREFIX}:{namespace}:store:{token}"


def worker_actor_name(namespace: str, worker_id: str) -> str:
    """A Worker actor's Ray name, e.g. ``runner:orders:worker-1a2b3c4d5e6f``."""
    return f"{PREFIX}:{namespace}:{worker_id}"


def step_task_name(workflow: str, node: str, item: int | None, run_id: str) -> str:
    """A step task's Ray name, e.g. ``orders.charge@orders-1a2b`` or ``orders.resize[3]@orders-1a2b``."""
    where = node if item is None else f"{node}[{item}]"
    return f"{workflow}.{where}@{run_id}"
