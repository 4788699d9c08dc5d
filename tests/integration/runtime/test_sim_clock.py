"""SimulatorClock against a real simulator: business time follows it at its speed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx2

from libs.runtime.sim_clock import SimulatorClock
from services.simulator.server import SimulatorServer


async def _sim_now(client: httpx2.AsyncClient, url: str) -> datetime:
    response = await client.get(f"{url}/sim/clock")
    response.raise_for_status()
    return datetime.fromisoformat(response.json()["now"])


async def test_business_time_follows_the_simulator_at_speed_600(
    simulator: SimulatorServer,
) -> None:
    url = simulator.url
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        answer = await client.put(f"{url}/sim/clock", json={"speed": 600})
        answer.raise_for_status()
        async with SimulatorClock(url, resync_interval_s=0.2) as clock:
            assert clock.speed == 600
            start_local = clock.now()
            start_sim = await _sim_now(client, url)
            # Within a few simulated seconds of the simulator (600x a short request).
            assert abs(start_local - start_sim) < timedelta(seconds=120)
            seen = [start_local]
            for _ in range(10):
                await asyncio.sleep(0.1)
                seen.append(clock.now())
            end_sim = await _sim_now(client, url)
            end_local = clock.now()
        # 1 real second at 600x: at least 5 simulated minutes (lenient), on both sides.
        assert end_sim - start_sim >= timedelta(seconds=300)
        assert end_local - start_local >= timedelta(seconds=300)
        assert abs(end_local - end_sim) < timedelta(seconds=120)
        assert seen == sorted(seen)  # never backwards, re-syncs included


async def test_a_paused_simulator_holds_business_time(simulator: SimulatorServer) -> None:
    url = simulator.url
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        (await client.put(f"{url}/sim/clock", json={"speed": 0})).raise_for_status()
        async with SimulatorClock(url, resync_interval_s=0.1) as clock:
            first = clock.now()
            await asyncio.sleep(0.3)
            assert clock.now() == first == await _sim_now(client, url)


async def test_at_speed_600_a_simulated_day_takes_under_three_real_minutes(
    simulator: SimulatorServer,
) -> None:
    # A day in under 180 real seconds means at least 480 simulated seconds per real
    # second; measured over a few real seconds on both the simulator and the follower.
    url = simulator.url
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        (await client.put(f"{url}/sim/clock", json={"speed": 600})).raise_for_status()
        async with SimulatorClock(url, resync_interval_s=0.5) as clock:
            loop = asyncio.get_running_loop()
            real_0, sim_0, local_0 = loop.time(), await _sim_now(client, url), clock.now()
            await asyncio.sleep(2.5)
            real_1, sim_1, local_1 = loop.time(), await _sim_now(client, url), clock.now()
    real = real_1 - real_0
    day = timedelta(days=1).total_seconds()
    for simulated in (sim_1 - sim_0, local_1 - local_0):
        rate = simulated.total_seconds() / real
        assert day / rate < 180, f"a simulated day would take {day / rate:.0f} real seconds"
