"""SDK models (built from wire dicts) map to adapter values with signs and units intact."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tastytrade.account import Account, AccountBalance, CurrentPosition
from tastytrade.instruments import NestedOptionChain
from tastytrade.metrics import MarketMetricInfo
from tastytrade.order import PlacedOrder, PlacedOrderResponse, UnplacedOrder

from libs.broker.mapping import (
    UnmappableOrder,
    account_from_sdk,
    balances_from_sdk,
    chain_from_sdk,
    dry_run_from_sdk,
    metrics_from_sdk,
    order_from_sdk,
    order_to_sdk,
    percent_from_broker,
    position_from_sdk,
)
from libs.contracts.errors import ValidationFailed
from libs.contracts.execution import OrderAction, OrderLeg, OrderStatus, TimeInForce
from libs.contracts.symbols import OccSymbol
from libs.domain.orders import OrderRequest
from tests.unit.broker import wire

PUT = OccSymbol(wire.PUT)
LONG_PUT = OccSymbol(wire.LONG_PUT)


def request(price: str = "-1.25", tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(
        underlying="SPY",
        legs=(
            OrderLeg(symbol=PUT, action=OrderAction.BUY_TO_CLOSE, quantity=2),
            OrderLeg(symbol=LONG_PUT, action=OrderAction.SELL_TO_CLOSE, quantity=2),
        ),
        limit_price=Decimal(price),
        time_in_force=tif,
        client_tag="sx-abc",
    )


def test_account_keeps_number_and_nickname() -> None:
    mapped = account_from_sdk(Account(**wire.account()))
    assert (mapped.account_number, mapped.nickname, mapped.is_closed) == ("5WT00001", "sim", False)


def test_balances_take_derivative_buying_power_and_net_liq() -> None:
    mapped = balances_from_sdk(AccountBalance(**wire.balance()))
    assert mapped.derivative_buying_power == Decimal("100000.00")
    assert mapped.net_liquidating_value == Decimal("100250.50")
    assert mapped.updated_at.tzinfo is not None


def test_short_position_quantity_is_negative_and_symbol_is_occ() -> None:
    mapped = position_from_sdk(CurrentPosition(**wire.position()))
    assert mapped.quantity == -2
    assert mapped.option_symbol == PUT
    assert mapped.mark == Decimal("1.05")


def test_long_position_quantity_is_positive() -> None:
    mapped = position_from_sdk(CurrentPosition(**wire.position(direction="Long")))
    assert mapped.quantity == 2


def test_chain_sorts_expirations_and_strikes_and_reads_symbols() -> None:
    chain = chain_from_sdk([NestedOptionChain(**wire.nested_chain())], "SPY")
    assert [e.expiration_date for e in chain.expirations] == [date(2025, 6, 13), date(2025, 6, 20)]
    june20 = chain.expirations[1]
    assert june20.strike_prices() == (Decimal("500"), Decimal("502.5"))
    assert june20.strikes[1].put == OccSymbol("SPY   250620P00502500")
    assert june20.strikes[1].put.streamer_symbol == june20.strikes[1].put_streamer_symbol
    assert chain.tick_size == Decimal("0.01")


def test_chain_without_items_is_an_error() -> None:
    with pytest.raises(ValueError, match="no option chain"):
        chain_from_sdk([], "SPY")


@pytest.mark.parametrize(
    ("value", "percent"),
    [
        ("0.283", Decimal("28.300")),
        (Decimal("0"), Decimal("0")),
        ("1", Decimal("100")),
        ("45.5", Decimal("45.5")),
        ("250", Decimal("100")),
        ("", None),
        (None, None),
        ("NaN", None),
        ("-0.2", None),
        ("n/a", None),
    ],
)
def test_rank_is_read_as_a_percent(value: str | Decimal | None, percent: Decimal | None) -> None:
    assert percent_from_broker(value) == percent


def test_metrics_fall_back_to_the_tw_rank() -> None:
    data = wire.metrics(rank=None) | {"tw-implied-volatility-index-rank": "0.5"}
    mapped = metrics_from_sdk(MarketMetricInfo(**data))
    assert mapped.iv_rank == Decimal("50.0")
    assert mapped.iv_percentile == Decimal("40.0")


def test_debit_order_is_sent_unsigned_with_a_debit_effect_and_the_tag() -> None:
    sdk_order = order_to_sdk(request("-1.25"))
    body = sdk_order.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert body["price"] == "1.25"
    assert body["price-effect"] == "Debit"
    assert body["external-identifier"] == "sx-abc"
    assert body["time-in-force"] == "GTC"
    assert [leg["action"] for leg in body["legs"]] == ["Buy to Close", "Sell to Close"]
    assert [leg["quantity"] for leg in body["legs"]] == [2, 2]


def test_credit_order_is_sent_with_a_credit_effect() -> None:
    body = order_to_sdk(request("2.10", TimeInForce.DAY)).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert (body["price"], body["price-effect"], body["time-in-force"]) == ("2.10", "Credit", "Day")


@pytest.mark.parametrize("price", ["0", "1.255", "-0.001"])
def test_zero_or_sub_tick_prices_are_refused(price: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        order_to_sdk(request(price))
    assert caught.value.field == "limit_price"


def test_debit_order_reads_back_negative() -> None:
    mapped = order_from_sdk(PlacedOrder(**wire.order(price="1.25", effect="Debit")))
    assert mapped.limit_price == Decimal("-1.25")


def test_live_order_maps_to_working_with_tag_and_legs() -> None:
    mapped = order_from_sdk(PlacedOrder(**wire.order()))
    assert mapped.status is OrderStatus.WORKING
    assert mapped.broker_order_id == "1001"
    assert mapped.client_tag == "sx-0123"
    assert mapped.limit_price == Decimal("1.25")
    assert mapped.legs[0] == OrderLeg(symbol=PUT, action=OrderAction.SELL_TO_OPEN, quantity=1)


def test_fills_make_a_live_order_partially_filled() -> None:
    legs = [
        wire.leg(wire.PUT, "Sell to Open", 2, [wire.fill("f1", 1, "1.50")]),
        wire.leg(wire.LONG_PUT, "Buy to Open", 2, [wire.fill("f2", 1, "0.40")]),
    ]
    mapped = order_from_sdk(PlacedOrder(**wire.order(legs=legs)))
    assert mapped.status is OrderStatus.PARTIALLY_FILLED
    assert mapped.filled_quantity(PUT) == 1
    assert {f.broker_fill_id for f in mapped.fills} == {"f1", "f2"}
    assert mapped.fills[0].fill_price == Decimal("1.50")


@pytest.mark.parametrize(
    ("broker", "ours"),
    [
        ("Received", OrderStatus.SUBMITTED),
        ("Routed", OrderStatus.SUBMITTED),
        ("In Flight", OrderStatus.SUBMITTED),
        ("Live", OrderStatus.WORKING),
        ("Cancel Requested", OrderStatus.WORKING),
        ("Replace Requested", OrderStatus.WORKING),
        ("Contingent", OrderStatus.WORKING),
        ("Filled", OrderStatus.FILLED),
        ("Cancelled", OrderStatus.CANCELLED),
        ("Expired", OrderStatus.EXPIRED),
        ("Rejected", OrderStatus.REJECTED),
        ("Removed", OrderStatus.CANCELLED),
        ("Partially Removed", OrderStatus.CANCELLED),
    ],
)
def test_every_broker_status_has_a_lifecycle_status(broker: str, ours: OrderStatus) -> None:
    assert order_from_sdk(PlacedOrder(**wire.order(status=broker))).status is ours


def test_cancelled_order_with_a_replacement_is_replaced() -> None:
    data = wire.order(status="Cancelled") | {"replacing-order-id": 1002}
    mapped = order_from_sdk(PlacedOrder(**data))
    assert mapped.status is OrderStatus.REPLACED
    assert mapped.replaced_by_broker_order_id == "1002"


def test_rejected_order_keeps_the_reason() -> None:
    data = wire.order(status="Rejected") | {"reject-reason": "price too far from market"}
    mapped = order_from_sdk(PlacedOrder(**data))
    assert mapped.reject_reason == "price too far from market"


def test_share_orders_are_unmappable() -> None:
    legs = [{"instrument-type": "Equity", "symbol": "SPY", "action": "Buy", "quantity": 10}]
    with pytest.raises(UnmappableOrder):
        order_from_sdk(PlacedOrder(**wire.order(legs=legs)))


def test_dry_run_effect_is_signed_and_sufficiency_follows_new_buying_power() -> None:
    data = {"order": wire.order(), "buying-power-effect": wire.buying_power_effect()}
    result = dry_run_from_sdk(PlacedOrderResponse[UnplacedOrder](**data))
    assert result.buying_power_effect.change_in_buying_power == Decimal("-500")
    assert result.sufficient
    result.raise_if_insufficient()


def test_dry_run_with_negative_new_buying_power_is_insufficient() -> None:
    data = {
        "order": wire.order(),
        "buying-power-effect": wire.buying_power_effect(new="-400", change="100400"),
        "errors": [{"code": "insufficient_buying_power", "message": "not enough"}],
    }
    result = dry_run_from_sdk(PlacedOrderResponse[UnplacedOrder](**data))
    assert not result.sufficient
    assert result.errors == ("insufficient_buying_power: not enough",)
    with pytest.raises(Exception, match="not enough") as caught:
        result.raise_if_insufficient()
    assert caught.value.__class__.__name__ == "InsufficientBuyingPower"
