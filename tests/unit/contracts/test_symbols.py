"""OCC option symbols: root padded to 6, YYMMDD, C/P, strike x 1000 in 8 digits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from libs.contracts.errors import InvalidPayload
from libs.contracts.execution import OrderAction, OrderLeg
from libs.contracts.registry import encode_event, parse_event
from libs.contracts.symbols import (
    InvalidOccSymbol,
    OccSymbol,
    OptionContract,
    OptionType,
    format_occ,
    parse_occ,
)
from tests.unit.contracts.examples import EXPIRATION, opening_fill
from tests.unit.contracts.strategies import dates, occ_symbols, option_roots, strikes


@pytest.mark.parametrize(
    ("option_type", "strike", "symbol"),
    [
        (OptionType.PUT, Decimal(592), "QQQ   251219P00592000"),
        (OptionType.PUT, Decimal(589), "QQQ   251219P00589000"),
        (OptionType.CALL, Decimal(592), "QQQ   251219C00592000"),
        (OptionType.CALL, Decimal(595), "QQQ   251219C00595000"),
    ],
)
def test_the_worked_example_legs_format_as_occ_symbols(option_type, strike, symbol):
    assert format_occ("QQQ", EXPIRATION, option_type, strike) == symbol


def test_a_symbol_parses_into_its_parts():
    assert parse_occ("QQQ   251219P00592000") == OptionContract(
        "QQQ", date(2025, 12, 19), OptionType.PUT, Decimal(592)
    )


def test_a_half_strike_keeps_its_decimal():
    symbol = format_occ("SPY", date(2025, 6, 20), OptionType.PUT, Decimal("502.5"))

    assert symbol == "SPY   250620P00502500"
    assert symbol.strike == Decimal("502.5")
    assert str(symbol.strike) == "502.5"


def test_the_symbol_reads_its_parts_back_as_typed_values():
    symbol = OccSymbol("QQQ   251219C00595000")

    assert symbol.root == "QQQ"
    assert symbol.expiration == date(2025, 12, 19)
    assert symbol.option_type is OptionType.CALL
    assert symbol.strike == Decimal(595)


@pytest.mark.parametrize(
    ("symbol", "streamer"),
    [
        ("QQQ   251219P00592000", ".QQQ251219P592"),
        ("SPY   250620P00502500", ".SPY250620P502.5"),
        ("SPY   250620C00500000", ".SPY250620C500"),
    ],
)
def test_the_dxlink_streamer_symbol_drops_padding_and_trailing_zeros(symbol, streamer):
    assert OccSymbol(symbol).streamer_symbol == streamer


def test_an_occ_symbol_is_the_plain_string_everywhere():
    symbol = OccSymbol("QQQ   251219P00592000")

    assert symbol == "QQQ   251219P00592000"
    assert hash(symbol) == hash("QQQ   251219P00592000")
    leg = OrderLeg(symbol=symbol, action=OrderAction.BUY_TO_OPEN, quantity=1)
    assert orjson.loads(leg.model_dump_json())["symbol"] == "QQQ   251219P00592000"
    assert symbol.compact == "QQQ251219P00592000"


@given(root=option_roots, expiration=dates, option_type=st.sampled_from(OptionType), strike=strikes)
def test_format_then_parse_gives_back_the_parts(root, expiration, option_type, strike):
    symbol = format_occ(root, expiration, option_type, strike)

    assert len(symbol) == 21
    assert parse_occ(symbol) == (root, expiration, option_type, strike)


@given(symbol=occ_symbols)
def test_parse_then_format_gives_back_the_symbol(symbol):
    assert format_occ(*parse_occ(symbol)) == symbol


@pytest.mark.parametrize(
    "text",
    [
        "QQQ 251219P00592000",  # root not padded to 6
        "   QQQ251219P00592000",  # root right-justified
        "qqq   251219P00592000",  # lower case
        "QQQ   251319P00592000",  # month 13
        "QQQ   250231P00592000",  # 31 February
        "QQQ   251219X00592000",  # neither C nor P
        "QQQ   251219P00000000",  # zero strike
        "QQQ   251219P592",  # strike not 8 digits
    ],
)
def test_malformed_symbols_are_refused(text):
    with pytest.raises(InvalidOccSymbol):
        OccSymbol(text)


@pytest.mark.parametrize(
    ("root", "strike"),
    [
        ("QQQ", Decimal("592.0001")),
        ("QQQ", Decimal(0)),
        ("QQQ", Decimal(100_000)),
        ("QQQQQQQ", Decimal(1)),
    ],
)
def test_parts_that_cannot_form_a_symbol_are_refused(root, strike):
    with pytest.raises(InvalidOccSymbol):
        format_occ(root, EXPIRATION, OptionType.PUT, strike)


def test_a_bad_symbol_in_a_model_is_a_validation_error_naming_the_field():
    with pytest.raises(ValidationError) as caught:
        OrderLeg(symbol="QQQ 592P", action=OrderAction.BUY_TO_OPEN, quantity=1)

    assert caught.value.errors()[0]["loc"] == ("symbol",)


def test_a_bad_symbol_on_the_wire_names_its_path():
    data = orjson.loads(encode_event(opening_fill()))
    data["legs"][0]["symbol"] = "QQQ   251399P00592000"

    with pytest.raises(InvalidPayload, match=r"^OrderFilled\.legs\.0\.symbol: .*not a date"):
        parse_event(data)
