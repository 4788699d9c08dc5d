"""Background work per account, handed over with its partition; one sending loop per order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from uuid import UUID, uuid4

import pytest

from libs.contracts.execution import OrderStatus, OrderSubmitted
from libs.runtime.log import get_logger
from services.execution.background import Background, Launcher, unanswered
from services.execution.core import opening_order
from services.execution.projection import OrderRecord
from services.execution.state import ExecutionState
from tests.unit.execution import builders
from tests.unit.execution.builders import D
from tests.unit.execution.fakes import ACCOUNT, FakeFeeds, others

LOG = get_logger("execution-test")


def _submitted() -> OrderRecord:
    state = ExecutionState()
    spec = opening_order(builders.suggestion(), D("2.50"), reservation_id=uuid4())
    state.apply(OrderSubmitted(**others(), **spec.submitted_fields()))
    record = state.order(spec.order_id)
    assert record is not None
    return record


class Drives:
    """A sending loop that records its calls and waits until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, UUID, bool, float | None]] = []
        self.release = asyncio.Event()

    async def __call__(
        self, account: str, order_id: UUID, resume: bool, decided: float | None
    ) -> None:
        self.calls.append((account, order_id, resume, decided))
        await self.release.wait()


def _launcher(owned: set[str]) -> tuple[Background, Launcher, Drives, FakeFeeds]:
    background = Background(LOG)
    launcher = Launcher(background, owns=lambda account: account in owned)
    drives, feeds = Drives(), FakeFeeds()
    launcher.bind(drive=drives, feeds=feeds)
    return background, launcher, drives, feeds


def test_an_order_is_unanswered_while_submitted_without_a_broker_id() -> None:
    record = _submitted()
    assert unanswered(record)
    assert not unanswered(replace(record, broker_order_id="7"))
    assert not unanswered(replace(record, status=OrderStatus.REJECTED))


async def test_a_failure_is_logged_and_the_task_forgotten() -> None:
    background = Background(LOG)

    async def fail() -> None:
        raise RuntimeError("boom")

    background.spawn(fail(), "failing", ACCOUNT)
    (task,) = background.tasks()
    await task  # swallowed (logged), never raised at stop
    await asyncio.sleep(0)
    assert background.tasks() == []


async def test_a_hand_over_waits_for_the_work_of_its_accounts_then_cuts_it_short() -> None:
    background = Background(LOG)
    finished: list[str] = []

    async def work(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        finished.append(name)

    background.spawn(work("quick", 0), "quick", "A")
    background.spawn(work("slow", 60), "slow", "A")
    background.spawn(work("other", 60), "other", "B")
    await background.hand_over({"A"}, grace_s=0.2)
    assert finished == ["quick"]
    assert [t.get_name() for t in background.tasks()] == ["other"]
    await background.hand_over({"B"}, grace_s=None)  # lost: no wait at all
    assert background.tasks() == []
    assert finished == ["quick"]


async def test_an_order_has_one_sending_loop_at_a_time() -> None:
    background, launcher, drives, _ = _launcher({ACCOUNT})
    order_id = uuid4()
    launcher.start_sending(ACCOUNT, order_id, resume=False, decided=1.5)
    launcher.start_sending(ACCOUNT, order_id, resume=True)
    await asyncio.sleep(0)
    assert drives.calls == [(ACCOUNT, order_id, False, 1.5)]
    assert launcher.sending(order_id)
    drives.release.set()
    await asyncio.gather(*background.tasks())
    assert not launcher.sending(order_id)
    launcher.start_sending(ACCOUNT, order_id, resume=True)
    await asyncio.gather(*background.tasks())
    assert len(drives.calls) == 2


async def test_only_an_unanswered_order_not_being_sent_is_resumed() -> None:
    background, launcher, drives, _ = _launcher({ACCOUNT})
    record = _submitted()
    launcher.resume_if_unanswered(ACCOUNT, replace(record, broker_order_id="7"))
    launcher.resume_if_unanswered(ACCOUNT, record)
    launcher.resume_if_unanswered(ACCOUNT, record)
    await asyncio.sleep(0)
    assert drives.calls == [(ACCOUNT, record.order_id, True, None)]
    await background.close()


async def test_an_account_is_followed_once_and_only_when_owned() -> None:
    background, launcher, _, feeds = _launcher({ACCOUNT})
    launcher.follow(ACCOUNT)
    launcher.follow("5WT00002")
    await asyncio.gather(*background.tasks())
    assert feeds.followed == {ACCOUNT}
    launcher.follow(ACCOUNT)
    assert background.tasks() == []  # followed already: nothing started


def test_an_unbound_launcher_refuses_to_start_work() -> None:
    launcher = Launcher(Background(LOG), owns=lambda account: True)
    with pytest.raises(RuntimeError):
        launcher.start_sending(ACCOUNT, uuid4(), resume=False)
    with pytest.raises(RuntimeError):
        launcher.follow(ACCOUNT)
