"""Releases on a fake shell: the reservation an event ends is released once."""

from __future__ import annotations

from datetime import timedelta

from libs.contracts.envelope import new_event_id
from libs.contracts.risk import ReleaseReason, RiskReleased
from libs.runtime.clock import ManualClock
from services.risk.releases import Releases
from tests.unit.risk.builders import ACCOUNT, funded
from tests.unit.strategy.shell import FakeShell


async def test_a_rejection_before_any_order_releases_the_reservation_once() -> None:
    s, state = funded()
    shell = FakeShell(state.apply, ManualClock(s.clock + timedelta(hours=1)), producer="risk")
    releases = Releases(shell, state)
    suggestion_id, reservation_id = new_event_id(), new_event_id()
    state.apply(s.generated(suggestion_id))
    reserved = s.reserved(reservation_id, suggestion_id)
    state.apply(reserved)
    rejected = s.rejected(suggestion_id)
    state.apply(rejected)

    await releases.release_if_due(rejected)
    (released,) = shell.published
    assert isinstance(released, RiskReleased)
    assert released.reservation_id == reservation_id
    assert released.amount == reserved.amount
    assert released.reason is ReleaseReason.CANCELLED
    assert released.causation_id == rejected.event_id
    assert state.account(ACCOUNT).usage.reserved_risk == 0
    await releases.release_if_due(rejected)  # a redelivery: nothing pending any more
    assert len(shell.published) == 1


async def test_an_event_that_ends_nothing_releases_nothing() -> None:
    s, state = funded()
    shell = FakeShell(state.apply, ManualClock(s.clock))
    suggestion_id = new_event_id()
    state.apply(s.generated(suggestion_id))
    rejected = s.rejected(suggestion_id)
    state.apply(rejected)
    await Releases(shell, state).release_if_due(rejected)
    assert shell.published == []
