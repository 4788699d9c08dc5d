"""SimulatorClock: local extrapolation, periodic re-sync, never backwards, no I/O in now()."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from libs.runtime.sim_clock import (
    ClockReading,
    SimulatorClock,
    SimulatorClockUnavailable,
    fetch_simulator_clock,
)

T0 = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeSimulator:
    """Scripted `/sim/clock` answers; counts reads."""

    def __init__(self, reading: ClockReading) -> None:
        self.reading = reading
        self.reads = 0
        self.fail = False

    async def __call__(self) -> ClockReading:
        self.reads += 1
        if self.fail:
            raise SimulatorClockUnavailable("simulator down")
        return self.reading


def make(sim: FakeSimulator, mono: FakeTime, **kw: object) -> SimulatorClock:
    return SimulatorClock("http://127.0.0.1:1", fetch=sim, monotonic=mono, **kw)  # type: ignore[arg-type]


def test_now_before_any_reading_is_refused() -> None:
    clock = make(FakeSimulator(ClockReading(T0, 1.0)), FakeTime())
    assert not clock.synced
    with pytest.raises(SimulatorClockUnavailable):
        clock.now()


async def test_now_extrapolates_at_the_simulator_speed_without_io() -> None:
    mono, sim = FakeTime(), FakeSimulator(ClockReading(T0, 600.0))
    clock = make(sim, mono)
    await clock.sync()
    assert clock.now() == T0
    mono.t += 2.0
    assert clock.now() == T0 + timedelta(seconds=1200)
    mono.t += 0.5
    assert clock.now() == T0 + timedelta(seconds=1500)
    assert sim.reads == 1  # now() never reads the simulator
    assert clock.now().tzinfo is UTC


async def test_paused_simulator_holds_time() -> None:
    mono, sim = FakeTime(), FakeSimulator(ClockReading(T0, 0.0))
    clock = make(sim, mono)
    await clock.sync()
    mono.t += 100
    assert clock.now() == T0


async def test_resync_moves_forward_to_the_new_reading() -> None:
    mono, sim = FakeTime(), FakeSimulator(ClockReading(T0, 1.0))
    clock = make(sim, mono)
    await clock.sync()
    mono.t += 10
    sim.reading = ClockReading(T0 + timedelta(hours=1), 60.0)
    await clock.sync()
    assert clock.now() == T0 + timedelta(hours=1)
    assert clock.speed == 60.0
    mono.t += 1
    assert clock.now() == T0 + timedelta(hours=1, minutes=1)


async def test_resync_backwards_holds_until_caught_up() -> None:
    mono, sim = FakeTime(), FakeSimulator(ClockReading(T0, 10.0))
    clock = make(sim, mono)
    await clock.sync()
    mono.t += 10
    assert clock.now() == T0 + timedelta(seconds=100)
    # The simulator says we ran ahead: it is only at +60 s.
    sim.reading = ClockReading(T0 + timedelta(seconds=60), 10.0)
    await clock.sync()
    assert clock.now() == T0 + timedelta(seconds=100)  # held, not moved back
    mono.t += 2  # estimate +80 s: still behind what was shown
    assert clock.now() == T0 + timedelta(seconds=100)
    mono.t += 3  # estimate +110 s: caught up, moving again
    assert clock.now() == T0 + timedelta(seconds=110)


async def test_sync_uses_the_midpoint_of_the_request() -> None:
    mono = FakeTime()

    async def slow_fetch() -> ClockReading:
        mono.t += 1.0  # the request takes one real second
        return ClockReading(T0, 1.0)

    clock = SimulatorClock("http://x:1", fetch=slow_fetch, monotonic=mono)
    await clock.sync()
    assert clock.now() == T0 + timedelta(seconds=0.5)


async def test_background_resync_is_periodic_and_backs_off_after_errors() -> None:
    mono, sim = FakeTime(), FakeSimulator(ClockReading(T0, 1.0))
    waits: list[float] = []
    gate: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await gate.get()

    clock = make(sim, mono, sleep=sleep, resync_interval_s=5.0)
    async with clock:
        assert sim.reads == 1
        sim.fail = True
        for _ in range(6):
            gate.put_nowait(None)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert clock.consecutive_failures >= 5
        sim.fail = False
        gate.put_nowait(None)
        for _ in range(3):
            await asyncio.sleep(0)
        assert clock.consecutive_failures == 0
    assert waits[:7] == [5.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert clock.now() >= T0  # still usable after stop


async def test_start_fails_when_the_simulator_cannot_be_read() -> None:
    sim = FakeSimulator(ClockReading(T0, 1.0))
    sim.fail = True
    with pytest.raises(SimulatorClockUnavailable):
        await make(sim, FakeTime()).start()


def test_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SimulatorClock("http://x:1", resync_interval_s=0)


async def test_fetch_parses_the_simulator_answer_and_translates_failures() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/sim/clock"
        if request.url.host == "bad":
            return httpx2.Response(200, json={"now": "not a time", "speed": 1})
        if request.url.host == "down":
            return httpx2.Response(503, json={})
        return httpx2.Response(
            200, json={"now": "2025-06-03T15:00:00.000Z", "speed": 600.0, "market-open": True}
        )

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client:
        reading = await fetch_simulator_clock(client, "http://sim:1/")
        assert reading == ClockReading(T0, 600.0)
        for host in ("bad", "down"):
            with pytest.raises(SimulatorClockUnavailable, match="cannot read"):
                await fetch_simulator_clock(client, f"http://{host}:1")
