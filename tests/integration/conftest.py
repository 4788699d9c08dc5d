"""Integration-test guards shared by every module."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client


def _open_clients() -> set[int]:
    return {id(c) for c in gc.get_objects() if isinstance(c, Client) and not c.is_closed}


@pytest.fixture(scope="module", autouse=True)
async def no_leaked_nats_clients() -> AsyncIterator[None]:
    """A module must close every NATS client it opens.

    A leaked client reconnects forever in the background of later modules, logging into
    their output and holding sockets: a service that was "stopped" but is not.
    """
    before = _open_clients()
    yield
    await asyncio.sleep(0.2)  # let closes scheduled by the last teardown finish
    gc.collect()
    leaked = [
        (c.options.get("name"), str(c.connected_url or ""))
        for c in gc.get_objects()
        if isinstance(c, Client) and not c.is_closed and id(c) not in before
    ]
    assert not leaked, f"NATS clients left open by this module: {leaked}"
