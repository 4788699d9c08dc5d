"""The simulated broker: credentials, accounts, orders, fills, balances and faults.

Handlers call it from the event-loop thread; ``sweep`` advances resting orders, DAY
expiry and option settlement to the simulated now, and runs both before every request
and on a timer.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.simulator import chains, clock, fills, market
from services.simulator.customers import (
    DEFAULT_STARTING_CASH,
    DEFAULT_TOKEN_LIFETIME,
    account_number,
)
from services.simulator.errors import ApiError, invalid, not_found, unprocessable
from services.simulator.settings import SimSettings
from services.simulator.store import Customer, PositionRow, Store

log = logging.getLogger(__name__)

LIVE_STATUSES = ("Received", "Live")
TERMINAL_STATUSES = ("Filled", "Cancelled", "Expired", "Rejected")
OPTION_ACTIONS = ("Buy to Open", "Buy to Close", "Sell to Open", "Sell to Close")
ORDER_FAULTS = ("partial", "reject", "timeout")
REQUEST_FAULTS = ("unauthorized", "rate-limit", "server-error")
FAULT_KINDS = ORDER_FAULTS + REQUEST_FAULTS


def iso(t: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as TastyTrade writes instants."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: Decimal) -> str:
    """A Decimal as a wire string on the cent grid."""
    return str(value.quantize(fills.TICK))


@dataclass
class Fault:
    """A failure the control API arranged for upcoming requests."""

    kind: str
    reason: str = "Rejected by simulator"
    seconds: float | None = None
    remaining: int = 1
    as_error: bool = False


@dataclass
class Quote:
    """Bid/ask/mid of an instrument."""

    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        """(bid + ask) / 2."""
        return (self.bid + self.ask) / 2


@dataclass
class ParsedLeg:
    """A validated order leg."""

    symbol: chains.OptionSymbol
    action: str
    quantity: int

    @property
    def sells(self) -> bool:
        """Whether the leg sells."""
        return self.action.startswith("Sell")


@dataclass
class AccountView:
    """Balances derived from cash, positions and quotes."""

    cash: Decimal
    long_value: Decimal
    short_value: Decimal
    requirement: Decimal

    @property
    def buying_power(self) -> Decimal:
        """Derivative buying power: cash less the margin of the option positions."""
        return self.cash - self.requirement

    @property
    def net_liq(self) -> Decimal:
        """Cash plus long option value less short option value."""
        return self.cash + self.long_value - self.short_value


@dataclass(frozen=True)
class BrokerEvent:
    """A state change the streamers publish: ``kind`` is "order" (``order`` holds the
    public order document), "position" (``symbol`` moved) or "balance"."""

    kind: str
    account: str
    order: dict[str, Any] | None = None
    symbol: str | None = None


BrokerListener = Callable[[BrokerEvent], None]


@dataclass
class Broker:
    """All broker behaviour over a :class:`Store` and a :class:`clock.SimClock`."""

    store: Store
    sim_clock: clock.SimClock
    settings: SimSettings
    real_time: Callable[[], float] = time.time
    faults: list[Fault] = field(default_factory=list)
    paths: dict[str, list[market.PricePoint]] = field(default_factory=dict)
    fill_delay: float = 0.0
    #: Called on every order save, position move and balance change (streamers).
    listeners: list[BrokerListener] = field(default_factory=list)

    def __post_init__(self) -> None:
        saved_delay = self.store.get_meta("fill-delay")
        self.fill_delay = float(
            self.settings.fill_delay_seconds if saved_delay is None else saved_delay
        )
        for symbol in market.UNDERLYINGS:
            raw = self.store.get_meta(f"price-path:{symbol}") or []
            self.paths[symbol] = [
                market.PricePoint(datetime.fromisoformat(p["at"]), Decimal(p["price"])) for p in raw
            ]
        default = self.store.customer_by_credentials(
            self.settings.client_secret, self.settings.refresh_token
        )
        if default is None:
            self.create_customer(
                "Default", self.settings.client_secret, self.settings.refresh_token
            )

    def emit(self, event: BrokerEvent) -> None:
        """Tell the listeners about a state change; a failing listener is logged only."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("broker listener failed on %s", event.kind)

    # time and market

    def now(self) -> datetime:
        """The simulated instant."""
        return self.sim_clock.now()

    def spot(self, symbol: str, at: datetime | None = None) -> Decimal:
        """The underlying's last price."""
        return market.underlying_price(
            self.settings.seed, symbol, at or self.now(), self.paths.get(symbol)
        )

    def option_quote(
        self, option: chains.OptionSymbol, at: datetime | None = None
    ) -> market.OptionQuote:
        """The option's quote on the seeded surface."""
        when = at or self.now()
        return market.option_quote(
            spot=self.spot(option.root, when),
            strike=option.strike,
            is_call=option.is_call,
            expiration=option.expiration,
            at=when,
            atm=market.atm_iv(self.settings.seed, option.root, clock.ny_date(when)),
            rate=float(self.settings.risk_free_rate),
        )

    def set_price_path(self, symbol: str, path: list[market.PricePoint]) -> None:
        """Script the underlying's price (empty: back to the seeded model)."""
        self.paths[symbol] = path
        self.store.set_meta(
            f"price-path:{symbol}",
            [{"at": p.at.isoformat(), "price": str(p.price)} for p in path] or None,
        )

    def set_fill_delay(self, seconds: float) -> None:
        """Real seconds before a mid-priced order fills."""
        self.fill_delay = seconds
        self.store.set_meta("fill-delay", seconds)

    def save_clock(self) -> None:
        """Persist the clock so a restart resumes at the same simulated instant."""
        now, speed = self.sim_clock.state()
        self.store.set_meta("clock", {"now": now.isoformat(), "speed": speed})

    # customers and tokens

    def create_customer(
        self,
        name: str,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        *,
        accounts: int = 1,
        cash: Decimal = DEFAULT_STARTING_CASH,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
    ) -> tuple[Customer, list[str]]:
        """A customer with ``accounts`` accounts of ``cash`` each."""
        secret = client_secret or secrets.token_urlsafe(16)
        refresh = refresh_token or secrets.token_urlsafe(24)
        if self.store.customer_by_credentials(secret, refresh) is not None:
            raise unprocessable("duplicate_customer", "a customer with these credentials exists")
        customer = self.store.add_customer(name, secret, refresh, token_lifetime)
        numbers: list[str] = []
        for _ in range(accounts):
            number = account_number(self.store.account_count() + 1)
            self.store.add_account(
                number, customer.id, f"{name} {len(numbers) + 1}", self.now(), cash
            )
            numbers.append(number)
        return customer, numbers

    def issue_token(self, client_secret: str, refresh_token: str) -> tuple[str, int]:
        """(access token, lifetime) for valid credentials, else the API's 401."""
        customer = self.store.customer_by_credentials(client_secret, refresh_token)
        if customer is None:
            raise ApiError(401, "invalid_grant", "Invalid client secret or refresh token")
        token = "sim-" + secrets.token_urlsafe(24)
        self.store.add_token(token, customer.id, self.real_time() + customer.token_lifetime)
        return token, customer.token_lifetime

    def authenticate(self, authorization: str | None) -> int:
        """The customer behind a ``Bearer`` header, else the API's 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise ApiError(401, "unauthorized", "Missing or malformed Authorization header")
        owner = self.store.token_owner(authorization[len("Bearer ") :], self.real_time())
        if owner is None:
            raise ApiError(401, "token_invalid", "This access token is invalid or expired")
        return owner

    def expire_tokens(self, customer_id: int | None = None) -> None:
        """Invalidate access tokens now (forced expiry)."""
        self.store.expire_tokens(customer_id, self.real_time())

    def owned_account(self, customer_id: int, number: str) -> str:
        """``number`` if the customer owns it; 404 otherwise (no hint that it exists)."""
        row = self.store.account(number)
        if row is None or row.customer_id != customer_id:
            raise not_found(f"Account {number}")
        return number

    # faults

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault for the next matching request."""
        if fault.kind not in FAULT_KINDS:
            raise invalid(f"unknown fault kind {fault.kind!r}; one of {', '.join(FAULT_KINDS)}")
        self.faults.append(fault)

    def take_fault(self, kinds: tuple[str, ...]) -> Fault | None:
        """Consume the first queued fault of one of ``kinds``."""
        for fault in self.faults:
            if fault.kind in kinds:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # balances and positions

    def account_view(
        self,
        number: str,
        extra: list[tuple[str, int]] | None = None,
        cash_delta: Decimal = Decimal(0),
    ) -> AccountView:
        """Balances now, optionally as if ``extra`` (symbol, signed qty) had been added."""
        row = self.store.account(number)
        if row is None:
            raise not_found(f"Account {number}")
        quantities: dict[str, int] = defaultdict(int)
        for position in self.store.positions(number):
            quantities[position.symbol] += position.quantity
        for symbol, qty in extra or []:
            quantities[symbol] += qty
        long_value = short_value = Decimal(0)
        groups: dict[tuple[str, date], list[fills.OptionHolding]] = defaultdict(list)
        for symbol, qty in quantities.items():
            option = chains.parse_occ(symbol)
            if option is None or qty == 0:
                continue
            value = self.option_quote(option).mid * abs(qty) * fills.MULTIPLIER
            if qty > 0:
                long_value += value
            else:
                short_value += value
            groups[(option.root, option.expiration)].append(
                fills.OptionHolding(option.is_call, option.strike, qty)
            )
        requirement = sum((fills.margin_requirement(g) for g in groups.values()), Decimal(0))
        return AccountView(row.cash + cash_delta, long_value, short_value, requirement)

    def apply_fill(self, number: str, symbol: str, signed_qty: int, price: Decimal) -> None:
        """Move a position and the cash by one leg fill."""
        now = self.now()
        existing = next((p for p in self.store.positions(number) if p.symbol == symbol), None)
        old_qty = existing.quantity if existing else 0
        new_qty = old_qty + signed_qty
        if existing is None or old_qty == 0 or ((old_qty > 0) != (new_qty > 0) and new_qty != 0):
            average = price
        elif abs(new_qty) > abs(old_qty):
            average = (existing.average_open_price * abs(old_qty) + price * abs(signed_qty)) / abs(
                new_qty
            )
        else:
            average = existing.average_open_price
        self.store.put_position(
            PositionRow(
                number,
                symbol,
                new_qty,
                average.quantize(Decimal("0.0001")),
                existing.created_at if existing else now,
                now,
            )
        )
        row = self.store.account(number)
        assert row is not None
        self.store.set_cash(number, row.cash - price * signed_qty * fills.MULTIPLIER)
        self.emit(BrokerEvent("position", number, symbol=symbol))

    def close_externally(self, number: str, symbol: str, quantity: int | None) -> None:
        """Close (part of) a position at its mid, as if done outside this API."""
        position = next((p for p in self.store.positions(number) if p.symbol == symbol), None)
        option = chains.parse_occ(symbol)
        if position is None or option is None:
            raise not_found(f"Position {symbol} in {number}")
        size = min(quantity or abs(position.quantity), abs(position.quantity))
        mid = self.option_quote(option).mid.quantize(fills.TICK)
        self.apply_fill(number, symbol, -size if position.quantity > 0 else size, mid)
        self.emit(BrokerEvent("balance", number))

    # orders

    def parse_order(self, body: Any, *, with_legs: bool = True) -> dict[str, Any]:
        """Validate an order request body; 400/422 in the API's shape when it is bad."""
        if not isinstance(body, dict):
            raise invalid("order body must be a JSON object")
        order_type = body.get("order-type")
        if order_type not in ("Limit", "Market"):
            raise unprocessable(
                "invalid_order_type", f"order-type {order_type!r} is not supported; use Limit"
            )
        tif = body.get("time-in-force", "Day")
        if tif not in ("Day", "GTC"):
            raise unprocessable(
                "invalid_time_in_force", f"time-in-force {tif!r} is not supported; use Day or GTC"
            )
        price: Decimal | None = None
        if order_type == "Limit":
            try:
                price = Decimal(str(body["price"]))
            except (KeyError, InvalidOperation) as exc:
                raise invalid("a Limit order needs a numeric price") from exc
            if not _on_grid(price, fills.TICK):
                raise unprocessable(
                    "invalid_price", "price must be a non-negative multiple of 0.01"
                )
            effect = body.get("price-effect")
            if price and effect not in ("Credit", "Debit"):
                raise invalid("price-effect must be Credit or Debit")
            if effect == "Debit":
                price = -price
        external = body.get("external-identifier")
        if external is not None and not isinstance(external, str):
            raise invalid("external-identifier must be a string")
        parsed: dict[str, Any] = {
            "order-type": order_type,
            "time-in-force": tif,
            "price": price,
            "external-identifier": external,
        }
        if with_legs:
            parsed["legs"] = self._parse_legs(body.get("legs"))
        return parsed

    def _parse_legs(self, raw: Any) -> list[ParsedLeg]:
        if not isinstance(raw, list) or not raw:
            raise invalid("legs must be a non-empty list")
        if len(raw) > 4:
            raise unprocessable("too_many_legs", "an order has at most 4 legs")
        legs: list[ParsedLeg] = []
        now = self.now()
        for item in raw:
            if not isinstance(item, dict):
                raise invalid("each leg must be an object")
            if item.get("instrument-type") != "Equity Option":
                raise unprocessable(
                    "invalid_instrument_type", "only Equity Option legs are supported"
                )
            symbol = item.get("symbol")
            option = chains.parse_occ(symbol) if isinstance(symbol, str) else None
            if option is None or option.root not in market.UNDERLYINGS:
                raise unprocessable("invalid_symbol", f"unknown option symbol {symbol!r}")
            if option.strike % 1 != 0 or not chains.is_listed_expiration(option.expiration, now):
                raise unprocessable("invalid_symbol", f"option {symbol!r} is not listed")
            action = item.get("action")
            if action not in OPTION_ACTIONS:
                raise unprocessable(
                    "invalid_action", f"action {action!r} is not valid for an option"
                )
            try:
                quantity = Decimal(str(item.get("quantity")))
            except InvalidOperation as exc:
                raise invalid("leg quantity must be a number") from exc
            if not _on_grid(quantity, Decimal(1)) or quantity == 0:
                raise unprocessable(
                    "invalid_quantity", "leg quantity must be a positive whole number"
                )
            legs.append(ParsedLeg(option, str(action), int(quantity)))
        if len({leg.symbol.root for leg in legs}) != 1:
            raise unprocessable("invalid_legs", "all legs must share one underlying")
        if len({leg.symbol.occ for leg in legs}) != len(legs):
            raise unprocessable("invalid_legs", "each symbol may appear in one leg only")
        return legs

    def _check_closing(self, number: str, legs: list[ParsedLeg]) -> None:
        """422 ``insufficient_position`` when a closing leg is bigger than the position it
        closes (a short for Buy to Close, a long for Sell to Close): a closing leg never
        opens a position. Other working closing orders are not netted here; a fill that
        the position no longer covers is rejected instead (see :meth:`_uncovered_close`)."""
        shortfall = self._uncovered_close(
            number, [(leg.symbol.occ, leg.action, leg.quantity) for leg in legs]
        )
        if shortfall is not None:
            raise unprocessable("insufficient_position", shortfall)

    def _uncovered_close(self, number: str, legs: list[tuple[str, str, int]]) -> str | None:
        """Why the first closing leg of ``legs`` (symbol, action, quantity) is not covered
        by the account's positions, or None when every closing leg is."""
        held = {p.symbol: p.quantity for p in self.store.positions(number)}
        for symbol, action, quantity in legs:
            have = held.get(symbol, 0)
            if action == "Buy to Close":
                covered, side = max(-have, 0), "short"
            elif action == "Sell to Close":
                covered, side = max(have, 0), "long"
            else:
                continue
            if quantity > 0 and covered < quantity:
                return (
                    f"{action} {quantity} {symbol} exceeds the open {side} position "
                    f"of {covered}; a closing order cannot open a position"
                )
        return None

    def leg_quotes(self, legs: list[ParsedLeg]) -> list[fills.LegQuote]:
        """Current quotes of the legs for the fill model."""
        quotes = []
        for leg in legs:
            q = self.option_quote(leg.symbol)
            quotes.append(fills.LegQuote(leg.sells, leg.quantity, q.bid, q.ask))
        return quotes

    def buying_power_effect(
        self, number: str, legs: list[ParsedLeg], price: Decimal | None
    ) -> dict[str, Any]:
        """The dry-run ``buying-power-effect`` of filling the whole order at its price."""
        quotes = self.leg_quotes(legs)
        per_unit = price if price is not None else fills.natural_price(quotes)
        units = fills.ratio_gcd([leg.quantity for leg in legs])
        cash_delta = per_unit * units * fills.MULTIPLIER
        extra = [(leg.symbol.occ, -leg.quantity if leg.sells else leg.quantity) for leg in legs]
        before = self.account_view(number)
        after = self.account_view(number, extra, cash_delta)
        isolated = self._isolated_requirement(legs)
        change_req = after.requirement - before.requirement
        change_bp = after.buying_power - before.buying_power

        def signed(name: str, value: Decimal, debit_when_negative: bool = True) -> dict[str, str]:
            negative = value < 0 if debit_when_negative else value > 0
            return {name: money(abs(value)), f"{name}-effect": "Debit" if negative else "Credit"}

        effect: dict[str, Any] = {}
        effect |= signed("change-in-margin-requirement", change_req, debit_when_negative=False)
        effect |= signed("change-in-buying-power", change_bp)
        effect |= signed("current-buying-power", before.buying_power)
        effect |= signed("new-buying-power", after.buying_power)
        effect |= {"isolated-order-margin-requirement": money(isolated)}
        effect["isolated-order-margin-requirement-effect"] = "Debit" if isolated else "None"
        effect |= {
            "is-spread": len(legs) > 1,
            "impact": money(abs(change_bp)),
            "effect": "Debit" if change_bp < 0 else ("Credit" if change_bp > 0 else "None"),
        }
        return effect

    @staticmethod
    def _isolated_requirement(legs: list[ParsedLeg]) -> Decimal:
        groups: dict[date, list[fills.OptionHolding]] = defaultdict(list)
        for leg in legs:
            qty = -leg.quantity if leg.sells else leg.quantity
            groups[leg.symbol.expiration].append(
                fills.OptionHolding(leg.symbol.is_call, leg.symbol.strike, qty)
            )
        return sum((fills.margin_requirement(g) for g in groups.values()), Decimal(0))

    def new_order_document(
        self, number: str, parsed: dict[str, Any], order_id: int | None
    ) -> dict[str, Any]:
        """The order as the API shows it, before any fill."""
        now = self.now()
        legs: list[ParsedLeg] = parsed["legs"]
        doc: dict[str, Any] = {
            "account-number": number,
            "time-in-force": parsed["time-in-force"],
            "order-type": parsed["order-type"],
            "size": fills.ratio_gcd([leg.quantity for leg in legs]),
            "underlying-symbol": legs[0].symbol.root,
            "underlying-instrument-type": "Equity",
            "status": "Live",
            "cancellable": True,
            "editable": True,
            "edited": False,
            "received-at": iso(now),
            "live-at": iso(now),
            "updated-at": iso(now),
            "source": "senex-sim",
            "legs": [
                {
                    "instrument-type": "Equity Option",
                    "symbol": leg.symbol.occ,
                    "action": leg.action,
                    "quantity": leg.quantity,
                    "remaining-quantity": leg.quantity,
                    "fills": [],
                }
                for leg in legs
            ],
            "_session": clock.trading_session_for(now).isoformat(),
        }
        if order_id is not None:
            doc["id"] = order_id
        self._set_price(doc, parsed["price"])
        if parsed["external-identifier"] is not None:
            doc["external-identifier"] = parsed["external-identifier"]
        return doc

    @staticmethod
    def _set_price(doc: dict[str, Any], price: Decimal | None) -> None:
        doc.pop("price", None)
        doc.pop("price-effect", None)
        if price is None:
            return
        doc["price"] = money(abs(price))
        if price:
            doc["price-effect"] = "Debit" if price < 0 else "Credit"
        doc["_signed-price"] = str(price)

    def dry_run(self, number: str, body: Any) -> dict[str, Any]:
        """``data`` of ``POST /orders/dry-run``."""
        parsed = self.parse_order(body)
        self._check_closing(number, parsed["legs"])
        doc = self.new_order_document(number, parsed, None)
        doc["status"] = "Received"
        effect = self.buying_power_effect(number, parsed["legs"], parsed["price"])
        result: dict[str, Any] = {
            "order": _public(doc),
            "buying-power-effect": effect,
            "fee-calculation": _fees(parsed["legs"]),
            "warnings": [],
        }
        if effect["new-buying-power-effect"] == "Debit":
            result["errors"] = [
                {
                    "code": "insufficient_buying_power",
                    "message": "Order would exceed available buying power",
                }
            ]
        if not clock.is_market_open(self.now()):
            result["warnings"].append(
                {
                    "code": "market_closed",
                    "message": "The market is closed; the order will rest until the open",
                }
            )
        return result

    def place(self, number: str, body: Any) -> tuple[dict[str, Any], Fault | None]:
        """``data`` of ``POST /orders`` and the order fault it consumed, if any."""
        parsed = self.parse_order(body)
        self._check_closing(number, parsed["legs"])
        effect = self.buying_power_effect(number, parsed["legs"], parsed["price"])
        if effect["new-buying-power-effect"] == "Debit" and effect["effect"] == "Debit":
            raise unprocessable(
                "insufficient_buying_power", "Order would exceed available buying power"
            )
        fault = self.take_fault(ORDER_FAULTS)
        if fault is not None and fault.kind == "reject" and fault.as_error:
            raise unprocessable("order_rejected", fault.reason)
        order_id = self.store.next_order_id()
        doc = self.new_order_document(number, parsed, order_id)
        if fault is not None and fault.kind == "reject":
            self._finish(doc, "Rejected")
            doc["reject-reason"] = fault.reason
        elif fault is not None and fault.kind == "partial":
            doc["_partial"] = True
        self._save(doc)
        if doc["status"] == "Live":
            self._advance(doc)
        return {
            "order": _public(doc),
            "buying-power-effect": effect,
            "fee-calculation": _fees(parsed["legs"]),
        }, fault

    def replace(self, number: str, order_id: int, body: Any) -> dict[str, Any]:
        """Cancel a live order and place its replacement with the same legs."""
        old = self._owned_order(number, order_id)
        if old["status"] not in LIVE_STATUSES:
            raise unprocessable("order_not_editable", f"order {order_id} is {old['status']}")
        parsed = self.parse_order(body, with_legs=False)
        parsed["legs"] = [
            ParsedLeg(
                chains.parse_occ(leg["symbol"]) or _never(),
                leg["action"],
                int(leg["remaining-quantity"]),
            )
            for leg in old["legs"]
            if int(leg["remaining-quantity"]) > 0
        ]
        if parsed["external-identifier"] is None:
            # Carry the client tag over so a lookup by tag finds the live replacement.
            parsed["external-identifier"] = old.get("external-identifier")
        new_id = self.store.next_order_id()
        self._finish(old, "Cancelled")
        old["cancelled-at"] = old["terminal-at"]
        old["replacing-order-id"] = new_id
        self._save(old)
        doc = self.new_order_document(number, parsed, new_id)
        doc["replaces-order-id"] = order_id
        doc["edited"] = True
        self._save(doc)
        self._advance(doc)
        return _public(doc)

    def cancel(self, number: str, order_id: int) -> dict[str, Any]:
        """Cancel a live order; 422 once it is terminal."""
        doc = self._owned_order(number, order_id)
        if doc["status"] not in LIVE_STATUSES:
            raise unprocessable("order_not_cancellable", f"order {order_id} is {doc['status']}")
        self._finish(doc, "Cancelled")
        doc["cancelled-at"] = doc["terminal-at"]
        self._save(doc)
        return _public(doc)

    def order(self, number: str, order_id: int) -> dict[str, Any]:
        """One order of the account."""
        return _public(self._owned_order(number, order_id))

    def orders(self, number: str, statuses: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The account's orders, newest first."""
        return [_public(d) for d in self.store.orders(number, statuses)]

    def _owned_order(self, number: str, order_id: int) -> dict[str, Any]:
        doc = self.store.order(order_id)
        if doc is None or doc.get("account-number") != number:
            raise not_found(f"Order {order_id}")
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        self.store.put_order(int(doc["id"]), doc["account-number"], doc["status"], doc)
        self.emit(BrokerEvent("order", doc["account-number"], order=_public(doc)))

    def _finish(self, doc: dict[str, Any], status: str) -> None:
        now = iso(self.now())
        doc["status"] = status
        doc["cancellable"] = False
        doc["editable"] = False
        doc["terminal-at"] = now
        doc["updated-at"] = now

    # the passage of time

    def sweep(self) -> None:
        """Bring orders and positions up to the simulated now."""
        self._settle_expired()
        for doc in self.store.orders(None, LIVE_STATUSES):
            try:
                self._advance(doc)
            except Exception:
                # One broken order must not stop the others (or the server): log and skip.
                log.exception("could not advance order %s", doc.get("id"))

    def _advance(self, doc: dict[str, Any]) -> None:
        now = self.now()
        legs = [chains.parse_occ(leg["symbol"]) or _never() for leg in doc["legs"]]
        if any(market.expiry_instant(o.expiration) <= now for o in legs):
            self._finish(doc, "Expired")
            self._save(doc)
            return
        if doc["time-in-force"] == "Day":
            bounds = clock.session_bounds(date.fromisoformat(doc["_session"]))
            if bounds is None or now >= bounds[1]:
                self._finish(doc, "Expired")
                self._save(doc)
                return
        if doc.get("_held"):
            return
        remaining = [int(leg["remaining-quantity"]) for leg in doc["legs"]]
        parsed = [
            ParsedLeg(o, leg["action"], r)
            for o, leg, r in zip(legs, doc["legs"], remaining, strict=True)
        ]
        quotes = self.leg_quotes(parsed)
        limit = Decimal(doc["_signed-price"]) if "_signed-price" in doc else None
        open_now = clock.is_market_open(now)
        if limit is None:
            decision = fills.Decision.FILL_NOW if open_now else fills.Decision.REST
            limit = fills.natural_price(quotes)
        else:
            decision = fills.decide(limit, quotes, market_open=open_now)
        if decision is fills.Decision.REST:
            doc.pop("_mid-since", None)
            return
        if decision is fills.Decision.FILL_AFTER_DELAY:
            since = doc.setdefault("_mid-since", self.real_time())
            if self.real_time() < float(since) + self._delay_for(int(doc["id"])):
                self._save(doc)
                return
        price = fills.execution_price(limit, quotes)
        prices = fills.leg_prices(price, quotes)
        units = fills.ratio_gcd(remaining)
        unit_qty = [r // units for r in remaining]
        if doc.pop("_partial", False):
            fill_qty = self._partial_quantities(remaining, units, unit_qty)
            doc["_held"] = True
        else:
            fill_qty = remaining
        shortfall = self._uncovered_close(
            doc["account-number"],
            [
                (leg["symbol"], leg["action"], qty)
                for leg, qty in zip(doc["legs"], fill_qty, strict=True)
            ],
        )
        if shortfall is not None:
            # The position this order closes is gone (closed elsewhere, settled, or
            # smaller than the order): filling would open a new position instead.
            doc.pop("_held", None)
            self._finish(doc, "Rejected")
            doc["reject-reason"] = f"The position to close is gone: {shortfall}"
            self._save(doc)
            return
        self._fill(doc, fill_qty, prices)

    @staticmethod
    def _partial_quantities(remaining: list[int], units: int, unit_qty: list[int]) -> list[int]:
        """Half the ratio units; with one unit, half of each leg that has two or more
        (all legs at 1: the first leg only)."""
        if units >= 2:
            return [q * (units // 2) for q in unit_qty]
        halves = [r // 2 for r in remaining]
        if any(halves):
            return halves
        return [remaining[0]] + [0] * (len(remaining) - 1)

    def _delay_for(self, order_id: int) -> float:
        """The configured delay stretched by a seeded 0-50 % so fills don't line up."""
        digest = hashlib.blake2b(
            f"{self.settings.seed}:{order_id}".encode(), digest_size=2
        ).digest()
        return self.fill_delay * (1.0 + 0.5 * int.from_bytes(digest, "big") / 65535.0)

    def _fill(self, doc: dict[str, Any], quantities: list[int], prices: list[Decimal]) -> None:
        now = self.now()
        for index, (leg, qty, price) in enumerate(
            zip(doc["legs"], quantities, prices, strict=True)
        ):
            if qty <= 0:
                continue
            fills_so_far = leg["fills"]
            fills_so_far.append(
                {
                    "fill-id": f"{doc['id']}-{index}-{len(fills_so_far) + 1}",
                    "quantity": qty,
                    "fill-price": money(price),
                    "filled-at": iso(now),
                    "destination-venue": "SENEX_SIM",
                }
            )
            leg["remaining-quantity"] = int(leg["remaining-quantity"]) - qty
            signed_qty = -qty if leg["action"].startswith("Sell") else qty
            self.apply_fill(doc["account-number"], leg["symbol"], signed_qty, price)
        doc["updated-at"] = iso(now)
        doc.pop("_mid-since", None)
        if all(int(leg["remaining-quantity"]) == 0 for leg in doc["legs"]):
            self._finish(doc, "Filled")
        self._save(doc)
        self.emit(BrokerEvent("balance", doc["account-number"]))

    def _settle_expired(self) -> None:
        """Expired options settle at intrinsic value against the underlying's close."""
        now = self.now()
        for position in self.store.positions():
            option = chains.parse_occ(position.symbol)
            if option is None:
                continue
            expiry = market.expiry_instant(option.expiration)
            if expiry > now:
                continue
            spot = self.spot(option.root, expiry)
            intrinsic = (
                max(spot - option.strike, Decimal(0))
                if option.is_call
                else max(option.strike - spot, Decimal(0))
            )
            self.apply_fill(position.account, position.symbol, -position.quantity, intrinsic)
            self.emit(BrokerEvent("balance", position.account))


def _on_grid(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is a finite, non-negative multiple of ``step`` (False for
    numbers too large to quantize, e.g. ``1e999999``)."""
    if not value.is_finite() or value < 0:
        return False
    try:
        return value == value.quantize(step)
    except InvalidOperation:
        return False


def _fees(legs: list[ParsedLeg]) -> dict[str, str]:
    """A flat fee schedule: $0.65 commission per opening contract, no other fees."""
    opening = sum(leg.quantity for leg in legs if leg.action.endswith("Open"))
    commission = Decimal("0.65") * opening
    return {
        "regulatory-fees": "0.00",
        "regulatory-fees-effect": "None",
        "clearing-fees": "0.00",
        "clearing-fees-effect": "None",
        "commission": money(commission),
        "commission-effect": "Debit" if commission else "None",
        "proprietary-index-option-fees": "0.00",
        "proprietary-index-option-fees-effect": "None",
        "total-fees": money(commission),
        "total-fees-effect": "Debit" if commission else "None",
    }


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """The order without the simulator's private bookkeeping keys."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _never() -> chains.OptionSymbol:
    raise AssertionError("stored orders hold only valid option symbols")
