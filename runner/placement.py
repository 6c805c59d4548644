"""Where the Runner starts each Worker actor: round robin over the cluster's alive nodes.

Ray's ``SPREAD`` strategy is best effort: measured on a three-node cluster (tests/cluster),
three zero-CPU workers started together sometimes all landed on one node, and with a soft
node affinity two of three still shared a node. Each new worker is pinned to the next alive
node instead (``NodeAffinitySchedulingStrategy(soft=False)``; a worker takes no CPU, so any
alive node can take it). If that node dies before the worker starts, the worker is lost like
any other and the Runner starts another on a node alive then. On one machine there is one
node and nothing changes.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


class NodeRotation:
    """Hands out one alive node after another, in a stable order (node id)."""

    def __init__(self) -> None:
        self._handed_out = 0

    def next_strategy(self) -> Any:
        """The scheduling strategy for the next worker (``"SPREAD"`` if Ray lists no alive node)."""
        nodes = sorted(str(node["NodeID"]) for node in ray.nodes() if node.get("Alive"))
        if not nodes:
            return "SPREAD"
        node = nodes[self._handed_out % len(nodes)]
        self._handed_out += 1
        return NodeAffinitySchedulingStrategy(node_id=node, soft=False)
