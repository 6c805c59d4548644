"""The web view over a store, without Ray: runs written straight into a store, read through
a FileStoreReader, answered by the Starlette app (its test client)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from adapters import open_store  # noqa: E402
from runner import Workflow, serialization  # noqa: E402
from runner.errors import InvalidArgument  # noqa: E402
from runner.reader import FileStoreReader  # noqa: E402
from runner.store import NewRun, RunStatus, Store  # noqa: E402
from runner.testing.inprocess import InProcessRun  # noqa: E402
from runner.ui import access  # noqa: E402
from runner.ui.app import UiApp  # noqa: E402
from runner.ui.queries import Cursor, RunQueries, RunQuery  # noqa: E402


def boom(x: int) -> int:
    raise ValueError("the third step broke")


def shop() -> Workflow:
    wf = Workflow("shop")
    a = wf.step(lambda x: x + 1, name="load")
    b = wf.map(lambda item: item * 2, after=wf.step(lambda x: list(range(x)), name="split", after=a), name="double")
    wf.step(lambda items: sum(items), name="total", after=b)
    return wf


def broken() -> Workflow:
    wf = Workflow("broken")
    wf.step(boom, name="explode", after=wf.step(lambda x: x, name="first"))
    return wf


def store_run(
    store: Store, workflow: Workflow, run_id: str, input: object, *, now: float, parent: str | None = None
) -> None:
    """Drive ``workflow`` in process and write its whole log and final status into ``store``."""
    run = InProcessRun(workflow, input, run_id=run_id, now=now, parent_run_id=parent)
    state = run.run()
    first = run.log[0].event
    store.create_run(
        NewRun(
            run_id=run_id,
            workflow=workflow.name,
            definition=serialization.dumps(workflow),
            definition_hash=workflow.definition_hash(),
            events=(first,),
            parent_run_id=parent,
        )
    )
    lease = store.acquire_lease(run_id, "test", 60).token
    store.transition(run_id, RunStatus.RUNNING, lease=lease)
    store.append(run_id, [s.event for s in run.log[1:]], lease, status=state.status)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Three runs; tests only read them."""
    s = open_store(f"duckdb:///{tmp_path_factory.mktemp('ui') / 'ui.duckdb'}")
    store_run(s, shop(), "shop-1", 3, now=1_000.0)
    store_run(s, broken(), "broken-1", 1, now=1_001.0)
    store_run(s, shop(), "shop-2", 2, now=1_002.0, parent="shop-1")
    return s


@pytest.fixture(scope="module")
def ui(store: Store) -> TestClient:
    return TestClient(UiApp(FileStoreReader(store)).app)


def test_the_list_shows_every_run_newest_first(ui: TestClient) -> None:
    page = ui.get("/")
    assert page.status_code == 200
    assert re.findall(r'data-run="([^"]+)"', page.text) == ["shop-2", "broken-1", "shop-1"]


def test_the_list_filters_by_status_and_workflow(ui: TestClient) -> None:
    failed = ui.get("/", params={"status": "failed"})
    assert re.findall(r'data-run="([^"]+)"', failed.text) == ["broken-1"]
    shops = ui.get("/", params={"workflow": "shop"})
    assert re.findall(r'data-run="([^"]+)"', shops.text) == ["shop-2", "shop-1"]
    assert "No runs match" in ui.get("/", params={"workflow": "nothing"}).text


def test_keyset_pages_cover_every_run_once(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'paged.duckdb'}")
    for index in range(3):
        store_run(store, shop(), f"early-{index}", 1, now=1_000.0 + index)
    for index in range(7):
        store_run(store, shop(), f"more-{index}", 1, now=2_000.0)  # same created time: the run id breaks the tie
    queries = RunQueries(FileStoreReader(store))
    seen: list[str] = []
    cursor: Cursor | None = None
    while True:
        page = queries.page(RunQuery(limit=4, after=cursor))
        seen.extend(r.run_id for r in page.rows)
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert len(seen) == 10 and len(set(seen)) == 10


def test_a_metadata_filter_on_a_store_without_metadata_says_so(store: Store) -> None:
    queries = RunQueries(FileStoreReader(store))
    if "metadata" in queries.columns():
        pytest.skip("this store keeps run metadata")
    with pytest.raises(InvalidArgument, match="metadata"):
        queries.page(RunQuery(metadata_key="team"))


def test_the_run_page_draws_the_graph_timeline_and_history(ui: TestClient) -> None:
    page = ui.get("/runs/shop-1")
    assert page.status_code == 200
    text = page.text
    for node in ("load", "split", "double", "total"):
        assert f'data-node="{node}" data-status="done"' in text
    assert "map · done 4/4" in text  # map items as progress
    assert text.count('class="bar"') >= 7  # load, split, 4 items, total
    assert "RunCompleted" in text and "RunSubmitted" in text
    assert 'id="actions"' not in text  # read-only: no buttons


def test_a_failed_run_shows_its_error_and_traceback(ui: TestClient) -> None:
    text = ui.get("/runs/broken-1").text
    assert 'data-node="explode" data-status="failed"' in text
    assert "ValueError: the third step broke" in text
    assert "Traceback" in text and "in boom" in text


def test_lineage_links_parent_and_descendant(ui: TestClient) -> None:
    assert 'this run is a <b>replay</b> of <a href="/runs/shop-1">' in ui.get("/runs/shop-2").text
    assert '<a href="/runs/shop-2">' in ui.get("/runs/shop-1").text


def test_actions_are_refused_when_read_only(ui: TestClient) -> None:
    answer = ui.post("/runs/shop-1/actions/cancel", data={"key": "x"})
    assert answer.status_code == 403


def test_an_unknown_run_is_404_and_polling_tells_the_cursor(ui: TestClient) -> None:
    assert ui.get("/runs/nope").status_code == 404
    version = ui.get("/api/runs/shop-1/version").json()
    assert version["ended"] is True and version["version"].endswith(":completed")
    assert ui.get("/api/runs/version").json()["version"]


def test_metrics_count_the_store_runs_by_workflow_and_status(ui: TestClient) -> None:
    text = ui.get("/metrics").text
    assert 'runner_runs{workflow="shop",status="completed"} 2' in text
    assert 'runner_runs{workflow="broken",status="failed"} 1' in text
    assert 'runner_events{kind="RunSubmitted"} 3' in text
    assert "# TYPE runner_runs gauge" in text


def test_a_token_guards_every_page(store: Store) -> None:
    guarded = TestClient(UiApp(FileStoreReader(store), token="s3cret").app)
    assert guarded.get("/").status_code == 401
    assert guarded.get("/", params={"token": "wrong"}).status_code == 401
    assert guarded.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/", params={"token": "s3cret"}).status_code == 200
    assert guarded.get("/runs/shop-1").status_code == 200  # the cookie set on the way in


def test_binding_beyond_loopback_needs_a_token() -> None:
    access.check_bind("127.0.0.1", None)
    access.check_bind("::1", None)
    with pytest.raises(InvalidArgument, match="token"):
        access.check_bind("0.0.0.0", None)
    access.check_bind("0.0.0.0", "t")
