"""One multi-node Ray cluster on this machine for the tests of this directory.

``ray.cluster_utils.Cluster``: a head (1 CPU, with the dashboard, so Ray's state API and Job
Submission API answer) and two more nodes (1 CPU each; the second offers the custom resource
``gpu_node``). Health checks are lowered so a removed node is seen gone in about a second.
The cluster is shared by the package's modules (starting it costs seconds) and cannot share
the single-node instance of tests/ray: ``make test`` runs this directory in a pytest process
of its own, and the fixture shuts down any Ray instance this process had first.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from runner.client import Client, connect
from runner.runner import RunnerConfig

HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "300",
    "RAY_health_check_timeout_ms": "300",
    "RAY_health_check_failure_threshold": "3",
    "RAY_metrics_report_interval_ms": "1000",  # Ray's metrics reach the endpoint within a second (default 10)
}
GPU_RESOURCE = "gpu_node"


@dataclass(frozen=True)
class Nodes:
    """The cluster and its three nodes' ids."""

    cluster: Cluster
    head: str
    plain: str
    gpu: str
    dashboard: str  # http://host:port, the Job Submission API's address
    metrics: tuple[str, ...]  # each node's Prometheus endpoint (Ray's metrics export port)

    @property
    def all(self) -> set[str]:
        return {self.head, self.plain, self.gpu}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STARTS = 3  # tries at starting the cluster: Ray gives a node 30 s to register, which a loaded machine can miss


def _start_cluster() -> tuple[Cluster, Any, Any, tuple[int, ...]]:
    """The head, a plain node and the gpu node, joined by this driver; started afresh if a node
    did not come up in time (Ray's fixed 30 s; seen with other test suites loading the machine)."""
    for attempt in range(1, STARTS + 1):
        cluster: Cluster | None = None
        ports = (_free_port(), _free_port(), _free_port())
        try:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "include_dashboard": True,
                    "dashboard_port": _free_port(),
                    "metrics_export_port": ports[0],
                    "dashboard_agent_listen_port": _free_port(),  # not Ray's fixed default: another
                    # Ray instance on the machine may hold it, and job submission needs this agent
                },
            )
            plain = cluster.add_node(num_cpus=1, metrics_export_port=ports[1], dashboard_agent_listen_port=_free_port())
            gpu = cluster.add_node(
                num_cpus=1,
                resources={GPU_RESOURCE: 2},
                metrics_export_port=ports[2],
                dashboard_agent_listen_port=_free_port(),
            )
            ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
            cluster.wait_for_nodes()
            return cluster, plain, gpu, ports
        except Exception:
            if ray.is_initialized():
                ray.shutdown()
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.shutdown()
            if attempt == STARTS:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="package")
def nodes() -> Iterator[Nodes]:
    if ray.is_initialized():
        ray.shutdown()
    saved = {name: os.environ.get(name) for name in [*HEALTH_CHECKS, "PATH"]}
    os.environ.update(HEALTH_CHECKS)
    # a job's entrypoint runs `python`: this interpreter's, as a cluster's image has runner installed
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    try:
        cluster, plain, gpu, ports = _start_cluster()
        try:
            yield Nodes(
                cluster=cluster,
                head=cluster.head_node.node_id,
                plain=plain.node_id,
                gpu=gpu.node_id,
                dashboard="http://" + str(cluster.head_node.address_info["webui_url"]),
                metrics=tuple(f"http://127.0.0.1:{port}/metrics" for port in ports),
            )
        finally:
            ray.shutdown()
            cluster.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def make_client(nodes: Nodes, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    """``make_client(max_workers=None)``: a Client on a fresh namespace and DuckDB file; its Runner
    is killed at teardown (its Store actor and workers go with it)."""
    clients: list[Client] = []

    def make(max_workers: int | None = None) -> Client:
        namespace = f"c-{uuid.uuid4().hex[:10]}"
        store = "duckdb:///" + str(tmp_path / f"{namespace}.duckdb")
        client = connect(store=store, namespace=namespace, config=RunnerConfig(max_workers=max_workers or 3))
        clients.append(client)
        return client

    yield make
    for client in clients:
        with contextlib.suppress(Exception):  # already gone
            ray.kill(client.runner, no_restart=True)
