"""The web view over a live Runner: in a real browser (Chromium through Playwright) a finished
run's graph and timeline, a running run followed to its end by the page itself, and an
approval given from the page; and /metrics after a known workload."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import screenshot

import runner
from runner.client import Client

pytestmark = pytest.mark.ray

WAIT_MS = 60_000  # a deadline for what the page shows (polled by the browser), not a pause


def orders() -> runner.Workflow:
    wf = runner.Workflow("orders")

    @wf.step()
    def load(n: int) -> list[int]:
        return list(range(n))

    priced = wf.map(lambda item: item * 10, after=load, name="price")

    @wf.step(after=priced)
    def total(prices: list[int]) -> int:
        return sum(prices)

    return wf


def gated() -> runner.Workflow:
    wf = runner.Workflow("gated")

    @wf.step()
    def wait_for_gate(gate: str) -> str:
        while not os.path.exists(gate):  # the test opens the gate once the page shows the run going
            time.sleep(0.02)
        return "through"

    @wf.step(after=wait_for_gate)
    def finish(value: str) -> str:
        return value + "!"

    return wf


def deploy() -> runner.Workflow:
    wf = runner.Workflow("deploy")

    @wf.step()
    def build(version: int) -> str:
        return f"build-{version}"

    gate = wf.wait_for_approval("ship", after=build)

    @wf.step(after=[build, gate])
    def release(b: str, decision: Any) -> str:
        return f"{b} {decision.verb} by {decision.by}"

    return wf


def run_status(page: Any, status: str) -> None:
    page.wait_for_selector(f'h1 .status[data-status="{status}"]', timeout=WAIT_MS)


def test_a_finished_run_shows_its_graph_and_timeline(ui_client: Client, ui_url: str, page: Any) -> None:
    handle = ui_client.submit(orders(), 4)
    assert handle.result(timeout=90) == 60
    page.goto(f"{ui_url}/runs/{handle.run_id}")
    run_status(page, "completed")
    for node in ("load", "price", "total"):
        assert page.locator(f'svg.graph g.node[data-node="{node}"]').get_attribute("data-status") == "done"
    assert "4/4" in (page.locator('svg.graph g.node[data-node="price"]').text_content() or "")
    assert page.locator('svg.timeline rect.bar[data-outcome="done"]').count() >= 6  # load, 4 items, total
    assert page.locator("#events tbody tr").count() == handle.record().last_seq
    screenshot(page, "run.png")


def test_the_page_follows_a_running_run_to_its_end(ui_client: Client, ui_url: str, page: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    handle = ui_client.submit(gated(), str(gate))
    page.goto(f"{ui_url}/runs/{handle.run_id}")
    page.wait_for_selector('svg.graph g.node[data-node="wait_for_gate"][data-status="running"]', timeout=WAIT_MS)
    gate.touch()
    run_status(page, "completed")  # the page refreshed itself: no reload here
    assert page.locator('svg.graph g.node[data-node="finish"]').get_attribute("data-status") == "done"
    assert "'through!'" in page.locator("#result").inner_text()


def test_an_approval_given_on_the_page_lets_the_run_finish(ui_client: Client, ui_url: str, page: Any) -> None:
    handle = ui_client.submit(deploy(), 7)
    page.goto(f"{ui_url}/runs/{handle.run_id}")
    page.wait_for_selector("#action-approve", timeout=WAIT_MS)  # shown once the run waits for it
    form = page.locator('form[data-action="approve"]')
    form.locator('input[name="by"]').fill("dana")
    form.locator('input[name="comment"]').fill("looks good")
    form.locator("#action-approve").click()
    page.wait_for_selector(".notice", timeout=WAIT_MS)
    assert "approval ship approved by dana" in page.locator(".notice").inner_text()
    page.locator("h1").click()  # leave the form's fields, so the page may refresh itself
    run_status(page, "completed")
    assert handle.result(timeout=90) == "build-7 approved by dana"
    assert "ApprovalDecided" in page.locator("#events").inner_text()

    page.goto(ui_url)  # the list: every run of the module, newest first
    page.wait_for_selector(f'tr[data-run="{handle.run_id}"]', timeout=WAIT_MS)
    assert page.locator("table.runs tbody tr").first.get_attribute("data-run") == handle.run_id
    screenshot(page, "list.png")


def metric(text: str, line_start: str) -> float:
    match = re.search(rf"^{re.escape(line_start)} (\S+)$", text, re.M)
    assert match, f"{line_start} not in:\n{text}"
    return float(match.group(1))


def test_metrics_show_a_known_workload(ui_client: Client, ui_url: str) -> None:
    wf = runner.Workflow("measured")

    @wf.step()
    def check(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    handles = ui_client.submit_many(wf, [1, 2, -1])
    for handle in handles[:2]:
        handle.result(timeout=90)
    with pytest.raises(ValueError):
        handles[2].result(timeout=90)
    text = httpx.get(f"{ui_url}/metrics", timeout=30).text
    assert metric(text, 'runner_runs{workflow="measured",status="completed"}') == 2
    assert metric(text, 'runner_runs{workflow="measured",status="failed"}') == 1
    assert metric(text, 'runner_events{kind="RunSubmitted"}') >= 3
    assert metric(text, "runner_workers") >= 1
    assert metric(text, "runner_store_commits_total") >= 1
