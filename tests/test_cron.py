"""Cron schedules, computed: bad cron text names its field, due ticks (only the latest missed
one), next wake-ups, and one run id per tick, the same across Runner restarts."""

from __future__ import annotations

import pytest

from runner.cron import check_cron, due_tick, due_ticks, next_tick, next_wakeup, tick_run, tick_run_id
from runner.errors import InvalidCron
from runner.events import RunSubmitted
from runner.store import Schedule


def schedule(cron: str = "*/5 * * * *", created_at: float = 0.0, last_tick: float | None = None) -> Schedule:
    return Schedule(
        name="every5",
        workflow="report",
        cron=cron,
        definition=b"def",
        definition_hash="h",
        input={"n": 1},
        created_at=created_at,
        last_tick=last_tick,
    )


@pytest.mark.parametrize(
    "text, field",
    [
        ("61 * * * *", "field 1 (minute)"),
        ("* 25 * * *", "field 2 (hour)"),
        ("* * 0 * *", "field 3 (day-of-month)"),
        ("* * * 13 *", "field 4 (month)"),
        ("* * * * funday", "field 5 (day-of-week)"),
        ("* * * * * 99", "field 6 (second)"),
        ("* * * *", "4 fields, not 5 or 6"),
        ("@sometimes", "unknown alias"),
        ("", "non-empty"),
    ],
)
def test_bad_cron_text_names_the_field(text, field):
    with pytest.raises(InvalidCron) as caught:
        check_cron("nightly", text)
    assert field in str(caught.value) and "nightly" in str(caught.value)


def test_good_cron_text_is_kept_with_single_spaces():
    assert check_cron("s", "*/5  *  * * *") == "*/5 * * * *"
    assert check_cron("s", "* * * * * */2") == "* * * * * */2"
    assert check_cron("s", "@hourly") == "@hourly"


def test_a_new_schedule_starts_at_its_first_tick_after_creation():
    s = schedule(created_at=100.0)  # ticks every 300 s
    assert due_tick(s, 299.0) is None
    assert due_tick(s, 300.0) == 300.0
    assert due_tick(schedule(created_at=300.0), 300.0) is None  # created on a tick: the next one


def test_a_tick_once_marked_is_not_due_again_and_missed_ticks_start_only_the_latest():
    assert due_tick(schedule(last_tick=300.0), 599.0) is None
    assert due_tick(schedule(last_tick=300.0), 600.0) == 600.0
    # down from 301 to 1801: ticks 600 ... 1800 were missed; only 1800 starts
    assert due_tick(schedule(last_tick=300.0), 1801.0) == 1800.0


def test_due_ticks_and_next_wakeup_over_several_schedules():
    fast = schedule(cron="* * * * * *")  # every second
    slow = schedule(cron="0 * * * *")  # every hour
    assert [(d.schedule.cron, d.tick) for d in due_ticks([fast, slow], 10.5)] == [("* * * * * *", 10.0)]
    assert next_wakeup([fast, slow], 10.5) == 11.0
    assert next_wakeup([slow], 10.5) == 3600.0
    assert next_wakeup([], 10.5) is None
    assert next_tick("*/5 * * * *", 300.0) == 600.0


def test_a_tick_always_gives_the_same_run_id_and_run():
    assert tick_run_id("every5", 300.0) == "every5-19700101T000500Z"
    first, again = tick_run(schedule(), 300.0, now=301.0), tick_run(schedule(), 300.0, now=999.0)
    assert first.run_id == again.run_id == "every5-19700101T000500Z"
    [submitted] = first.events
    assert isinstance(submitted, RunSubmitted) and submitted.input == {"n": 1} and submitted.workflow == "report"
    assert (first.definition, first.definition_hash) == (b"def", "h")


def test_the_cli_refuses_bad_cron_text_before_connecting_to_anything():
    from click.testing import CliRunner

    from runner.cli import main

    result = CliRunner().invoke(main, ["schedule", "tests/cli/flows.py:quick", "--cron", "* 25 * * *"])
    assert result.exit_code == 2
    assert "field 2 (hour)" in result.output and "nothing was stored" in result.output


class AsyncStore:
    """An InMemoryStore behind awaitable calls, as the Store actor's handle is; ``die_before_mark``:
    the Runner dies after storing a tick's run and before recording the tick."""

    def __init__(self, store, die_before_mark: bool = False) -> None:
        self.store, self.die_before_mark = store, die_before_mark

    async def list_schedules(self):
        return self.store.list_schedules()

    async def create_runs(self, news):
        return self.store.create_runs(news)

    async def mark_tick(self, name, tick):
        if self.die_before_mark:
            raise RuntimeError("the Runner died here")
        return self.store.mark_tick(name, tick)


def test_a_tick_started_again_after_a_runner_died_midway_is_the_same_single_run():
    import asyncio

    from adapters.memory import InMemoryStore
    from runner.scheduler import start_due

    store = InMemoryStore()
    store.save_schedule(schedule(created_at=100.0))
    with pytest.raises(RuntimeError):
        asyncio.run(start_due(AsyncStore(store, die_before_mark=True), store.list_schedules(), 301.0))
    assert [r.run_id for r in store.list_runs()] == ["every5-19700101T000500Z"]
    # the next Runner finds the same tick due and stores the same run id: still one run
    started = asyncio.run(start_due(AsyncStore(store), store.list_schedules(), 302.0))
    assert started == ["every5-19700101T000500Z"]
    assert [r.run_id for r in store.list_runs()] == ["every5-19700101T000500Z"]
    assert store.list_schedules()[0].last_tick == 300.0
    # recorded now: nothing is due until the next tick, which starts one new run
    assert asyncio.run(start_due(AsyncStore(store), store.list_schedules(), 303.0)) == []
    assert asyncio.run(start_due(AsyncStore(store), store.list_schedules(), 601.0)) == ["every5-19700101T001000Z"]
    assert len(store.list_runs()) == 2
