"""The web view as a Ray Serve application on the test Ray instance: deployed at a route
prefix, read over HTTP through Serve's proxy (run list, run page, a link under the prefix),
then removed; Serve is shut down at the end so the modules sharing this Ray see none of it."""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from ray_support import eventually

import runner

serve = pytest.importorskip("ray.serve")

pytestmark = pytest.mark.ray

PREFIX = "/runner-view"


def hello() -> runner.Workflow:
    wf = runner.Workflow("serve-hello")

    @wf.step()
    def greet(name: str) -> str:
        return f"hello {name}"

    return wf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def serve_shut_down_after() -> Iterator[None]:
    yield
    serve.shutdown()  # its controller and proxy actors leave the shared Ray instance


def test_the_view_deployed_on_serve_lists_and_shows_a_run(
    shared_client: runner.Client, serve_shut_down_after: None
) -> None:
    handle = shared_client.submit(hello(), "serve")
    assert handle.result(timeout=60) == "hello serve"
    served = shared_client.serve_ui(PREFIX, port=free_port())
    try:
        assert served.url.endswith(PREFIX)
        status, listing = get(f"{served.url}/?workflow=serve-hello")
        assert status == 200
        row = re.search(rf'<tr data-run="{re.escape(handle.run_id)}">.*?</tr>', listing)
        assert row is not None and 'data-status="completed"' in row.group(0)
        link = re.search(rf'href="({re.escape(PREFIX)}/runs/{re.escape(handle.run_id)})"', listing)
        assert link is not None, "the run's link starts with the route prefix"
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(served.url))
        status, page = get(origin + link.group(1))
        assert status == 200
        assert handle.run_id in page and 'data-status="completed"' in page
        assert f'href="{PREFIX}/static/ui.css"' in page
        assert get(f"{origin}{PREFIX}/static/ui.css")[0] == 200
    finally:
        removed = shared_client.undeploy_ui()
    assert removed is True
    assert shared_client.undeploy_ui() is False  # nothing left to remove
    eventually(lambda: get(f"{served.url}/")[0] == 404, what="the view's route to be gone")
