"""The push throttle and the per-connection send queue (pure, time passed in)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.ws.throttle import Offer, Outbox, Throttle


def test_first_item_goes_at_once_and_the_latest_of_the_rest_at_the_window_end() -> None:
    throttle: Throttle[str, str] = Throttle(1.0)
    assert throttle.offer("QQQ", "q1", now=10.0) is Offer.SEND
    assert throttle.deadline("QQQ") == 11.0
    assert throttle.offer("QQQ", "q2", now=10.2) is Offer.HELD
    assert throttle.offer("QQQ", "q3", now=10.7) is Offer.HELD
    assert throttle.close("QQQ", now=11.0) == ("q3",)
    # That send starts the next window: a quote right after it waits again.
    assert throttle.deadline("QQQ") == 12.0
    assert throttle.offer("QQQ", "q4", now=11.01) is Offer.HELD
    assert throttle.close("QQQ", now=12.0) == ("q4",)
    # A window that ends empty closes; the next quote goes at once.
    assert throttle.close("QQQ", now=13.0) is None
    assert throttle.deadline("QQQ") is None
    assert throttle.offer("QQQ", "q5", now=13.5) is Offer.SEND


def test_keys_have_windows_of_their_own() -> None:
    throttle: Throttle[str, str] = Throttle(1.0)
    assert throttle.offer("QQQ", "a", now=0.0) is Offer.SEND
    assert throttle.offer("SPY", "b", now=0.1) is Offer.SEND
    assert throttle.offer("QQQ", "c", now=0.2) is Offer.HELD
    assert throttle.close("SPY", now=1.1) is None
    assert throttle.close("QQQ", now=1.0) == ("c",)
    assert len(throttle) == 1


def test_a_falsy_item_is_still_held_and_discard_forgets() -> None:
    throttle: Throttle[str, str] = Throttle(10.0)
    throttle.offer("p", "first", now=0.0)
    throttle.offer("p", "", now=1.0)
    assert throttle.close("p", now=10.0) == ("",)
    throttle.offer("p", "x", now=11.0)
    throttle.discard("p")
    assert throttle.close("p", now=20.0) is None
    assert throttle.offer("p", "y", now=20.0) is Offer.SEND


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Throttle(0)


@given(st.lists(st.floats(min_value=0, max_value=0.999), min_size=1, max_size=200))
def test_never_more_than_one_send_per_interval(gaps: list[float]) -> None:
    """Driven like a connection: offers at increasing times, closes at each deadline."""
    throttle: Throttle[str, int] = Throttle(1.0)
    sends: list[tuple[float, int]] = []
    now = 0.0
    for i, gap in enumerate(gaps):
        now += gap
        # Windows due before this offer close first, as the timers would have fired.
        while (deadline := throttle.deadline("k")) is not None and deadline <= now:
            held = throttle.close("k", deadline)
            if held is not None:
                sends.append((deadline, held[0]))
        if throttle.offer("k", i, now) is Offer.SEND:
            sends.append((now, i))
    while (deadline := throttle.deadline("k")) is not None:
        held = throttle.close("k", deadline)
        if held is not None:
            sends.append((deadline, held[0]))
    times = [t for t, _ in sends]
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
    # Latest wins, nothing is lost at the end: the last offered item is the last sent.
    assert sends[-1][1] == len(gaps) - 1
    # Items go out in order.
    items = [item for _, item in sends]
    assert items == sorted(items)


def test_outbox_is_bounded_for_ordered_messages_and_latest_wins_per_key() -> None:
    outbox: Outbox[str] = Outbox(limit=2)
    assert outbox.put("m1")
    outbox.put_latest("QQQ", "q1")
    outbox.put_latest("SPY", "s1")
    outbox.put_latest("QQQ", "q2")
    assert outbox.put("m2")
    assert not outbox.put("m3")  # full: the caller disconnects the client
    assert len(outbox) == 4
    assert outbox.ordered_count == 2
    # Ordered first; each key's latest once, the most recently replaced last.
    assert outbox.take() == ["m1", "m2", "s1", "q2"]
    assert len(outbox) == 0
    outbox.put_latest("QQQ", "q3")
    outbox.drop_latest("QQQ")
    assert outbox.take() == []
    # Latest-wins items never count against the bound.
    for i in range(100):
        outbox.put_latest(f"S{i}", "q")
    assert outbox.put("m4")
