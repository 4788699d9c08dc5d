"""The fault tests' report: each test says which fault it injected and what it checked.

A session-scoped collector gathers one entry per test (fault, checks, outcome, duration)
and merges them into ``bench/results/faults.json`` at the end of the session, by test id,
so running a subset updates its own entries and keeps the others.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from nats.aio.client import Client

from services.simulator.server import SimulatorServer
from tests.faults.report import FaultEntry, FaultReport
from tests.faults.system import System

_OUTCOME_KEY = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    report.write()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item.stash[_OUTCOME_KEY] = report.outcome
    return report


@pytest.fixture
def fault(fault_report: FaultReport, request: pytest.FixtureRequest) -> Iterator[FaultEntry]:
    """This test's report entry; its outcome and duration are filled in afterwards."""
    entry = FaultEntry(test=request.node.nodeid.split("tests/faults/")[-1])
    started = time.monotonic()
    yield entry
    entry.duration_s = time.monotonic() - started
    entry.outcome = request.node.stash.get(_OUTCOME_KEY, "error")
    fault_report.entries.append(entry)


def _open_clients() -> set[int]:
    return {id(c) for c in gc.get_objects() if isinstance(c, Client) and not c.is_closed}


@pytest.fixture(scope="module", autouse=True)
async def no_leaked_nats_clients() -> AsyncIterator[None]:
    """A module must close every NATS client it opens (see tests/integration/conftest.py)."""
    before = _open_clients()
    yield
    await asyncio.sleep(0.2)
    gc.collect()
    leaked = [
        c.options.get("name")
        for c in gc.get_objects()
        if isinstance(c, Client) and not c.is_closed and id(c) not in before
    ]
    assert not leaked, f"NATS clients left open by this module: {leaked}"


#: Builds the running system on the given NATS URL and database DSN.
MakeSystem = Callable[[str, str], Awaitable[System]]


@pytest.fixture
async def make_system(simulator: SimulatorServer, tmp_path: Path) -> AsyncIterator[MakeSystem]:
    """Start the flow's services as processes against the given servers (stopped after)."""
    async with AsyncExitStack() as stack:

        async def make(nats_url: str, dsn: str) -> System:
            system = System(nats_url=nats_url, dsn=dsn, simulator=simulator, log_dir=tmp_path)
            stack.push_async_callback(system.stop)
            await system.start()
            return system

        yield make
