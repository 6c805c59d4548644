"""Which settings differ between a running Runner's config and the one a caller asks for."""

from __future__ import annotations

from runner.runner_config import RunnerConfig, config_differences
from runner.worker import WorkerConfig


def test_equal_configs_have_no_differences():
    assert config_differences(RunnerConfig(max_workers=3), RunnerConfig(max_workers=3)) == {}


def test_each_differing_field_is_named_with_both_values_and_worker_settings_one_by_one():
    running = RunnerConfig(max_workers=4, restart_limit=3)
    asked = RunnerConfig(max_workers=2, restart_limit=3, worker=WorkerConfig(lease_ttl=10.0))
    assert config_differences(running, asked) == {"max_workers": (4, 2), "worker.lease_ttl": (30.0, 10.0)}


def test_only_the_named_fields_are_compared():
    running = RunnerConfig(max_workers=4, restart_limit=1)
    assert config_differences(running, RunnerConfig(max_workers=4, restart_limit=9), ["max_workers"]) == {}
    assert config_differences(running, RunnerConfig(max_workers=2), ["max_workers"]) == {"max_workers": (4, 2)}
