"""Properties of the whole fold over an account's realistic history."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from libs.cli.replay import PROJECTIONS
from libs.contracts.envelope import Event
from libs.contracts.registry import encode_event, parse_event
from libs.projections import AccountFold
from tests.integration.replay.scenario import account_history

ACCOUNT = "5WT00001"
HISTORIES = {
    "open": account_history(ACCOUNT, close_all=False),
    "closed": account_history(ACCOUNT, close_all=True),
}
START = AccountFold.start(ACCOUNT, PROJECTIONS)
ONCE = {name: START.fold(events) for name, events in HISTORIES.items()}


def with_redeliveries(events: list[Event], copies: list[tuple[int, int]]) -> list[Event]:
    """``events`` with, after event ``i``, a copy of an event ``j <= i`` per ``(i, j)``."""
    stream: list[Event] = []
    for i, event in enumerate(events):
        stream.append(event)
        stream += [events[min(j, i)] for after, j in copies if after == i]
    return stream


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(HISTORIES)),
    st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70)), max_size=40),
)
def test_any_interleaving_of_redeliveries_folds_as_once(
    history: str, copies: list[tuple[int, int]]
) -> None:
    events = HISTORIES[history]
    stream = with_redeliveries(events, copies)
    redelivered = START.fold(stream)
    assert redelivered.states == ONCE[history].states
    assert redelivered.to_json() == ONCE[history].to_json()


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(HISTORIES)), st.integers(0, 70))
def test_a_fold_resumed_at_any_point_equals_one_pass(history: str, cut: int) -> None:
    events = HISTORIES[history]
    assert START.fold(events[:cut]).fold(events[cut:]).states == ONCE[history].states


def test_events_decoded_from_the_wire_fold_the_same() -> None:
    for name, events in HISTORIES.items():
        decoded = [parse_event(encode_event(event)) for event in events]
        assert START.fold(decoded).states == ONCE[name].states


def test_the_history_exercises_every_projection() -> None:
    rendered = ONCE["closed"].to_json()
    assert set(rendered) == {"suggestions", "risk", "orders", "positions"}
    assert len(rendered["suggestions"]["suggestions"]) == 5
    assert rendered["risk"]["used_risk"] == "0"
    assert {o["status"] for o in rendered["orders"]["orders"].values()} == {
        "REJECTED",
        "FILLED",
        "CANCELLED",
        "REPLACED",
    }
    (position,) = rendered["positions"]["positions"].values()
    assert (position["status"], position["realized_pnl"]) == ("CLOSED", "-74")
    assert ONCE["open"].to_json()["risk"]["used_risk"] == "230"
