"""A connection's back-pressure without a socket: the hub's calls only fill its outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import orjson

from libs.contracts.account import BalanceUpdated
from libs.contracts.market import QuoteReceived
from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    Severity,
)
from services.gateway.context import Gateway, Principal
from services.gateway.settings import GatewaySettings
from services.gateway.ws.connection import Connection
from services.gateway.ws.hub import Hub
from services.gateway.ws.protocol import CLOSE_TOO_SLOW, outgoing, quote_update

NOW = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
ACCOUNT = "5WT00001"


def _connection(**settings: Any) -> Connection:
    gateway = cast(Gateway, SimpleNamespace(settings=GatewaySettings(**settings)))
    principal = cast(Principal, SimpleNamespace(user_id="alice"))
    return Connection(cast(Any, None), gateway, cast(Hub, None), principal, "token", [ACCOUNT])


def _envelope(account: str | None = ACCOUNT) -> dict[str, Any]:
    out: dict[str, Any] = {"occurred_at": NOW, "producer": "test", "correlation_id": uuid4()}
    if account is not None:
        out["account_id"] = account
    return out


def _notification(account: str = ACCOUNT) -> NotificationRequested:
    return NotificationRequested(
        **_envelope(account),
        notification_id=uuid4(),
        topic=NotificationTopic.ORDER_FILLED,
        channels=(NotificationChannel.BANNER,),
        severity=Severity.INFO,
        title="filled",
        message="filled",
    )


def _push(conn: Connection, event: Any) -> None:
    out = outgoing(event)
    assert out is not None
    conn.on_account_event(event, out, orjson.dumps(out.message, default=str).decode())


async def test_an_overflowing_queue_closes_the_connection_as_too_slow() -> None:
    conn = _connection(ws_queue_limit=10)
    for _ in range(10):
        _push(conn, _notification())
    assert conn._closing is None
    _push(conn, _notification())
    assert conn._closing is not None
    code, reason = conn._closing
    assert code == CLOSE_TOO_SLOW
    assert "too slow" in reason


async def test_quotes_never_overflow_the_queue_latest_wins() -> None:
    conn = _connection(ws_queue_limit=10, quote_interval_s=0.05)
    conn.symbols = {"QQQ"}
    for i in range(1000):
        quote = QuoteReceived(
            **_envelope(None),
            symbol="QQQ",
            bid=Decimal(i),
            ask=Decimal(i + 1),
            quoted_at=NOW,
        )
        conn.on_quote("QQQ", quote_update(quote))
    assert conn._closing is None
    queued = conn._outbox.take()
    assert [orjson.loads(t)["bid"] for t in queued] == ["0"]  # the first, at once
    await asyncio.sleep(0.1)  # the window ends: the latest of the rest
    assert [orjson.loads(t)["bid"] for t in conn._outbox.take()] == ["999"]
    conn._forget("quote", "QQQ")


async def test_events_of_other_accounts_are_never_queued() -> None:
    conn = _connection()
    _push(conn, _notification("5WT00002"))
    assert conn._outbox.take() == []


async def test_balances_are_throttled_per_account() -> None:
    conn = _connection(balance_interval_s=30)

    def balance(value: str) -> BalanceUpdated:
        return BalanceUpdated(
            **_envelope(),
            derivative_buying_power=Decimal(value),
            net_liquidating_value=Decimal(value),
            cash_balance=Decimal(value),
            broker_updated_at=NOW,
        )

    for value in ("1", "2", "3"):
        _push(conn, balance(value))
    sent = [orjson.loads(t) for t in conn._outbox.take()]
    assert [m["balance"] for m in sent] == ["1"]
    conn._forget("balance", ACCOUNT)
