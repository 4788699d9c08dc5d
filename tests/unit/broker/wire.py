"""Wire-shaped broker answers (dashed keys, as TASTYTRADE_PROTOCOL.md section 4 shows)."""

from __future__ import annotations

from typing import Any

ACCOUNT = "5WT00001"
CALL = "SPY   250620C00500000"
PUT = "SPY   250620P00500000"
LONG_PUT = "SPY   250620P00495000"


def account(number: str = ACCOUNT) -> dict[str, Any]:
    return {
        "account-number": number,
        "opened-at": "2025-06-02T14:30:00Z",
        "nickname": "sim",
        "account-type-name": "Individual",
        "is-closed": False,
        "day-trader-status": False,
        "is-firm-error": False,
        "is-firm-proprietary": False,
        "is-futures-approved": False,
        "margin-or-cash": "Margin",
        "is-foreign": False,
        "created-at": "2025-06-02T14:30:00Z",
    }


_BALANCE_ZERO_KEYS = [
    "long-equity-value",
    "short-equity-value",
    "long-derivative-value",
    "short-derivative-value",
    "long-futures-value",
    "short-futures-value",
    "long-futures-derivative-value",
    "short-futures-derivative-value",
    "long-margineable-value",
    "short-margineable-value",
    "margin-equity",
    "day-trading-buying-power",
    "futures-margin-requirement",
    "available-trading-funds",
    "maintenance-call-value",
    "reg-t-call-value",
    "day-trading-call-value",
    "day-equity-call-value",
    "cash-available-to-withdraw",
    "day-trade-excess",
    "pending-cash",
    "long-cryptocurrency-value",
    "short-cryptocurrency-value",
    "cryptocurrency-margin-requirement",
    "unsettled-cryptocurrency-fiat-amount",
    "closed-loop-available-balance",
    "equity-offering-margin-requirement",
    "long-bond-value",
    "bond-margin-requirement",
    "used-derivative-buying-power",
    "reg-t-margin-requirement",
    "futures-overnight-margin-requirement",
    "futures-intraday-margin-requirement",
    "maintenance-excess",
    "pending-margin-interest",
    "effective-cryptocurrency-buying-power",
]


def balance(number: str = ACCOUNT) -> dict[str, Any]:
    data: dict[str, Any] = dict.fromkeys(_BALANCE_ZERO_KEYS, "0")
    data.update(
        {
            "account-number": number,
            "snapshot-date": "2025-06-02",
            "updated-at": "2025-06-02T14:30:00Z",
            "cash-balance": "100000.00",
            "equity-buying-power": "200000.00",
            "derivative-buying-power": "100000.00",
            "net-liquidating-value": "100250.50",
            "maintenance-requirement": "1200.00",
            "pending-cash": "25",
            "pending-cash-effect": "Debit",
        }
    )
    return data


def position(symbol: str = PUT, *, quantity: str = "2", direction: str = "Short") -> dict[str, Any]:
    return {
        "account-number": ACCOUNT,
        "symbol": symbol,
        "instrument-type": "Equity Option",
        "underlying-symbol": "SPY",
        "quantity": quantity,
        "quantity-direction": direction,
        "close-price": "1.10",
        "average-open-price": "1.25",
        "multiplier": "100",
        "cost-effect": "Credit",
        "is-suppressed": False,
        "is-frozen": False,
        "realized-day-gain": "0",
        "realized-today": "0",
        "created-at": "2025-06-02T14:30:00Z",
        "updated-at": "2025-06-02T14:30:00Z",
        "mark": "1.05",
        "expires-at": "2025-06-20T20:15:00Z",
    }


def leg(
    symbol: str, action: str, quantity: int = 1, fills: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "instrument-type": "Equity Option",
        "symbol": symbol,
        "action": action,
        "quantity": quantity,
        "remaining-quantity": quantity,
        "fills": fills or [],
    }


def fill(fill_id: str, quantity: int, price: str) -> dict[str, Any]:
    return {
        "fill-id": fill_id,
        "quantity": quantity,
        "fill-price": price,
        "filled-at": "2025-06-02T14:31:00Z",
    }


def order(
    order_id: int = 1001,
    *,
    status: str = "Live",
    price: str = "1.25",
    effect: str = "Credit",
    tag: str | None = "sx-0123",
    legs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": order_id,
        "account-number": ACCOUNT,
        "time-in-force": "Day",
        "order-type": "Limit",
        "size": 1,
        "price": price,
        "price-effect": effect,
        "underlying-symbol": "SPY",
        "underlying-instrument-type": "Equity",
        "status": status,
        "cancellable": True,
        "editable": True,
        "edited": False,
        "updated-at": "2025-06-02T14:30:00Z",
        "received-at": "2025-06-02T14:30:00Z",
        "legs": legs
        if legs is not None
        else [leg(PUT, "Sell to Open"), leg(LONG_PUT, "Buy to Open")],
    }
    if tag is not None:
        data["external-identifier"] = tag
    return data


def buying_power_effect(new: str = "99500", change: str = "500") -> dict[str, Any]:
    return {
        "change-in-margin-requirement": change,
        "change-in-margin-requirement-effect": "Debit",
        "change-in-buying-power": change,
        "change-in-buying-power-effect": "Debit",
        "current-buying-power": "100000",
        "new-buying-power": new.lstrip("-"),
        **({"new-buying-power-effect": "Debit"} if new.startswith("-") else {}),
        "isolated-order-margin-requirement": change,
        "isolated-order-margin-requirement-effect": "Debit",
        "is-spread": True,
        "impact": change,
        "effect": "Debit",
    }


def nested_chain() -> dict[str, Any]:
    def strike(value: str, occ: str, day: str = "250620") -> dict[str, Any]:
        return {
            "strike-price": value,
            "call": f"SPY   {day}C{occ}",
            "call-streamer-symbol": f".SPY{day}C{value}",
            "put": f"SPY   {day}P{occ}",
            "put-streamer-symbol": f".SPY{day}P{value}",
        }

    return {
        "underlying-symbol": "SPY",
        "root-symbol": "SPY",
        "option-chain-type": "Standard",
        "shares-per-contract": 100,
        "tick-sizes": [{"value": "0.05", "threshold": "3"}, {"value": "0.01"}],
        "expirations": [
            {
                "expiration-type": "Regular",
                "expiration-date": "2025-06-20",
                "days-to-expiration": 18,
                "settlement-type": "PM",
                "strikes": [strike("502.5", "00502500"), strike("500", "00500000")],
            },
            {
                "expiration-type": "Weekly",
                "expiration-date": "2025-06-13",
                "days-to-expiration": 11,
                "settlement-type": "PM",
                "strikes": [strike("500", "00500000", "250613")],
            },
        ],
    }


def metrics(symbol: str = "SPY", rank: str | None = "0.283") -> dict[str, Any]:
    data: dict[str, Any] = {
        "symbol": symbol,
        "updated-at": "2025-06-02T14:30:00Z",
        "market-cap": "500000000000",
        "implied-volatility-index": "0.18",
        "implied-volatility-percentile": "0.4",
    }
    if rank is not None:
        data["implied-volatility-index-rank"] = rank
    return data


def error_body(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "error": {
            "code": "validation_error",
            "message": "Request validation failed",
            "errors": [{"code": c, "message": m} for c, m in pairs],
        }
    }
