"""Two replicas each of strategy, risk and execution on one NATS, sharing accounts.

Ten linked accounts; every service but the three partitioned ones runs once. The test
checks that the replicas split the sixteen partitions between them, that both do work,
that each account's trades are decided in order by one replica (two approvals of one
account back to back: the second reservation sees the first), and then kills one
replica of each service (SIGKILL) in the middle of four more trades: the survivors take
its partitions once its leases expire and every trade completes, each event in the log
exactly once, each order once at the broker.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import UUID

import httpx2
import pytest
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.contracts.execution import OrderAccepted, OrderRejected, OrderSubmitted
from libs.contracts.partitions import PARTITIONS, partition_of
from libs.contracts.positions import ExitOrderPlaced, PositionOpened
from libs.contracts.risk import (
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
)
from libs.contracts.strategy import SuggestionApproved, SuggestionGenerated
from libs.runtime.leases import assign
from libs.runtime.servers import PostgresProcess, ServerProcess
from services.simulator.server import SimulatorServer
from tests.faults.report import FaultEntry
from tests.faults.system import (
    ACCOUNT,
    CREDENTIALS,
    STEP_S,
    Log,
    ServiceProcess,
    System,
    control,
    database_name,
    until,
)
from tests.integration.execution.harness import broker_orders

pytestmark = pytest.mark.fault

PARTITIONED = ("strategy", "risk", "execution")
REPLICAS = ("a", "b")
SECRET = "scale-out-secret"
REFRESH = "scale-out-refresh"
LEASE_ENV = {"SENEX_LEASE_TTL_S": "3", "SENEX_LEASE_TICK_S": "0.5"}
#: Who owns which partition once both replicas run (the same for the three services).
OWNER = assign(REPLICAS, range(PARTITIONS))


def owner_of(account: str) -> str:
    return OWNER[partition_of(account)]


async def _get(proc: ServiceProcess, path: str) -> httpx2.Response:
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{proc.port}{path}")


async def partitions_of(proc: ServiceProcess) -> set[int]:
    """The partitions a replica reports holding on /health."""
    checks = (await _get(proc, "/health")).json()["checks"]
    held = checks["partitions"]
    return set() if held == "none" else {int(p) for p in held.split(",")}


async def reactions_of(proc: ServiceProcess) -> float:
    """Events this replica's consumers handled successfully (its /metrics)."""
    text = (await _get(proc, "/metrics")).text
    pattern = r'^senex_events_handled_total\{[^}]*outcome="ok"[^}]*\} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE))


@pytest.fixture
async def system(
    simulator: SimulatorServer,
    nats_factory: Callable[[], ServerProcess],
    postgres_server: PostgresProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[System]:
    customer = await control(
        simulator,
        "POST",
        "/sim/customers",
        {"name": "Scale", "client-secret": SECRET, "refresh-token": REFRESH, "accounts": 9},
    )
    credentials = BrokerCredentials(
        client_secret=SecretStr(SECRET), refresh_token=SecretStr(REFRESH)
    )
    nats = nats_factory()
    system = System(
        nats_url=nats.url,
        dsn=postgres_server.create_database(database_name(request.node.name)),
        simulator=simulator,
        log_dir=tmp_path,
        extra_env=LEASE_ENV,
        replicas={service: REPLICAS for service in PARTITIONED},
        links=dict.fromkeys(customer["accounts"], credentials),
    )
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


def replica(system: System, service: str, name: str) -> ServiceProcess:
    return system.procs[f"{service}-{name}"]


async def split_as_assigned(system: System) -> bool:
    for service in PARTITIONED:
        for name in REPLICAS:
            expected = {p for p, owner in OWNER.items() if owner == name}
            if await partitions_of(replica(system, service, name)) != expected:
                return False
    return True


async def trade_outcome(system: System, sid: UUID) -> str | None:
    """ "opened" (position with three accepted exits), "refused", or None (not yet)."""
    log = await system.read_log()
    reserved = log.of(RiskReserved, suggestion_id=sid)
    if log.of(RiskReservationFailed, suggestion_id=sid):
        return "refused"
    opened = log.of(PositionOpened, suggestion_id=sid)
    released = log.of(RiskReleased, suggestion_id=sid)
    if reserved and released and not opened:
        return "refused"
    if not opened:
        return None
    exits = {e.order_id for e in log.of(ExitOrderPlaced, position_id=opened[0].position_id)}
    accepted = {e.order_id for e in log.of(OrderAccepted)}
    return "opened" if len(exits) == 3 and exits <= accepted else None


async def wait_outcomes(system: System, sids: list[UUID], timeout: float) -> dict[UUID, str]:
    async def all_done() -> dict[UUID, str] | None:
        outcomes = {sid: await trade_outcome(system, sid) for sid in sids}
        if any(o is None for o in outcomes.values()):
            return None
        return {sid: o for sid, o in outcomes.items() if o is not None}

    try:
        result: dict[UUID, str] = await until(all_done, timeout, "every trade's outcome")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{system.logs()}") from exc
    return result


def check_exactly_once(log: Log, sids: list[UUID]) -> None:
    """One of each decision per trade; one OrderSubmitted per order id."""
    events = log.events
    for sid in sids:
        assert (
            len([g for g in log.of(SuggestionGenerated) if g.suggestion.suggestion_id == sid]) == 1
        )
        assert len(log.of(RiskCheckPassed, suggestion_id=sid)) == 1
        assert len(log.of(SuggestionApproved, suggestion_id=sid)) == 1
        reserved = log.of(RiskReserved, suggestion_id=sid)
        failed = log.of(RiskReservationFailed, suggestion_id=sid)
        assert len(reserved) + len(failed) == 1, (sid, reserved, failed)
        assert len(log.of(PositionOpened, suggestion_id=sid)) <= 1
    submitted = Counter(e.order_id for e in events if isinstance(e, OrderSubmitted))
    assert all(n == 1 for n in submitted.values()), submitted
    positions = log.of(PositionOpened)
    assert len({p.position_id for p in positions}) == len(positions)
    per_position = Counter(e.position_id for e in log.of(ExitOrderPlaced))
    assert all(per_position[p.position_id] == 3 for p in positions), per_position


def check_account_order(log: Log, first: UUID, second: UUID) -> None:
    """Two approvals of one account, decided in stream order by one replica at a time.

    Risk reserves under the account's budget: the reservation decided second must count
    the first one's risk (as reserved or as an open position). Decided concurrently or
    out of order by two replicas, it would not.
    """
    approvals = {a.suggestion_id: i for i, a in enumerate(log.of(SuggestionApproved))}
    assert approvals[first] < approvals[second]
    decisions = [
        e
        for e in log.events
        if isinstance(e, RiskReserved | RiskReservationFailed)
        and e.suggestion_id in (first, second)
    ]
    assert [d.suggestion_id for d in decisions] == [first, second], decisions
    earlier, later = decisions
    if not isinstance(earlier, RiskReserved):
        return  # the first took no risk: nothing for the second to have seen
    assessment = later.assessment
    assert assessment is not None
    assert assessment.used_risk >= earlier.amount, (earlier, later)


async def broker_tags(system: System, accounts: list[str]) -> Counter[str]:
    tags: Counter[str] = Counter()
    for account in accounts:
        secret, refresh = (
            (SECRET, REFRESH)
            if account != ACCOUNT
            else (
                CREDENTIALS.client_secret.get_secret_value(),
                CREDENTIALS.refresh_token.get_secret_value(),
            )
        )
        for order in await broker_orders(
            system.simulator, account=account, secret=secret, refresh=refresh
        ):
            if order["status"] != "Rejected":
                tags[str(order.get("external-identifier"))] += 1
    return tags


async def approve_both(system: System, account: str) -> tuple[UUID, UUID]:
    first, first_warning = await system.generate(account=account)
    second, second_warning = await system.generate(account=account)
    # Back to back: the second approval is queued behind the first at risk.
    await asyncio.gather(
        system.approve(first, first_warning), system.approve(second, second_warning)
    )
    return first.suggestion.suggestion_id, second.suggestion.suggestion_id


async def test_replicas_share_accounts_and_a_killed_one_hands_them_over(
    fault: FaultEntry, system: System
) -> None:
    fault.fault = (
        "two replicas each of strategy, risk and execution; one of each SIGKILLed mid-flow"
    )
    await until(lambda: split_as_assigned(system), 30, "the replicas to split the partitions")
    fault.check("each service's two replicas hold disjoint halves of the 16 partitions")

    accounts = sorted({ACCOUNT, *system.links})
    side_a = [a for a in accounts if owner_of(a) == "a"]
    side_b = [a for a in accounts if owner_of(a) == "b"]
    assert len(side_a) >= 4, side_a
    assert len(side_b) >= 4, side_b
    before = [*side_a[:2], *side_b[:2]]
    during = [*side_a[2:4], *side_b[2:4]]

    # --- both replicas up: two trades per account, approved back to back ------------
    pairs = await asyncio.gather(*(approve_both(system, a) for a in before))
    sids = [sid for pair in pairs for sid in pair]
    outcomes = await wait_outcomes(system, sids, timeout=120)
    assert Counter(outcomes.values())["opened"] >= len(before), outcomes
    for service in PARTITIONED:
        for name in REPLICAS:
            assert await reactions_of(replica(system, service, name)) > 0, (service, name)
    fault.check(
        "both replicas of each service reacted to events (their /metrics), every "
        "account's trades completed or were refused with a reason"
    )
    log = await system.read_log()
    for first, second in pairs:
        check_account_order(log, first, second)
    fault.check(
        "per account, the second of two back-to-back approvals was decided after the "
        "first and counted its risk"
    )

    # --- kill one replica of each in the middle of four more trades -----------------
    generated = await asyncio.gather(*(system.generate(account=a) for a in during))
    await asyncio.gather(*(system.approve(g, w) for g, w in generated))
    for service in PARTITIONED:
        replica(system, service, "b").kill()
    later = [g.suggestion.suggestion_id for g, _ in generated]
    later_outcomes = await wait_outcomes(system, later, timeout=STEP_S + 60)
    assert set(later_outcomes.values()) == {"opened"}, later_outcomes
    fault.check("after the kill every trade in flight completed, b's accounts included")

    async def survivors_hold_all() -> bool:
        for service in PARTITIONED:
            held = await partitions_of(replica(system, service, "a"))
            if held != set(range(PARTITIONS)):
                return False
        return True

    await until(survivors_hold_all, 30, "the survivors to hold every partition")
    fault.check("the surviving replica of each service holds all 16 partitions")

    log = await system.check_log_integrity(fault)
    all_sids = [*sids, *later]
    check_exactly_once(log, all_sids)
    fault.check(
        "per trade one SuggestionGenerated, RiskCheckPassed, SuggestionApproved and one "
        "reservation decision; one OrderSubmitted per order; three exits per position"
    )
    submitted = [e for e in log.events if isinstance(e, OrderSubmitted)]
    refused = {e.order_id for e in log.events if isinstance(e, OrderRejected)}
    sent = Counter(e.client_tag for e in submitted if e.order_id not in refused)
    tags = await broker_tags(system, accounts)
    assert tags == sent, (tags, sent)
    fault.check("broker: exactly one order per client tag, the ones the log says were sent")
    fault.details = {
        "accounts_before_kill": before,
        "accounts_during_kill": during,
        "trades": len(all_sids),
        "outcomes": dict(Counter([*outcomes.values(), *later_outcomes.values()])),
        "log_rows": len(log.rows),
    }
