"""Execution's internal latency: from an approval's reservation to the broker request.

    python bench/execution.py [--orders N]

Starts its own nats-server and PostgreSQL (embedded, temporary) and a broker simulator
(in-process, background thread), runs the execution service in-process (real bus,
real adapter, real SDK over loopback HTTP) and, ``--orders`` times, one after another:
publishes a Trident suggestion and its approval, then — clock started — the
``RiskReserved`` that triggers the order, and stops the clock when the simulator's
ASGI app receives the ``POST /orders`` request (before the simulator authenticates,
sweeps its live orders or processes the order: its own delay is excluded). Orders are priced to rest
(far above the mid), so each one is placed and acknowledged without exits.

Figures (milliseconds):

* ``approval_to_broker_request_ms_*``: publish of ``RiskReserved`` -> request at the
  simulator: JetStream publish and delivery to the service, the reaction (building the
  order, publishing ``OrderSubmitted`` and waiting for its JetStream ack), the adapter
  and the SDK serialising the request, loopback HTTP.
* ``reaction_to_send_call_ms_*``: inside the service only, from the reaction starting
  to the adapter's place call (``ExecutionService.send_latency``): building the order
  and publishing ``OrderSubmitted`` (JetStream ack included).

Prints the figures and writes ``bench/results/execution.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from libs.broker.adapter import BrokerAdapter, StaticCredentials  # noqa: E402
from libs.contracts.execution import OrderAccepted, OrderCancelled  # noqa: E402
from libs.contracts.registry import parse_event  # noqa: E402
from libs.domain.orders import client_tag_for, opening_order_id  # noqa: E402
from libs.eventlog.migrate import migrate  # noqa: E402
from libs.runtime.bus import Bus  # noqa: E402
from libs.runtime.clock import ManualClock  # noqa: E402
from libs.runtime.servers import EmbeddedNats, EmbeddedPostgres  # noqa: E402
from services.simulator.server import SimulatorServer  # noqa: E402
from tests.integration.execution.harness import (  # noqa: E402
    ACCOUNT,
    CREDENTIALS,
    approval,
    broker_settings,
    control,
    start_execution,
    trident,
)

RESULTS = ROOT / "bench" / "results" / "execution.json"
#: A Tuesday mid-session (as the tests' fixture), so the market is open throughout.
SIM_START = datetime.fromisoformat("2025-06-03T11:00:00-04:00")
WAIT = 10.0
RESTING = Decimal("40.00")


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    index = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def _summary(name: str, seconds: Sequence[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        f"{name}_ms_p50": round(_percentile(ms, 0.50), 3),
        f"{name}_ms_p99": round(_percentile(ms, 0.99), 3),
        f"{name}_ms_max": round(ms[-1], 3),
        f"{name}_ms_mean": round(statistics.fmean(ms), 3),
    }


async def measure(orders: int, work: Path) -> dict[str, Any]:
    nats_server = EmbeddedNats(work / "nats")
    pg = EmbeddedPostgres(work / "pg", durable=False)
    simulator = SimulatorServer(work / "sim", start=SIM_START, seed=7)
    arrivals: list[float] = []
    _time_order_requests(simulator, arrivals)
    nats_server.start()
    pg.start()
    simulator.start()
    try:
        dsn = pg.create_database("bench")
        await migrate(dsn)
        await control(simulator, "PUT", "/sim/clock", {"speed": 0})  # prices hold still
        bus = await Bus.connect(nats_server.url, "bench")
        accepted: set[Any] = set()
        cancelled: set[Any] = set()

        async def collect(msg: Any) -> None:
            event = parse_event(msg.data)
            if isinstance(event, OrderAccepted):
                accepted.add(event.order_id)
            elif isinstance(event, OrderCancelled):
                cancelled.add(event.order_id)

        await bus.nc.subscribe("senex.evt.>", cb=collect)
        service = await start_execution(
            ManualClock(SIM_START), nats_server.url, dsn, simulator, durable="execution"
        )
        async with BrokerAdapter(
            broker_settings(simulator), StaticCredentials({ACCOUNT: CREDENTIALS})
        ) as adapter:
            suggestion = await trident(adapter, simulator)
            latencies: list[float] = []
            for i in range(orders + 5):  # the first five warm up and are not counted
                decision = approval(
                    suggestion.model_copy(update={"suggestion_id": _id(i)}), RESTING
                )
                await bus.publish_many([decision.generated, decision.approved])
                before = len(arrivals)
                started = time.perf_counter()
                await bus.publish(decision.reserved)
                deadline = started + WAIT
                order_id = opening_order_id(decision.reserved.reservation_id)
                while order_id not in accepted:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"order {i} was not accepted within {WAIT}s")
                    await asyncio.sleep(0.0005)
                if len(arrivals) != before + 1:
                    raise RuntimeError(f"order {i}: {len(arrivals) - before} requests")
                if i >= 5:
                    latencies.append(arrivals[before] - started)
                # Cancelled at once: the simulator sweeps every live order on each
                # request, and its thread shares this process's GIL with the service.
                placed = await adapter.find_order_by_client_tag(ACCOUNT, client_tag_for(order_id))
                if placed is not None:
                    await adapter.cancel_order(ACCOUNT, placed.broker_order_id)
                    for _ in range(int(WAIT / 0.001)):
                        if order_id in cancelled:
                            break
                        await asyncio.sleep(0.001)
        internal = service.send_latency[5:]
        await service.stop()
        await bus.close()
    finally:
        simulator.stop()
        pg.stop()
        nats_server.stop()
    return {
        "orders": len(latencies),
        **_summary("approval_to_broker_request", latencies),
        **_summary("reaction_to_send_call", internal),
    }


def _time_order_requests(simulator: SimulatorServer, arrivals: list[float]) -> None:
    """Record when each ``POST .../orders`` reaches the simulator's ASGI app: the first
    moment the broker sees it, before authentication, its sweep of live orders and the
    order's own processing (the simulator's delay, excluded from the figure)."""
    make_config = simulator._config

    def config() -> Any:
        cfg = make_config()
        app: Any = cfg.app

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            if (
                scope["type"] == "http"
                and scope["method"] == "POST"
                and scope["path"].endswith("/orders")
            ):
                arrivals.append(time.perf_counter())
            await app(scope, receive, send)

        cfg.app = timed
        return cfg

    simulator._config = config  # type: ignore[method-assign]


def _id(i: int) -> Any:
    from uuid import UUID

    return UUID(int=(0x0197 << 112) | (0x7 << 76) | (0x8 << 60) | i)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="senex-bench-exec-"))
    work.chmod(0o755)
    figures = asyncio.run(measure(args.orders, work))
    result = {
        **figures,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count() or 0},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key}: {value}")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
