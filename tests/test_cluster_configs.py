"""The cluster configs shipped with the project are checked, not just examples that may rot.

``ray_cluster.yaml`` against the autoscaler schema shipped in the installed ``ray`` package;
the KubeRay manifest (no CRD schema offline) for the structure a RayCluster needs and for the
store's volume on the head.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
KUBERAY = ROOT / "deploy" / "kuberay" / "raycluster.yaml"


def test_ray_cluster_yaml_is_valid_against_rays_autoscaler_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    assert "--dashboard-host=0.0.0.0" in " ".join(config["head_start_ray_commands"])  # the Jobs API answers


def test_rays_schema_refuses_what_it_should() -> None:
    """The check has teeth: a misspelt field fails it."""
    schema = json.loads(SCHEMA.read_text())
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    config["min_worker"] = 2
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as exc:
        assert "min_worker" in exc.message
    else:
        raise AssertionError("a misspelt field passed Ray's schema")


def _documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(KUBERAY.read_text())}


def _containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = group["template"]["spec"]["containers"]
    assert containers and all(c.get("name") and c.get("image") for c in containers)
    return containers


def test_kuberay_raycluster_has_what_a_raycluster_needs() -> None:
    docs = _documents()
    cluster = docs["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["metadata"]["name"]
    spec = cluster["spec"]
    head = spec["headGroupSpec"]
    for group in [head, *spec["workerGroupSpecs"]]:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())  # KubeRay takes strings
        _containers(group)
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    ports = {p["containerPort"] for p in _containers(head)[0]["ports"]}
    assert 8265 in ports and head["rayStartParams"]["dashboard-host"] == "0.0.0.0"


def test_kuberay_head_keeps_the_store_on_a_persistent_volume() -> None:
    docs = _documents()
    claim = docs["PersistentVolumeClaim"]
    assert claim["apiVersion"] == "v1" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]  # one writer: the head
    head = docs["RayCluster"]["spec"]["headGroupSpec"]
    volumes = {v["name"]: v for v in head["template"]["spec"]["volumes"]}
    [mount] = _containers(head)[0]["volumeMounts"]
    assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "duckdb:///" + mount["mountPath"] + "/store.duckdb" in KUBERAY.read_text()  # the store URL documented
    for group in docs["RayCluster"]["spec"]["workerGroupSpecs"]:
        assert "volumes" not in group["template"]["spec"]  # workers never open the store
