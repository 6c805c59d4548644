"""The schedules part of the store contract (``save_schedule``, ``list_schedules``,
``delete_schedule``, ``mark_tick``): mixed into :class:`~runner.testing.store_contract.StoreContract`,
so every adapter passes it. Uses that class's ``store`` fixture, ``make_store`` and ``persistent``."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner.errors import InvalidArgument, ScheduleNotFound, StoreError
from runner.store import Schedule, Store


def schedule(name: str = "nightly", **changes: Any) -> Schedule:
    fields: dict[str, Any] = dict(
        name=name,
        workflow="orders",
        cron="0 3 * * *",
        definition=b"pickled workflow",
        definition_hash="h" * 64,
        input={"region": "eu", "ids": (1, 2)},
        created_at=1000.0,
    )
    fields.update(changes)
    return Schedule(**fields)


class ScheduleContract:
    persistent: ClassVar[bool] = False

    def make_store(self, tmp_path: Path, clock: Any) -> Store:
        raise NotImplementedError

    def test_schedules_are_saved_listed_by_name_and_replaced_by_name(self, store: Store) -> None:
        assert store.list_schedules() == []
        store.save_schedule(schedule("weekly", cron="0 0 * * 0"))
        store.save_schedule(schedule("nightly"))
        assert [s.name for s in store.list_schedules()] == ["nightly", "weekly"]
        assert store.list_schedules()[0] == schedule("nightly")  # the input comes back equal
        store.save_schedule(schedule("nightly", cron="0 4 * * *", input=None))
        [nightly, _] = store.list_schedules()
        assert (nightly.cron, nightly.input) == ("0 4 * * *", None)

    def test_mark_tick_only_moves_forward(self, store: Store) -> None:
        store.save_schedule(schedule())
        assert store.mark_tick("nightly", 2000.0).last_tick == 2000.0
        assert store.mark_tick("nightly", 1500.0).last_tick == 2000.0
        assert store.mark_tick("nightly", 3000.0).last_tick == 3000.0
        assert store.list_schedules()[0].last_tick == 3000.0

    def test_delete_schedule_removes_it_and_unknown_names_raise(self, store: Store) -> None:
        store.save_schedule(schedule())
        store.delete_schedule("nightly")
        assert store.list_schedules() == []
        with pytest.raises(ScheduleNotFound):
            store.delete_schedule("nightly")
        with pytest.raises(ScheduleNotFound):
            store.mark_tick("nightly", 1.0)
        with pytest.raises(InvalidArgument):
            store.delete_schedule("no spaces allowed")

    def test_a_schedule_whose_input_cannot_be_stored_writes_nothing(self, store: Store) -> None:
        with pytest.raises(Exception):  # noqa: B017 - the encoder's own error
            store.save_schedule(schedule(input=threading.Lock()))
        assert store.list_schedules() == []

    def test_schedule_calls_after_close_raise_store_error(self, store: Store) -> None:
        store.save_schedule(schedule())
        store.close()
        for call in (
            lambda: store.list_schedules(),
            lambda: store.save_schedule(schedule("other")),
            lambda: store.mark_tick("nightly", 5.0),
            lambda: store.delete_schedule("nightly"),
        ):
            with pytest.raises(StoreError):
                call()

    def test_schedules_survive_close_and_reopen(self, store: Store, tmp_path: Path, clock: Any) -> None:
        if not self.persistent:
            pytest.skip("this store keeps nothing after close (persistent = False)")
        store.save_schedule(schedule())
        store.mark_tick("nightly", 4000.0)
        store.close()
        reopened = self.make_store(tmp_path, clock)
        try:
            assert reopened.list_schedules() == [dataclasses.replace(schedule(), last_tick=4000.0)]
        finally:
            reopened.close()
