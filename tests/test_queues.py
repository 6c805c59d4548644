"""The queue admission decision (runner.queues), simulated with a fake clock: pure, milliseconds."""

from __future__ import annotations

import heapq
import random

import pytest

from runner.errors import QueueConfigError, QueueFull, UnknownQueue
from runner.queues import (
    Queue,
    QueueBook,
    QueueTicket,
    Rate,
    Waiting,
    check_pending_room,
    check_queues,
    limits_of,
    ticket_for,
)


def waiting(run_id: str, queue: str = "q", *, key: str | None = None, priority: int = 0, at: float = 0.0) -> Waiting:
    return Waiting(run_id=run_id, ticket=QueueTicket(queue=queue, key=key, priority=priority), created_at=at)


def simulate(
    book: QueueBook, runs: list[Waiting], *, room: int = 10_000, seed: int = 7, start_delay: float = 0.0
) -> tuple[list[tuple[float, str]], list[tuple[float, float, Waiting]]]:
    """Drive ``book`` with a fake clock, as the Runner does: every run waits at t=0; an admitted
    run's first start is recorded 0 to ``start_delay`` s later (the hop to a worker; the
    book learns of it then), and it runs 0.1-2 s. The recorded start order (time, run id)
    and each run's (recorded start, end, run)."""
    rng = random.Random(seed)
    for run in runs:
        book.add(run)
    by_id = {r.run_id: r for r in runs}
    now = 0.0
    moves: list[tuple[float, int, str]] = []  # a heap of (time, 0: first start | 1: end, run id)
    started_at: dict[str, float] = {}
    order: list[tuple[float, str]] = []
    spans: list[tuple[float, float, Waiting]] = []
    admitted = 0
    while len(spans) < len(runs):
        admission = book.admit(now, room - admitted)
        admitted += len(admission.start)
        for run_id in admission.start:
            heapq.heappush(moves, (now + rng.uniform(0.0, start_delay), 0, run_id))
        candidates = [t for t in (moves[0][0] if moves else None, admission.look_again_at) if t is not None]
        assert candidates, "runs wait but nothing will ever start them"
        now = min(candidates)
        while moves and moves[0][0] <= now:
            at, kind, run_id = heapq.heappop(moves)
            if kind == 0:
                book.first_started(run_id, at)
                order.append((at, run_id))
                started_at[run_id] = at
                heapq.heappush(moves, (at + rng.uniform(0.1, 2.0), 1, run_id))
            else:
                book.ended(run_id)
                admitted -= 1
                spans.append((started_at[run_id], at, by_id[run_id]))
    return order, spans


def most_at_once(spans: list[tuple[float, float, Waiting]], key: str | None = None) -> int:
    """The most runs (of ``key``, if given) running at any moment: a start at the moment
    another ends counts after that end."""
    moves = []
    for start, end, run in spans:
        if key is None or run.ticket.key == key:
            moves.extend([(start, 1), (end, -1)])
    moves.sort(key=lambda m: (m[0], m[1]))  # ends before starts at the same time
    most = current = 0
    for _, change in moves:
        current += change
        most = max(most, current)
    return most


def test_a_thousand_runs_through_a_queue_of_three_never_run_more_than_three() -> None:
    book = QueueBook([Queue("q", concurrency=3)])
    runs = [waiting(f"r{i:04d}", at=float(i)) for i in range(1000)]
    order, spans = simulate(book, runs)
    assert len(spans) == 1000
    assert most_at_once(spans) == 3
    assert [run_id for _, run_id in order] == [r.run_id for r in runs]  # equal priority: the store's order


def test_per_key_limit_holds_for_every_key_and_other_keys_are_not_held_back() -> None:
    book = QueueBook([Queue("q", concurrency=10, per_key=2)])
    runs = [waiting(f"r{i:04d}", key=f"tenant-{i % 5}", at=float(i)) for i in range(1000)]
    _, spans = simulate(book, runs)
    assert len(spans) == 1000
    for k in range(5):
        assert most_at_once(spans, f"tenant-{k}") == 2
    assert most_at_once(spans) == 10  # five keys, two each


def test_rate_limit_allows_at_most_n_starts_in_any_period() -> None:
    book = QueueBook([Queue("q", rate=Rate(10, per=60.0))])
    runs = [waiting(f"r{i:03d}", at=float(i)) for i in range(100)]
    order, spans = simulate(book, runs)
    assert len(spans) == 100
    times = sorted(t for t, _ in order)
    for i, t in enumerate(times):
        assert len([u for u in times[i:] if u < t + 60.0]) <= 10
    assert times[-1] == pytest.approx(9 * 60.0)  # ten per minute, no slower


def test_rate_limit_counts_recorded_starts_even_when_they_lag_their_admission() -> None:
    """A run admitted but not yet started counts as a start to come: however late the store
    records the starts, no window of ``per`` seconds holds more than ``limit`` of them."""
    book = QueueBook([Queue("q", concurrency=4, rate=Rate(3, per=1.0))])
    runs = [waiting(f"r{i:04d}", at=float(i)) for i in range(1000)]
    order, spans = simulate(book, runs, start_delay=0.7)
    assert len(spans) == 1000
    times = sorted(t for t, _ in order)
    for i, t in enumerate(times):
        assert len([u for u in times[i : i + 10] if u < t + 1.0]) <= 3
    assert most_at_once(spans) <= 4


def test_higher_priority_starts_first_then_the_store_order() -> None:
    book = QueueBook([Queue("q", concurrency=1)])
    runs = [
        waiting("a", at=1.0),
        waiting("b", priority=5, at=2.0),
        waiting("c", priority=5, at=3.0),
        waiting("d", priority=-1, at=0.0),
        waiting("e", at=0.5),
    ]
    order, _ = simulate(book, runs)
    assert [run_id for _, run_id in order] == ["b", "c", "e", "a", "d"]


def test_admission_respects_the_room_the_pool_has_across_queues() -> None:
    book = QueueBook([Queue("a", concurrency=5), Queue("b", concurrency=5)])
    for i in range(5):
        book.add(waiting(f"a{i}", "a", at=float(i)))
        book.add(waiting(f"b{i}", "b", priority=1, at=float(i)))
    first = book.admit(0.0, 3)
    assert first.start == ("b0", "b1", "b2")  # best across queues
    assert book.waiting_count("b") == 2 and book.waiting_count("a") == 5
    second = book.admit(0.0, 100)
    assert set(second.start) == {"b3", "b4", "a0", "a1", "a2", "a3", "a4"}
    assert book.running_count("a") == 5 and book.running_count("b") == 5


def test_runs_found_started_at_start_up_hold_places_and_rate() -> None:
    book = QueueBook([Queue("q", concurrency=2, rate=Rate(3, per=10.0))])
    book.started("old1", QueueTicket(queue="q"))
    book.started("old2", QueueTicket(queue="q"))
    book.counted_start("q", 99.0)
    book.counted_start("q", 95.0)
    book.add(waiting("new1"))
    book.add(waiting("new2"))
    assert book.admit(100.0, 10).start == ()  # both places held
    book.ended("old1")
    admission = book.admit(100.0, 10)
    assert admission.start == ("new1",) and book.unstarted == ["new1"]
    book.ended("old2")
    assert book.admit(100.5, 10).start == ()  # 95, 99 and new1's start to come fill the rate
    book.first_started("new1", 100.0)
    assert book.unstarted == []
    book.ended("new1")
    held = book.admit(101.0, 10)  # three starts in the last 10 s: 95, 99, 100
    assert held.start == () and held.look_again_at == pytest.approx(105.0)
    assert book.admit(105.0, 10).start == ("new2",)


def test_withdrawn_runs_never_start_and_unknown_ends_are_ignored() -> None:
    book = QueueBook()
    book.add(waiting("a"))
    book.add(waiting("b"))
    book.withdraw("a")
    book.ended("never-seen")
    assert book.admit(0.0, 10).start == ("b",)  # an undeclared queue has no limits
    assert not book.is_waiting("a") and book.is_running("b")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Queue("q", concurrency=0), "concurrency"),
        (lambda: Queue("q", concurrency=-1), "concurrency"),
        (lambda: Queue("q", per_key=True), "per_key"),
        (lambda: Queue("q", max_pending=0), "max_pending"),
        (lambda: Queue("bad name"), "name"),
        (lambda: Queue(""), "name"),
        (lambda: Rate(0, per=1.0), "rate.limit"),
        (lambda: Rate(1, per=0.0), "rate.per"),
        (lambda: Rate(1, per=float("inf")), "rate.per"),
        (lambda: Queue("q", rate=5), "rate"),  # type: ignore[arg-type]
        (lambda: check_queues([Queue("q"), Queue("q")]), "queues"),
        (lambda: check_queues(["q"]), "queues"),
        (lambda: ticket_for("q", "", 0), "queue_key"),
        (lambda: ticket_for("q", None, 1.5), "priority"),  # type: ignore[arg-type]
        (lambda: ticket_for(None, "k", 0), "queue_key"),
        (lambda: ticket_for(None, None, 3), "priority"),
        (lambda: ticket_for("no/slash", None, 0), "queue"),
    ],
)
def test_bad_limits_and_names_raise_a_typed_error_naming_the_field(make: object, field: str) -> None:
    with pytest.raises(QueueConfigError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_an_undeclared_queue_has_no_limits_unless_queues_are_declared_only() -> None:
    declared = {"emails": Queue("emails", concurrency=3)}
    assert limits_of("other", declared, declared_only=False) == Queue("other")
    with pytest.raises(UnknownQueue, match="emails"):
        limits_of("other", declared, declared_only=True)


def test_pending_room_counts_the_runs_of_one_submit_together() -> None:
    declared = {"q": Queue("q", max_pending=3)}
    tickets = [QueueTicket(queue="q")] * 2
    check_pending_room(tickets, declared, lambda queue, at_most: 1)
    with pytest.raises(QueueFull) as caught:
        check_pending_room(tickets, declared, lambda queue, at_most: 2)
    assert (caught.value.queue, caught.value.max_pending, caught.value.pending) == ("q", 3, 2)
    check_pending_room([None, QueueTicket(queue="other")], declared, lambda queue, at_most: 10**6)
