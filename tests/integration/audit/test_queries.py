"""Audit queries over NATS: events by account/type/time, causal chains, verify."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from libs.contracts.commands import (
    EventPageReply,
    GetCausalChain,
    GetEvents,
    VerifyEventLog,
    VerifyReply,
)
from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ValidationFailed
from libs.runtime.bus import Bus
from libs.runtime.runner import ServiceContext, serve
from libs.runtime.servers import PostgresProcess, ServerProcess, discard, new_nats
from libs.runtime.settings import Settings
from services.audit.service import AuditService
from tests.integration.audit.helpers import START, resumed, suspended, wait_for_rows

ALICE = "5WT00001"
BOB = "5WT00002"


class StoppableAudit(AuditService):
    """The audit service, keeping the runner's context so the test can stop it."""

    ctx: ServiceContext

    async def start(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        await super().start(ctx)


@pytest.fixture(scope="module")
def own_nats(server_root: Path) -> Iterator[ServerProcess]:
    """A NATS server of the module's own: the recorder copies the whole business stream,
    so events other tests published on the session's server must not be in it."""
    server = new_nats(Path(tempfile.mkdtemp(prefix="audit-q", dir=server_root)))
    server.start()
    yield server
    discard(server)


@pytest.fixture(scope="module")
async def audit(
    own_nats: ServerProcess, postgres_server: PostgresProcess
) -> AsyncIterator[tuple[Bus, str]]:
    """A running audit service with a small history recorded for two accounts."""
    dsn = postgres_server.create_database("audit_queries")
    service = StoppableAudit()
    started: asyncio.Event = asyncio.Event()

    async def on_start(_: int) -> None:
        started.set()

    settings = Settings(nats_url=own_nats.url, database_url=dsn)
    task = asyncio.create_task(
        serve(service, settings, install_signals=False, port=0, started=on_start)
    )
    await asyncio.wait_for(started.wait(), timeout=60)
    bus = await Bus.connect(own_nats.url, "gateway")
    yield bus, dsn
    await bus.close()
    assert service.recorder.running
    service.ctx.request_stop()
    assert await asyncio.wait_for(task, timeout=60) == 0


@pytest.fixture(scope="module")
async def history(audit: tuple[Bus, str]) -> dict[str, object]:
    bus, dsn = audit
    chain = new_event_id()
    cause = suspended(0)
    cause = cause.model_copy(update={"correlation_id": chain})
    events = [
        cause,
        resumed(10, correlation_id=chain, causation_id=cause.event_id),
        *[suspended(n) for n in range(20, 25)],
        suspended(30, account=BOB).model_copy(update={"correlation_id": chain}),
    ]
    await bus.publish_many(events)
    assert await wait_for_rows(dsn, len(events)) == len(events)
    return {"chain": chain, "events": events}


async def test_events_of_an_account_are_paged_in_position_order(
    audit: tuple[Bus, str], history: dict[str, object]
) -> None:
    bus, _ = audit
    first = await bus.request(GetEvents(account_id=ALICE, limit=4), EventPageReply)
    assert len(first.events) == 4
    assert first.next_after_position == first.events[-1].position
    rest = await bus.request(
        GetEvents(account_id=ALICE, limit=4, after_position=first.next_after_position),
        EventPageReply,
    )
    assert rest.next_after_position is None
    everything = first.events + rest.events
    assert [e.position for e in everything] == sorted(e.position for e in everything)
    assert {e.account_id for e in everything} == {ALICE}
    assert len(everything) == 7
    assert everything[0].data is not None
    assert everything[0].data["message"] == "broker unreachable #0"


async def test_events_filter_by_type_and_time(
    audit: tuple[Bus, str], history: dict[str, object]
) -> None:
    bus, _ = audit
    resumed_only = await bus.request(
        GetEvents(account_id=ALICE, types=("TradingResumed",)), EventPageReply
    )
    assert [e.type for e in resumed_only.events] == ["TradingResumed"]
    window = await bus.request(
        GetEvents(
            account_id=ALICE,
            since=START + timedelta(seconds=21),
            until=START + timedelta(seconds=23),
        ),
        EventPageReply,
    )
    assert len(window.events) == 3


async def test_a_bad_time_window_is_a_validation_error_naming_the_field(
    audit: tuple[Bus, str],
) -> None:
    bus, _ = audit
    with pytest.raises(ValidationFailed, match="since") as caught:
        await bus.request(
            GetEvents(account_id=ALICE, since=START + timedelta(hours=1), until=START),
            EventPageReply,
        )
    assert caught.value.field == "since"


async def test_the_causal_chain_stays_inside_the_account(
    audit: tuple[Bus, str], history: dict[str, object]
) -> None:
    bus, _ = audit
    chain = history["chain"]
    reply = await bus.request(
        GetCausalChain(account_id=ALICE, chain_correlation_id=chain),
        EventPageReply,
    )
    assert [e.type for e in reply.events] == ["TradingSuspended", "TradingResumed"]
    assert reply.events[1].data is not None
    assert reply.events[1].data["causation_id"] == str(reply.events[0].event_id)


async def test_verify_over_nats_reports_the_chain(
    audit: tuple[Bus, str], history: dict[str, object]
) -> None:
    bus, dsn = audit
    reply = await bus.request(VerifyEventLog(account_id=ALICE), VerifyReply)
    assert reply.ok
    assert reply.checked == 8
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        await conn.execute(
            "UPDATE events SET payload = jsonb_set(payload, '{message}', '\"edited\"') "
            "WHERE position = 5"
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
    broken = await bus.request(VerifyEventLog(account_id=ALICE), VerifyReply)
    assert not broken.ok
    assert broken.first_bad_position == 5
