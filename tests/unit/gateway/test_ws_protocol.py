"""WebSocket message validation, event-to-message mapping and the Origin check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import orjson
import pytest

from libs.contracts.account import AccountLinked, BalanceUpdated, TradingMode
from libs.contracts.market import QuoteReceived
from libs.contracts.strategy import SuggestionRejected
from services.gateway.ws.protocol import (
    MAX_FRAME_BYTES,
    MAX_SYMBOLS_PER_MESSAGE,
    ExecuteOrder,
    GenerateSuggestionMessage,
    Ping,
    ProtocolError,
    SubscribeQuotes,
    error_of,
    outgoing,
    parse_client_message,
    quote_update,
)
from services.gateway.ws.route import origin_allowed

NOW = datetime(2025, 6, 3, 15, 0, tzinfo=UTC)
OCC = "QQQ   250718P00560000"


def _envelope() -> dict[str, object]:
    return {"occurred_at": NOW, "producer": "test", "correlation_id": uuid4()}


def test_valid_messages_parse() -> None:
    message = parse_client_message(
        '{"type": "subscribe_quotes", "symbols": ["qqq", "QQQ   250718P00560000"], "id": "1"}'
    )
    assert isinstance(message, SubscribeQuotes)
    assert message.symbols == ("QQQ", OCC)
    assert message.id == "1"
    assert isinstance(parse_client_message('{"type": "ping"}'), Ping)
    generate = parse_client_message('{"type": "generate_suggestion", "symbol": "spy"}')
    assert isinstance(generate, GenerateSuggestionMessage)
    assert generate.symbol == "SPY"
    suggestion_id = uuid4()
    execute = parse_client_message(
        orjson.dumps(
            {
                "type": "execute_order",
                "suggestion_id": str(suggestion_id),
                "custom_credit": "2.45",
                "confirm_warning": True,
            }
        )
    )
    assert isinstance(execute, ExecuteOrder)
    assert (execute.suggestion_id, execute.custom_credit) == (suggestion_id, Decimal("2.45"))


@pytest.mark.parametrize(
    ("frame", "field", "text"),
    [
        ("{", None, "not valid JSON"),
        ('"ping"', None, "JSON object"),
        ('{"symbols": []}', "type", "one of"),
        ('{"type": 3}', "type", "one of"),
        ('{"type": "subscribe_quotes", "symbols": ["QQQ!"]}', "symbols.0", "ticker"),
        ('{"type": "subscribe_quotes", "symbols": ["QQQ   250732P00560000"]}', "symbols.0", ""),
        ('{"type": "subscribe_quotes", "symbols": []}', "symbols", "at least 1"),
        ('{"type": "generate_suggestion", "symbol": "IWM"}', "symbol", ""),
        ('{"type": "generate_suggestion"}', "symbol", "required"),
        ('{"type": "execute_order", "suggestion_id": "x"}', "suggestion_id", "UUID"),
        (
            orjson.dumps(
                {"type": "execute_order", "suggestion_id": str(uuid4()), "custom_credit": -1}
            ).decode(),
            "custom_credit",
            "greater than 0",
        ),
        ('{"type": "ping", "confirm": true}', "confirm", "Extra"),
    ],
)
def test_invalid_messages_name_what_is_wrong(frame: str, field: str | None, text: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(frame)
    assert caught.value.field == field
    assert text in caught.value.message
    assert caught.value.kind.value == "VALIDATION_ERROR"


def test_limits_and_request_id_echo() -> None:
    symbols = [f"S{i:03d}" for i in range(MAX_SYMBOLS_PER_MESSAGE + 1)]
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(
            orjson.dumps({"type": "subscribe_quotes", "symbols": symbols, "id": "r9"})
        )
    assert caught.value.request_id == "r9"
    assert error_of(caught.value, caught.value.request_id)["request_id"] == "r9"
    with pytest.raises(ProtocolError, match="larger than"):
        parse_client_message(" " * (MAX_FRAME_BYTES + 1))


def test_quote_update_has_both_frames() -> None:
    event = QuoteReceived(
        **_envelope(),
        symbol=OCC,
        bid=Decimal("1.20"),
        ask=Decimal("1.30"),
        quoted_at=NOW,
    )
    texts = quote_update(event)
    at_once, held = orjson.loads(texts.at_once), orjson.loads(texts.held)
    assert at_once["held"] is False
    assert held["held"] is True
    assert at_once["symbol"] == OCC
    assert (at_once["bid"], at_once["ask"], at_once["mid"]) == ("1.20", "1.30", "1.25")
    assert at_once["timestamp"] == int(NOW.timestamp() * 1000)


def test_events_map_to_their_message_kinds() -> None:
    balance = BalanceUpdated(
        **_envelope(),
        account_id="5WT00001",
        derivative_buying_power=Decimal("50000"),
        net_liquidating_value=Decimal("100000"),
        cash_balance=Decimal("100000"),
        broker_updated_at=NOW,
    )
    out = outgoing(balance)
    assert out is not None
    assert (out.throttle, out.key) == ("balance", "5WT00001")
    assert out.message["type"] == "balance_update"
    assert (out.message["balance"], out.message["buying_power"]) == ("100000", "50000")

    rejected = SuggestionRejected(
        **_envelope(),
        account_id="5WT00001",
        suggestion_id=uuid4(),
    )
    out = outgoing(rejected)
    assert out is not None
    assert out.throttle is None
    assert (out.message["type"], out.message["status"]) == ("suggestion_update", "REJECTED")
    assert out.message["account_id"] == "5WT00001"

    linked = AccountLinked(
        **_envelope(),
        account_id="5WT00001",
        user_id="alice",
        mode=TradingMode.PAPER,
    )
    assert outgoing(linked) is None  # not a screen update


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "gw.example:8000", (), True),
        ("http://gw.example:8000", "gw.example:8000", (), True),
        ("https://GW.example", "gw.example", (), True),
        ("https://evil.example", "gw.example", (), False),
        ("https://gw.example.evil.example", "gw.example", (), False),
        ("null", "gw.example", (), False),
        ("https://gw.example:8443", "gw.example", (), False),
        ("ftp://gw.example", "gw.example", (), False),
        ("https://ui.example/", "gw.example", ("https://ui.example",), True),
        ("https://gw.example", None, (), False),
    ],
)
def test_origin_check(
    origin: str | None, host: str | None, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is ok
