"""The broker (simulator) misbehaves at random, seeded: the system recovers and explains.

Before each trade attempt the test draws, from a seeded generator, a handful of request
faults (401, 429, 500; each for one or two requests, consumed by whichever service asks
the broker next), websocket drops (DXLink, account streamer or both) and, for the first
attempt, a broker refusal of the next order. It then runs the trade; an attempt the
faults end early (the order refused, the reservation failed) is followed by a new one,
up to three, with the faults cleared for the last.

Checked afterwards: a trade completed; every refusal is explained in the audit log
(OrderRejected with its kind and reason, RiskReservationFailed with its kind and
message, each followed by the reservation's release when there was one); every
TradingSuspended is followed by a TradingResumed; and the exactly-once invariants of
`System.check_invariants` hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable

import pytest

from libs.contracts.execution import OrderRejected
from libs.contracts.risk import ReleaseReason, RiskReleased, RiskReservationFailed, RiskReserved
from libs.contracts.system import TradingResumed, TradingSuspended
from libs.runtime.servers import PostgresProcess, ServerProcess
from tests.faults.conftest import MakeSystem
from tests.faults.report import FaultEntry
from tests.faults.system import (
    Completed,
    FlowRefused,
    System,
    control,
    database_name,
    run_flow,
    until,
)

pytestmark = pytest.mark.fault

SEED = 16
REQUEST_FAULTS = ("unauthorized", "rate-limit", "server-error")
SOCKETS = ("dxlink", "account", "all")
REJECT_REASON = "Simulated: order exceeds the account's option level"


async def _inject(system: System, rng: random.Random, drawn: list[str]) -> None:
    for _ in range(rng.randint(3, 6)):
        kind = rng.choice(REQUEST_FAULTS)
        count = rng.randint(1, 2)
        await control(system.simulator, "POST", "/sim/faults", {"kind": kind, "count": count})
        drawn.append(f"{kind} x{count}")
    for _ in range(rng.randint(1, 2)):
        sockets = rng.choice(SOCKETS)
        await control(system.simulator, "POST", "/sim/sockets/drop", {"kind": sockets})
        drawn.append(f"drop {sockets} sockets")
        await asyncio.sleep(rng.uniform(0.0, 0.5))


async def test_random_broker_faults_recovered_and_explained(
    fault: FaultEntry,
    nats_factory: Callable[[], ServerProcess],
    postgres_server: PostgresProcess,
    make_system: MakeSystem,
    request: pytest.FixtureRequest,
) -> None:
    fault.fault = f"simulator 401/429/500 at random, dropped websockets, a refusal (seed {SEED})"
    nats = nats_factory()
    system = await make_system(
        nats.url, postgres_server.create_database(database_name(request.node.name))
    )
    rng = random.Random(SEED)
    drawn: list[str] = []
    ended: list[RiskReleased | RiskReservationFailed] = []
    done: Completed | None = None
    for attempt in range(3):
        last = attempt == 2
        if last:
            await control(system.simulator, "DELETE", "/sim/faults")

        if attempt == 0:  # an order fault: only the next order placed consumes it
            await control(
                system.simulator, "POST", "/sim/faults", {"kind": "reject", "reason": REJECT_REASON}
            )
            drawn.append("reject next order")
        reserved = len(system.collector.of(RiskReserved))

        async def inject(last: bool = last, reserved: int = reserved) -> None:
            # After the reservation, so the faults meet execution (order, lookups, streams)
            # rather than only risk's dry run.
            with contextlib.suppress(AssertionError):
                await system.collector.wait(RiskReserved, count=reserved + 1, timeout=10)
            if not last:
                await _inject(system, rng, drawn)

        try:
            done = await run_flow(system, after_approve=inject, timeout=60, refused=ended)
            break
        except FlowRefused:
            continue
    assert done is not None, f"no trade completed; faults {drawn}"
    fault.check(f"a trade completed (after {len(ended)} refused attempts)")
    # Faults no request met yet would meet the test's own reads of the broker below.
    await control(system.simulator, "DELETE", "/sim/faults")

    log = await system.check_invariants(done, fault)
    for rejected in log.of(OrderRejected):
        assert rejected.kind
        assert rejected.reason
    for failed in log.of(RiskReservationFailed):
        assert failed.reason
        assert failed.message
    for released in ended:
        if isinstance(released, RiskReleased):
            assert released.reason in (ReleaseReason.FAILED, ReleaseReason.REJECTED)
            assert released.order_id is not None
            assert log.of(OrderRejected, order_id=released.order_id)
    fault.check("every OrderRejected carries its kind and reason")
    fault.check("every RiskReservationFailed carries its kind and message")
    fault.check("every early release names the rejected order (OrderRejected in the log)")

    async def resumed() -> bool:
        log = await system.read_log()
        kinds = [e.type for e in log.events if isinstance(e, TradingSuspended | TradingResumed)]
        return all(a != b for a, b in itertools.pairwise(kinds)) and kinds[-1:] != [
            "TradingSuspended"
        ]

    await until(resumed, 30, "every TradingSuspended to be followed by TradingResumed")
    log = await system.read_log()
    fault.check("TradingSuspended/TradingResumed alternate, ending resumed")
    for name, proc in system.procs.items():
        assert proc.alive, f"{name} died:\n{proc.tail()}"
    fault.check("no service died")
    fault.details = {
        "seed": SEED,
        "faults_drawn": drawn,
        "refused_attempts": [f"{type(e).__name__}: {getattr(e, 'reason', '')}" for e in ended],
        "order_rejections": [f"{e.kind}: {e.reason}" for e in log.of(OrderRejected)],
        "suspensions": len(log.of(TradingSuspended)),
        "log_rows": len(log.rows),
    }
