"""SIGKILL each service in turn in the middle of the trade flow, then restart it.

Every service runs as its own process (``python -m services.<name>``); the killed one
is restarted at once, as an orchestrator would. Where it dies:

* audit: right after the approval, while the reservation, the order and the fill are
  being published (the recorder resumes at its log's head + 1);
* market_data: right after the approval (risk asks it for stress, the monitor leases the
  legs from it);
* strategy: between the suggestion and its approval (the approval is then sent to the
  restarted process, which must know the suggestion from the stream);
* risk: as soon as the approval is published (mid-reservation, the dry run in flight);
* execution: as soon as the opening order's intent (OrderSubmitted) is published
  (between intent and the broker's answer: it must find the order by its client tag);
* position_monitor: as soon as the position is opened.

Afterwards: every event is in the log exactly once (gapless positions equal to the
stream, unique ids, the hash chain verifies, no duplicate markers), each decision was
taken once (one approval, one reservation, one position, three exits, one OrderSubmitted
per order), one order per client tag at the broker, and the flow completed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from libs.contracts.envelope import Event
from libs.contracts.execution import OrderSubmitted
from libs.contracts.positions import PositionOpened
from libs.contracts.strategy import SuggestionApproved
from libs.runtime.servers import PostgresProcess, ServerProcess
from tests.faults.conftest import MakeSystem
from tests.faults.report import FaultEntry
from tests.faults.system import FLOW_SERVICES, System, database_name, run_flow

pytestmark = pytest.mark.fault


@pytest.fixture
async def system(
    nats_factory: Callable[[], ServerProcess],
    postgres_server: PostgresProcess,
    make_system: MakeSystem,
    request: pytest.FixtureRequest,
) -> System:
    nats = nats_factory()
    return await make_system(
        nats.url, postgres_server.create_database(database_name(request.node.name))
    )


#: When each service dies: "generated" (before the approval), "approved" (just after
#: it), or as soon as the collector sees the named event.
KILL_AT: dict[str, str] = {
    "audit": "approved",
    "market_data": "approved",
    "strategy": "generated",
    "risk": "SuggestionApproved",
    "execution": "OrderSubmitted",
    "position_monitor": "PositionOpened",
}


@pytest.mark.parametrize("service", FLOW_SERVICES)
async def test_sigkill_mid_flow_then_restart(
    service: str, fault: FaultEntry, system: System
) -> None:
    fault.fault = f"SIGKILL {service} mid-flow ({KILL_AT[service]}), restart it"
    killed: list[str] = []

    async def kill_and_restart() -> None:
        system.procs[service].kill()
        killed.append(service)
        await system.restart(service)

    def at_event() -> Callable[[], Awaitable[None]]:
        kinds: dict[str, type[Event]] = {
            "SuggestionApproved": SuggestionApproved,
            "OrderSubmitted": OrderSubmitted,
            "PositionOpened": PositionOpened,
        }
        kind = kinds[KILL_AT[service]]

        async def hook() -> None:
            await system.collector.wait(kind)
            await kill_and_restart()

        return hook

    point = KILL_AT[service]
    after_approve: Callable[[], Awaitable[None]] | None = None
    if point == "approved":
        after_approve = kill_and_restart
    elif point != "generated":
        after_approve = at_event()
    done = await run_flow(
        system,
        after_generate=kill_and_restart if point == "generated" else None,
        after_approve=after_approve,
    )
    assert killed == [service]
    assert system.procs[service].starts == 2
    fault.check(f"{service} killed with SIGKILL and restarted healthy")
    log = await system.check_invariants(done, fault)
    fault.details = {"log_rows": len(log.rows), "event_types": dict(log.types())}
    for name, proc in system.procs.items():
        assert proc.alive, f"{name} died:\n{proc.tail()}"
    fault.check("every service still running at the end")
