"""The web view under a route prefix (as Ray Serve mounts it) and the Serve deployment's
refusals, without Ray: the Starlette test client with an ASGI root path."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
serve_app = pytest.importorskip("runner.ui.serve_app")

from starlette.testclient import TestClient  # noqa: E402
from test_ui_app import shop, store_run  # noqa: E402

from adapters import open_store  # noqa: E402
from runner.errors import InvalidArgument  # noqa: E402
from runner.reader import FileStoreReader  # noqa: E402
from runner.ui.app import UiApp  # noqa: E402


def test_under_a_route_prefix_every_link_starts_with_it_and_resolves(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'prefix.duckdb'}")
    store_run(store, shop(), "shop-1", 3, now=1_000.0)
    store_run(store, shop(), "shop-2", 2, now=1_001.0, parent="shop-1")
    ui = TestClient(UiApp(FileStoreReader(store)).app, root_path="/runner")
    listing = ui.get("/runner/")
    assert listing.status_code == 200
    links = re.findall(r'(?:href|src|action|data-poll)="([^"]+)"', listing.text)
    assert links and all(link.startswith("/runner/") for link in links), links
    assert ui.get("/runner/runs/shop-1").status_code == 200  # the run's link from the list
    page = ui.get("/runner/runs/shop-2").text
    assert 'this run is a <b>replay</b> of <a href="/runner/runs/shop-1">' in page
    assert ui.get("/runner/static/ui.css").status_code == 200
    assert 'href="/runner/"' in ui.get("/runner/runs/nope").text  # the 404 page's links too


def test_a_root_path_goes_into_links_url_quoted(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'quoted.duckdb'}")
    store_run(store, shop(), "shop-1", 3, now=1_000.0)
    root = '/a b"><script>x</script>'
    ui = TestClient(UiApp(FileStoreReader(store)).app, root_path=root)
    listing = ui.get(root + "/").text
    assert "<script>x</script>" not in listing
    assert 'href="/a%20b%22%3E%3Cscript%3Ex%3C/script%3E/runs/shop-1"' in listing


def test_a_serve_proxy_beyond_loopback_needs_a_token() -> None:
    assert serve_app.check_proxy("127.0.0.1", None) == "127.0.0.1"
    assert serve_app.check_proxy("0.0.0.0", "t") == "0.0.0.0"
    with pytest.raises(InvalidArgument, match="token"):
        serve_app.check_proxy("0.0.0.0", None)
    with pytest.raises(InvalidArgument, match="without an HTTP proxy"):
        serve_app.check_proxy(None, "t")
    client = SimpleNamespace(namespace="never-used")  # refused before any Ray or Serve call
    with pytest.raises(InvalidArgument, match="token"):
        serve_app.deploy(client, host="0.0.0.0")


def test_route_prefixes_are_checked() -> None:
    assert serve_app.checked_route_prefix("/runner/") == "/runner"
    assert serve_app.checked_route_prefix("/") == "/"
    with pytest.raises(InvalidArgument, match="start with '/'"):
        serve_app.checked_route_prefix("runner")


def test_the_cli_refuses_a_serve_proxy_beyond_loopback_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from runner.cli import main

    monkeypatch.delenv("RUNNER_UI_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["ui", "--serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2  # before joining any cluster
    assert "token" in result.output
