"""The metadata queries of docs/sql.md give the documented answers over a DuckDB store, opened
writable and read-only, and the store's metadata filter agrees with them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.duckdb import DuckDBStore
from runner.events import FactProduced, RunSubmitted, StepMetadataAdded, StepStarted
from runner.store import NewRun, RunFilter

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sql.md"


def _queries() -> list[str]:
    section = DOCS.read_text().split("## Queries by metadata", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def _new_run(run_id: str, metadata: dict[str, object]) -> NewRun:
    submitted = RunSubmitted(workflow="orders", input=1, definition_hash="h", at=1.0)
    return NewRun(
        run_id=run_id, workflow="orders", definition=b"d", definition_hash="h", events=(submitted,), metadata=metadata
    )


@pytest.fixture(params=[False, True], ids=["writable", "read-only"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DuckDBStore]:
    path = tmp_path / "store.duckdb"
    writer = DuckDBStore(path, clock=iter(range(100, 200)).__next__)
    writer.create_runs([_new_run("r1", {"tenant": "t-7", "priority": 5})])
    writer.create_runs([_new_run("r2", {"tenant": "t-8", "priority": 1}), _new_run("r3", {})])
    token = writer.acquire_lease("r1", "w", 30).token
    writer.append(
        "r1",
        [
            StepStarted(node="load", attempt=1, lease=token, at=2.0),
            StepMetadataAdded(node="load", attempt=1, values={"rows": 12}, at=3.0),
            FactProduced(node="load", value=1, at=3.0),
        ],
        token,
    )
    writer.post_signal("r1", "approve", True, dedupe_key="key:review-1", call_id="c-1")
    writer.post_signal("r1", "approve", False, dedupe_key="c-2", call_id="c-2")
    if request.param:
        writer.close()
        opened = DuckDBStore(path, read_only=True)
    else:
        opened = writer
    yield opened
    opened.close()


def test_the_documented_metadata_queries_answer_as_documented(store: DuckDBStore) -> None:
    by_tenant, per_tenant, numeric, keys, added, keyed = _queries()
    assert [row[:3] for row in store.sql(by_tenant)[1]] == [("r1", "orders", "pending")]
    assert store.sql(per_tenant)[1] == [("t-7", "pending", 1), ("t-8", "pending", 1)]
    assert store.sql(numeric)[1] == [("r1", 5)]
    assert store.sql(keys)[1] == [("priority",), ("tenant",)]
    assert store.sql(added)[1] == [("r1", "t-7", "load", "1", '{"rows":12}')]
    assert [row[:4] for row in store.sql(keyed)[1]] == [("r1", 1, "approve", "review-1")]
    assert [r.run_id for r in store.list_runs(RunFilter(metadata={"tenant": "t-7"}))] == ["r1"]
    assert [r.run_id for r in store.list_runs(RunFilter(metadata={"priority": 5}))] == ["r1"]
