"""Folding stays linear: persistent maps (`PMap`) and running risk totals.

Costs are checked by counting allocations (tracemalloc), never by the clock: applying
one event to a state of thousands of entities must allocate about as much as applying
it to a small state, where copying the entities' dict would allocate hundreds of KB.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.envelope import Event, new_event_id
from libs.contracts.risk import ReleaseReason
from libs.projections.framework import PMap
from services.execution.projection import ORDERS
from services.position_monitor.projection import POSITIONS, PositionBook
from services.risk.projection import RISK, RiskUsage, RunningSum
from services.strategy.projection import SUGGESTIONS, SuggestionBook
from tests.integration.replay.scenario import Script

ACCOUNT = "5WT00001"
MANY = 5_000
#: Far below what copying a dict of MANY entries allocates (well over 100 KB).
BUDGET = 16_384

S = TypeVar("S")


def allocated(apply: Callable[[S, Event], S], state: S, event: Event) -> int:
    """Peak bytes allocated while applying ``event`` to ``state``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        apply(state, event)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_pmap_sets_without_touching_the_original() -> None:
    empty: PMap[str, int] = PMap()
    one = empty.set("a", 1)
    assert (dict(empty), dict(one)) == ({}, {"a": 1})
    assert one.set("a", 2)["a"] == 2
    assert one["a"] == 1


def test_a_pmap_iterates_in_insertion_order_like_a_dict() -> None:
    keys = [f"k{n}" for n in range(100)]
    pmap: PMap[str, int] = PMap()
    for n, key in enumerate(reversed(keys)):
        pmap = pmap.set(key, n)
    pmap = pmap.set("k50", -1)  # a replaced value keeps its place
    assert list(pmap) == list(reversed(keys))
    assert pmap["k50"] == -1
    assert len(pmap) == 100


def test_a_pmap_compares_and_hashes_by_content() -> None:
    forward = PMap([("a", 1), ("b", 2)])
    backward = PMap([("b", 2), ("a", 1)])
    assert forward == backward
    assert hash(forward) == hash(backward)
    assert forward == {"a": 1, "b": 2}
    assert {"b": 2, "a": 1} == forward  # noqa: SIM300 - the dict on the left, on purpose
    assert PMap() == {}
    assert forward != {"a": 1}
    assert forward != {"a": 1, "b": 3}
    assert forward.get("c") is None
    assert forward.get("c", 0) == 0
    assert "a" in forward


def test_a_folded_book_holds_persistent_maps_and_renders_objects() -> None:
    s = Script(ACCOUNT)
    order_id = new_event_id()
    book = ORDERS.fold([s.open_submitted(order_id, new_event_id(), new_event_id())])
    assert isinstance(book.orders, PMap)
    rendered = ORDERS.to_json(book)
    assert list(rendered["orders"]) == [str(order_id)]
    assert rendered["orders"][str(order_id)]["fills"] == {}
    assert "applied" not in rendered["orders"][str(order_id)]


def test_applying_to_a_large_order_book_copies_no_orders() -> None:
    s = Script(ACCOUNT)
    ids = [new_event_id() for _ in range(MANY)]
    book = ORDERS.fold(s.open_submitted(i, new_event_id(), new_event_id()) for i in ids)
    assert len(book.orders) == MANY
    assert allocated(ORDERS.apply, book, s.accepted(ids[MANY // 2])) < BUDGET
    new_order = s.open_submitted(new_event_id(), new_event_id(), new_event_id())
    assert allocated(ORDERS.apply, book, new_order) < BUDGET


def test_applying_to_a_large_suggestion_book_copies_no_suggestions() -> None:
    s = Script(ACCOUNT)
    ids = [new_event_id() for _ in range(MANY)]
    book: SuggestionBook = SUGGESTIONS.fold(s.generated(i) for i in ids)
    assert len(book.suggestions) == MANY
    assert allocated(SUGGESTIONS.apply, book, s.rejected(ids[0])) < BUDGET
    assert allocated(SUGGESTIONS.apply, book, s.skipped()) < BUDGET


def test_applying_to_a_large_position_book_copies_no_positions() -> None:
    s = Script(ACCOUNT)
    ids = [new_event_id() for _ in range(MANY)]
    book: PositionBook = POSITIONS.fold(
        s.position_opened(i, new_event_id(), new_event_id()) for i in ids
    )
    assert len(book.positions) == MANY
    closed = s.position_closed(ids[-1], Decimal("12.50"))
    assert allocated(POSITIONS.apply, book, closed) < BUDGET


def test_applying_to_a_large_risk_usage_neither_copies_nor_resums() -> None:
    s = Script(ACCOUNT)
    pairs = [(new_event_id(), new_event_id()) for _ in range(MANY)]
    usage: RiskUsage = RISK.fold(s.reserved(r, sid) for r, sid in pairs)
    assert usage.reserved_risk == Decimal(230) * MANY
    reservation_id, suggestion_id = pairs[7]
    release = s.released(reservation_id, suggestion_id, ReleaseReason.REJECTED, new_event_id())
    assert allocated(RISK.apply, usage, release) < BUDGET
    assert allocated(RISK.apply, usage, s.reservation_failed(pairs[9][1])) < BUDGET
    assert RISK.apply(usage, release).reserved_risk == Decimal(230) * (MANY - 1)


def test_risk_totals_render_as_re_summing_would() -> None:
    # Amounts come as 230.00: a running total would say 0.00 once all are released,
    # where the sum of no reservation is 0.
    s = Script(ACCOUNT)
    reservation_id, suggestion_id = new_event_id(), new_event_id()
    usage = RISK.fold(
        [
            s.reserved(reservation_id, suggestion_id),
            s.released(reservation_id, suggestion_id, ReleaseReason.REJECTED, new_event_id()),
        ]
    )
    rendered: dict[str, Any] = RISK.to_json(usage)
    assert (rendered["reserved_risk"], rendered["used_risk"]) == ("0", "0")


terms = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(terms, st.booleans()), max_size=30))
def test_a_running_sum_equals_re_summing_digit_for_digit(
    steps: list[tuple[Decimal, bool]],
) -> None:
    running, current = RunningSum(), list[Decimal]()
    for term, remove_one in steps:
        running, current = running.add(term), [*current, term]
        if remove_one:
            gone = current.pop(0)
            running = running.remove(gone)
        expected = sum(current, Decimal(0))
        assert str(running.total) == str(expected)
        assert running.count == len(current)
