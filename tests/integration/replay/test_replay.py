"""Replay against real NATS and PostgreSQL: the recorded log folds to what was folded live.

Two accounts' histories go through the bus (a NATS server of the module's own),
interleaved, with late re-published copies (new message ids, so JetStream stores them
again) and a malformed message. A durable consumer folds them live with the services'
projections while the audit recorder copies the stream into the event log; replay then
folds the log.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from libs.cli import main
from libs.cli.replay import PROJECTIONS, fold_account, replay_account
from libs.contracts.envelope import Event
from libs.contracts.registry import encode_event
from libs.contracts.subjects import account_event_subject, event_subject
from libs.eventlog.migrate import migrate
from libs.eventlog.reads import read_account
from libs.projections import AccountFold
from libs.runtime.bus import BUSINESS_STREAM, MSG_ID, Bus, ConsumerSpec, Delivery
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.servers import PostgresProcess, ServerProcess, discard, new_nats
from services.audit.recorder import Recorder
from services.execution.projection import ORDERS
from tests.integration.replay.scenario import account_history

#: Event types re-published late for account A; each arrives after events that a
#: second application would undo (the flag was cleared, newer valuations came...).
LATE_COPIES_A = ("OrderPartiallyFilled", "PositionNeedsAttention", "PositionUpdated")
LATE_COPIES_B = ("RiskReserved", "SuggestionApproved")


@dataclass
class Recorded:
    database_url: str
    a: str
    b: str
    histories: dict[str, list[Event]]
    live: dict[str, AccountFold]
    copies: dict[str, int]
    malformed: dict[str, int]
    last_position: dict[str, int]


def first_of(events: list[Event], type_name: str) -> Event:
    return next(event for event in events if event.type == type_name)


async def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def nats_of_module(server_root: Path) -> Iterator[ServerProcess]:
    """A NATS server of this module's own, so the session's shared stream (which other
    modules' recorders count) never sees these messages, nor these tests theirs."""
    server = new_nats(server_root / "nats-replay")
    server.start()
    yield server
    discard(server)


@pytest.fixture(scope="module")
async def recorded(nats_of_module: ServerProcess, database_url: str) -> Recorded:
    await migrate(database_url)
    suffix = uuid4().hex[:8]
    a, b = f"RA{suffix}", f"RB{suffix}"
    histories = {
        a: account_history(a, close_all=False),
        b: account_history(b, close_all=True),
    }
    interleaved = [
        event
        for pair in itertools.zip_longest(histories[a], histories[b])
        for event in pair
        if event is not None
    ]
    live = {account: AccountFold.start(account, PROJECTIONS) for account in histories}
    late = [first_of(histories[a], t) for t in LATE_COPIES_A]
    late += [first_of(histories[b], t) for t in LATE_COPIES_B]
    expected = len(interleaved) + len(late)
    handled = 0
    done = asyncio.Event()

    async def fold_live(event: Event, delivery: Delivery) -> None:
        nonlocal handled
        if event.account_id in live:
            live[event.account_id] = live[event.account_id].apply(event)
            handled += 1
            if handled == expected:
                done.set()

    bus = await Bus.connect(nats_of_module.url, f"replay-test-{suffix}")
    try:
        last_position: dict[str, int] = {}
        acks = await bus.publish_many(interleaved)
        for event, ack in zip(interleaved, acks, strict=True):
            last_position[event.account_id or ""] = ack.sequence
        for event in late:
            # A new message id: stored again, as a re-publish after the duplicate window.
            copy = await bus.js.publish(
                event_subject(event),
                encode_event(event),
                headers={MSG_ID: f"copy-{event.event_id}"},
            )
            last_position[event.account_id or ""] = copy.seq
        bad = await bus.js.publish(
            account_event_subject(a, "execution", "OrderFilled"), b"{not json"
        )
        last_position[a] = bad.seq

        consumer = await bus.consume(
            ConsumerSpec(durable=f"replay-live-{suffix}", max_deliver=1), fold_live
        )
        recorder = Recorder(bus, database_url, ServiceMetrics("audit"))
        await recorder.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
            info = await bus.js.stream_info(BUSINESS_STREAM.name)
            assert info.state.last_seq == bad.seq
            await wait_for(lambda: recorder.head_position >= info.state.last_seq)
        finally:
            await recorder.stop()
            await consumer.stop()
    finally:
        await bus.close()
    return Recorded(
        database_url=database_url,
        a=a,
        b=b,
        histories=histories,
        live=live,
        copies={a: len(LATE_COPIES_A), b: len(LATE_COPIES_B)},
        malformed={a: 1, b: 0},
        last_position=last_position,
    )


async def test_replay_of_the_log_equals_the_live_fold(recorded: Recorded) -> None:
    for account in (recorded.a, recorded.b):
        result = await replay_account(recorded.database_url, account)
        assert result.fold.states == recorded.live[account].states
        assert result.fold.to_json() == recorded.live[account].to_json()
        assert result.events_folded == len(recorded.histories[account])
        assert result.duplicates == recorded.copies[account]
        assert result.malformed == recorded.malformed[account]
        assert result.unreadable == ()
        assert result.last_position == recorded.last_position[account]


async def test_the_live_fold_shows_the_trades(recorded: Recorded) -> None:
    open_ = recorded.live[recorded.a].to_json()
    assert open_["risk"]["used_risk"] == "230"
    (position,) = open_["positions"]["positions"].values()
    assert (position["status"], position["needs_attention"]) == ("OPEN", False)
    closed = recorded.live[recorded.b].to_json()
    assert closed["risk"]["used_risk"] == "0"
    (position,) = closed["positions"]["positions"].values()
    assert (position["status"], position["realized_pnl"]) == ("CLOSED", "-74")


async def test_the_cli_prints_the_live_fold_as_json(recorded: Recorded) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main.app,
        ["replay", "--account", recorded.a, "--json", "--database-url", recorded.database_url],
    )
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    live = recorded.live[recorded.a].to_json()
    assert {name: printed[name] for name in live} == live
    assert printed["account_id"] == recorded.a
    assert printed["events_folded"] == len(recorded.histories[recorded.a])
    assert printed["events_skipped"] == len(LATE_COPIES_A) + 1
    assert printed["skipped"] == {"malformed": 1, "duplicate": len(LATE_COPIES_A), "unreadable": 0}
    assert printed["last_position"] == recorded.last_position[recorded.a]
    assert printed["until"] is None


async def test_until_cuts_the_fold_at_that_event(recorded: Recorded) -> None:
    events = recorded.histories[recorded.a]
    cut = events.index(first_of(events, "OrderPartiallyFilled"))
    until = events[cut].occurred_at
    result = await replay_account(recorded.database_url, recorded.a, until=until)
    expected = AccountFold.start(recorded.a, PROJECTIONS).fold(events[: cut + 1])
    assert result.fold.states == expected.states
    assert result.events_folded == cut + 1
    # The late copy of the partial fill keeps its business time, so it is inside the cut.
    assert result.duplicates == 1
    assert result.malformed == 0


async def test_until_on_the_command_line_takes_any_offset(recorded: Recorded) -> None:
    events = recorded.histories[recorded.b]
    cut = events.index(first_of(events, "PositionOpened"))
    new_york = events[cut].occurred_at.astimezone(timezone(timedelta(hours=-5)))
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main.app,
        [
            "replay",
            "--account",
            recorded.b,
            "--until",
            new_york.isoformat(),
            "--json",
            "--database-url",
            recorded.database_url,
        ],
    )
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.stdout)
    expected = AccountFold.start(recorded.b, PROJECTIONS).fold(events[: cut + 1])
    assert printed["positions"] == expected.to_json()["positions"]
    assert printed["events_folded"] == cut + 1


async def test_another_accounts_events_are_not_included(recorded: Recorded) -> None:
    result = await replay_account(recorded.database_url, recorded.a)
    orders = result.fold.state(ORDERS).orders
    own = {getattr(e, "order_id", None) for e in recorded.histories[recorded.a]} - {None}
    other = {getattr(e, "order_id", None) for e in recorded.histories[recorded.b]} - {None}
    assert set(orders) == own
    assert not set(orders) & other
    assert recorded.b not in orjson.dumps(result.to_json()).decode()


async def test_rows_are_read_in_position_order_page_by_page(recorded: Recorded) -> None:
    async with await psycopg.AsyncConnection.connect(
        recorded.database_url, autocommit=True
    ) as conn:
        paged = [row async for row in read_account(conn, recorded.a, batch_size=3)]
        whole = [row async for row in read_account(conn, recorded.a)]
        result = await fold_account(conn, recorded.a)
    assert [row.position for row in paged] == [row.position for row in whole]
    assert [row.position for row in paged] == sorted(row.position for row in paged)
    assert {row.account_id for row in paged} == {recorded.a}
    assert len(paged) == result.events_folded + result.events_skipped


async def test_the_summary_reads_as_text(recorded: Recorded) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main.app,
        ["replay", "--account", recorded.a, "--database-url", recorded.database_url],
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"account {recorded.a}" in text
    assert "skipped 4 (1 malformed, 3 duplicate, 0 unreadable)" in text
    assert "risk: used 230.00 = reserved 0.00 (0 pending) + open positions 230.00 (1 open)" in text
    assert "positions: 1 (1 OPEN)" in text
    assert "OrderCancelled is not allowed from REJECTED" in text


async def test_an_unknown_account_prints_an_empty_result(recorded: Recorded) -> None:
    runner = CliRunner()
    args = ["replay", "--account", "NOSUCH1", "--database-url", recorded.database_url]
    text = await asyncio.to_thread(runner.invoke, main.app, args)
    assert text.exit_code == 0
    assert "no events" in text.stdout
    as_json = await asyncio.to_thread(runner.invoke, main.app, [*args, "--json"])
    printed = orjson.loads(as_json.stdout)
    assert (printed["events_folded"], printed["last_position"]) == (0, None)
    assert printed["orders"] == {"orders": {}, "anomalies": []}


def test_a_naive_until_is_refused() -> None:
    result = CliRunner().invoke(
        main.app,
        ["replay", "--account", "5WT00001", "--until", "2026-01-05T10:00:00"],
    )
    assert result.exit_code == 2
    assert "has no time zone" in result.output


def test_an_unreadable_until_is_refused() -> None:
    result = CliRunner().invoke(
        main.app, ["replay", "--account", "5WT00001", "--until", "yesterday"]
    )
    assert result.exit_code == 2
    assert "not an ISO 8601 time" in result.output


def test_an_unreachable_database_exits_2() -> None:
    args = ["replay", "--account", "5WT00001", "--database-url", "postgresql://x@127.0.0.1:1/n"]
    result = CliRunner().invoke(main.app, args)
    assert result.exit_code == 2
    assert "replay failed: database unavailable" in result.stderr
    as_json = CliRunner().invoke(main.app, [*args, "--json"])
    assert as_json.exit_code == 2
    assert orjson.loads(as_json.stdout)["ok"] is False


async def test_a_log_without_schema_exits_2(postgres_server: PostgresProcess) -> None:
    url = postgres_server.create_database(f"noschema_{uuid4().hex[:12]}")
    result = await asyncio.to_thread(
        CliRunner().invoke, main.app, ["replay", "--account", "A1", "--database-url", url]
    )
    assert result.exit_code == 2
    assert "senex db migrate" in result.stderr
