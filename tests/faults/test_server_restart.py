"""NATS and PostgreSQL restarted in the middle of the trade flow.

The servers are the test's own (`nats_factory` / `postgres_factory`), restarted on the
same port with the same data directory, as an operator or a crash-restart would. Each is
SIGKILLed in the middle of the flow (NATS right after the approval, PostgreSQL when the
opening order's intent is published) and started again after a pause, so every service
sees the connection drop.

Afterwards the services are the same processes (they reconnected; none restarted), the
flow completed and the log holds every event exactly once (`System.check_invariants`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from libs.contracts.errors import ErrorKind
from libs.contracts.execution import OrderRejected, OrderSubmitted
from libs.contracts.risk import ReleaseReason, RiskReleased, RiskReservationFailed
from libs.runtime.servers import PostgresProcess, ServerProcess
from tests.faults.conftest import MakeSystem
from tests.faults.report import FaultEntry
from tests.faults.system import FlowRefused, System, database_name, run_flow

pytestmark = pytest.mark.fault

#: How long a server stays down.
DOWN_S = 3.0


def _same_processes(system: System, fault: FaultEntry) -> None:
    for name, proc in system.procs.items():
        assert proc.alive, f"{name} died:\n{proc.tail()}"
        assert proc.starts == 1, f"{name} was restarted"
    fault.check("every service reconnected in the same process (none died or restarted)")


async def test_nats_killed_and_restarted_mid_flow(
    fault: FaultEntry,
    nats_factory: Callable[[], ServerProcess],
    postgres_server: PostgresProcess,
    make_system: MakeSystem,
    request: pytest.FixtureRequest,
) -> None:
    fault.fault = f"NATS SIGKILLed after the approval, restarted {DOWN_S:.0f} s later (same data)"
    nats = nats_factory()
    dsn = postgres_server.create_database(database_name(request.node.name))
    system = await make_system(nats.url, dsn)

    async def bounce() -> None:
        nats.kill()
        await asyncio.sleep(DOWN_S)
        nats.start()

    done = await run_flow(system, after_approve=bounce, timeout=90)
    _same_processes(system, fault)
    log = await system.check_invariants(done, fault)
    fault.details = {"log_rows": len(log.rows), "down_s": DOWN_S}


async def test_postgres_killed_and_restarted_mid_flow(
    fault: FaultEntry,
    nats_factory: Callable[[], ServerProcess],
    postgres_factory: Callable[[], PostgresProcess],
    make_system: MakeSystem,
    request: pytest.FixtureRequest,
) -> None:
    fault.fault = (
        "PostgreSQL SIGKILLed when the opening order's intent is published, "
        f"restarted {DOWN_S:.0f} s later (same data)"
    )
    nats = nats_factory()
    pg = postgres_factory()
    dsn = pg.create_database(database_name(request.node.name))
    system = await make_system(nats.url, dsn)

    async def bounce() -> None:
        # Not at the approval itself: risk refuses a reservation whose dry run cannot
        # read the vault (SERVICE_UNAVAILABLE, by design: nothing is reserved without the
        # broker's verdict), which ends the flow there.
        await system.collector.wait(OrderSubmitted)
        pg.kill()
        await asyncio.sleep(DOWN_S)
        pg.start()

    refused: list[RiskReleased | RiskReservationFailed] = []
    try:
        done = await run_flow(system, after_approve=bounce, timeout=90, refused=refused)
    except FlowRefused as exc:
        # The opening order could not be sent while the vault was unreachable: execution
        # rejects it (DOMAIN.md 5 retries only timeouts, 429 and 5xx), risk releases the
        # reservation. That must be explained in the log and leave nothing at the broker;
        # then a new trade must go through on the recovered system.
        (released,) = refused
        assert isinstance(released, RiskReleased)
        assert released.reason is ReleaseReason.FAILED
        (rejected,) = exc.log.of(OrderRejected, order_id=released.order_id)
        assert rejected.kind is ErrorKind.SERVICE_UNAVAILABLE
        assert "vault" in rejected.reason
        fault.check(
            "opening order refused during the outage is explained: OrderRejected "
            "SERVICE_UNAVAILABLE with its reason, RiskReleased FAILED"
        )
        fault.details["refused_during_outage"] = True
        done = await run_flow(system, timeout=60)
        fault.check("a new trade after the restart completes")
    _same_processes(system, fault)
    log = await system.check_invariants(done, fault)
    fault.details.update({"log_rows": len(log.rows), "down_s": DOWN_S})
