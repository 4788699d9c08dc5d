"""Hypothesis strategies that build valid instances of any contract model.

``models(Model)`` reads the model's fields (types, ``Annotated`` constraints, nested
models) and draws values for them. The few models with cross-field invariants (spread
geometry, totals, order shape...) get a composite strategy that draws generic fields
first and then makes them coherent, so every invariant is exercised, not bypassed.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel, JsonValue
from pydantic.fields import FieldInfo

from libs.contracts import symbols
from libs.contracts.commands import GetChainSnapshot
from libs.contracts.execution import (
    OrderAction,
    OrderFilled,
    OrderLeg,
    OrderPartiallyFilled,
    OrderPurpose,
    OrderSubmitted,
    TimeInForce,
)
from libs.contracts.market import BollingerBands
from libs.contracts.positions import ExitOrderPlaced, PositionOpened, PositionSpread
from libs.contracts.risk import WarningLevel
from libs.contracts.strategy import (
    SpreadKind,
    SpreadLeg,
    SuggestedSpread,
    Suggestion,
    SuggestionApproved,
)
from libs.contracts.symbols import OccSymbol, OptionType

Draw = Callable[[st.SearchStrategy[Any]], Any]

_TIMEZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=-4)), timezone(timedelta(hours=5, minutes=30))]
)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1, tzinfo=None),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2099, 12, 31, tzinfo=None),  # noqa: DTZ001
    timezones=_TIMEZONES,
)
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
option_roots = st.from_regex(r"[A-Z]{1,6}", fullmatch=True)
#: Strikes as listed: positive, at most 3 decimals, OCC-encodable.
strikes = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999.999"), places=3)
occ_symbols = st.builds(OccSymbol.build, option_roots, dates, st.sampled_from(OptionType), strikes)
tickers = st.from_regex(r"[A-Z][A-Z0-9.]{0,5}", fullmatch=True)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


class _Constraints:
    """The constraints found in a field's metadata."""

    def __init__(self, metadata: list[Any]) -> None:
        self.ge: Any = None
        self.gt: Any = None
        self.le: Any = None
        self.lt: Any = None
        self.min_len: int | None = None
        self.max_len: int | None = None
        self.pattern: str | None = None
        self.validators: list[Callable[..., Any]] = []
        for item in metadata:
            self._add(item)

    def _add(self, item: Any) -> None:
        if isinstance(item, FieldInfo):
            for inner in item.metadata:
                self._add(inner)
        elif isinstance(item, annotated_types.Ge):
            self.ge = item.ge
        elif isinstance(item, annotated_types.Gt):
            self.gt = item.gt
        elif isinstance(item, annotated_types.Le):
            self.le = item.le
        elif isinstance(item, annotated_types.Lt):
            self.lt = item.lt
        elif isinstance(item, annotated_types.MinLen):
            self.min_len = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            self.max_len = item.max_length
        elif getattr(item, "pattern", None) is not None:
            self.pattern = item.pattern
        elif getattr(item, "func", None) is not None:
            self.validators.append(item.func)


def _decimals(c: _Constraints) -> st.SearchStrategy[Decimal]:
    low = Decimal(c.ge if c.ge is not None else c.gt if c.gt is not None else -10_000_000)
    high = Decimal(c.le if c.le is not None else c.lt if c.lt is not None else 10_000_000)
    if c.gt is not None:
        low += Decimal("0.0001")

    def with_places(places: int) -> st.SearchStrategy[Decimal]:
        return st.decimals(
            min_value=low, max_value=high, places=places, allow_nan=False, allow_infinity=False
        )

    return st.integers(min_value=0, max_value=4).flatmap(with_places)


def _integers(c: _Constraints) -> st.SearchStrategy[int]:
    low = c.ge if c.ge is not None else (c.gt + 1 if c.gt is not None else -1_000_000)
    high = c.le if c.le is not None else (c.lt - 1 if c.lt is not None else 1_000_000)
    return st.integers(min_value=low, max_value=high)


def _floats(c: _Constraints) -> st.SearchStrategy[float]:
    low = c.ge if c.ge is not None else c.gt
    high = c.le if c.le is not None else c.lt
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=c.ge is None and c.gt is not None,
        exclude_max=c.le is None and c.lt is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def _strings(c: _Constraints) -> st.SearchStrategy[str]:
    low, high = c.min_len or 0, min(c.max_len or 24, 24)
    if c.pattern is not None:
        fitting = st.from_regex(c.pattern, fullmatch=True)
        return fitting.filter(lambda s: low <= len(s) <= (c.max_len or 10_000))
    return st.text(min_size=low, max_size=max(low, high))


def for_type(tp: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values of type ``tp`` meeting the constraints in ``metadata``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        return for_type(inner, [*metadata, *extra])
    c = _Constraints(metadata)
    if symbols._market_symbol in c.validators:
        return tickers | occ_symbols
    if tp is JsonValue:
        return json_values
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return st.one_of([for_type(arg, metadata) for arg in typing.get_args(tp)])
    if origin is tuple:
        item = for_type(typing.get_args(tp)[0], [])
        size = (c.min_len or 0, min(c.max_len or 3, 3))
        return st.lists(item, min_size=size[0], max_size=max(size)).map(tuple)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        return st.dictionaries(for_type(key_type, []), for_type(value_type, []), max_size=3)
    return _for_plain_type(tp, c)


def _for_plain_type(tp: Any, c: _Constraints) -> st.SearchStrategy[Any]:
    if tp is type(None):
        return st.none()
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return models(tp)
        if issubclass(tp, Enum):
            return st.sampled_from(list(tp))
        if tp is OccSymbol:
            return occ_symbols
    plain: dict[Any, Callable[[_Constraints], st.SearchStrategy[Any]]] = {
        bool: lambda _: st.booleans(),
        int: _integers,
        float: _floats,
        str: _strings,
        Decimal: _decimals,
        UUID: lambda _: st.uuids(),
        datetime: lambda _: aware_datetimes,
        date: lambda _: dates,
    }
    if tp in plain:
        return plain[tp](c)
    raise TypeError(f"no strategy for {tp!r}")


def field_values(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``model``: every field drawn from its declared type.

    A ``type`` literal and ``schema_version`` keep their defaults (the model's identity).
    """
    return st.fixed_dictionaries(
        {
            name: for_type(field.annotation, list(field.metadata))
            for name, field in model.model_fields.items()
            if name != "schema_version"
            and not (name == "type" and typing.get_origin(field.annotation) is typing.Literal)
        }
    )


@functools.cache
def models(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Valid instances of ``model``."""
    custom = _CUSTOM.get(model)
    if custom is not None:
        return custom()
    return field_values(model).map(lambda values: model(**values))


# --- models with cross-field invariants ------------------------------------------------


def _sorted_bands() -> st.SearchStrategy[BollingerBands]:
    def build(values: dict[str, Any]) -> BollingerBands:
        lower, middle, upper = sorted((values["lower"], values["middle"], values["upper"]))
        return BollingerBands(**{**values, "lower": lower, "middle": middle, "upper": upper})

    return field_values(BollingerBands).map(build)


def _leg(symbol: OccSymbol, bid: Decimal, ask: Decimal) -> SpreadLeg:
    return SpreadLeg(symbol=symbol, bid=bid, ask=ask, mid=(bid + ask) / 2)


_prices = st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=2)


def _spread_legs() -> st.SearchStrategy[SpreadLeg]:
    return st.builds(_leg, occ_symbols, _prices, _prices)


@st.composite
def _geometry(draw: Draw) -> tuple[str, date, Decimal, Decimal]:
    """Root, expiration, short strike and width of a spread whose long strike is listed."""
    width = draw(st.decimals(min_value=Decimal("0.5"), max_value=Decimal(20), places=1))
    short = draw(st.decimals(min_value=width + 1, max_value=Decimal(9000), places=1))
    return draw(option_roots), draw(dates), short, width


@st.composite
def suggested_spreads(
    draw: Draw, kind: SpreadKind | None = None, geometry: Any = None
) -> SuggestedSpread:
    """A coherent spread; ``geometry`` pins root, expiration, short strike and width."""
    kind = kind or draw(st.sampled_from(SpreadKind))
    root, expiration, short_strike, width = geometry or draw(_geometry())
    option_type = kind.option_type
    long_strike = short_strike - width if option_type is OptionType.PUT else short_strike + width
    short = _leg(
        OccSymbol.build(root, expiration, option_type, short_strike), draw(_prices), draw(_prices)
    )
    long = _leg(
        OccSymbol.build(root, expiration, option_type, long_strike), draw(_prices), draw(_prices)
    )
    return SuggestedSpread(
        kind=kind,
        short_leg=short,
        long_leg=long,
        natural_credit=short.bid - long.ask,
        mid_credit=short.mid - long.mid,
    )


@st.composite
def suggestions(draw: Draw) -> Suggestion:
    """A coherent Trident suggestion, with or without its call spread."""
    values = draw(field_values(Suggestion))
    geometry = draw(_geometry())
    near_band = draw(st.booleans())
    kinds = [SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2]
    if not near_band:
        kinds.append(SpreadKind.CALL_SPREAD)
    spreads = tuple(draw(suggested_spreads(kind, geometry)) for kind in kinds)
    created_at = values["created_at"]
    values.update(
        expiration=geometry[1],
        short_strike=geometry[2],
        width=geometry[3],
        spreads=spreads,
        near_bollinger_band=near_band,
        band_reason=draw(st.text(min_size=1, max_size=20)) if near_band else None,
        total_natural_credit=sum(s.natural_credit for s in spreads),
        total_mid_credit=sum(s.mid_credit for s in spreads),
        expires_at=created_at + timedelta(hours=24),
    )
    return Suggestion(**values)


@st.composite
def _position_spread(draw: Draw, kind: SpreadKind, geometry: Any) -> PositionSpread:
    root, expiration, short_strike, width = geometry
    option_type = kind.option_type
    long_strike = short_strike - width if option_type is OptionType.PUT else short_strike + width
    values = draw(field_values(PositionSpread))
    values.update(
        kind=kind,
        short_symbol=OccSymbol.build(root, expiration, option_type, short_strike),
        long_symbol=OccSymbol.build(root, expiration, option_type, long_strike),
    )
    return PositionSpread(**values)


@st.composite
def position_spreads(draw: Draw) -> PositionSpread:
    """A coherent spread of a position."""
    spread: PositionSpread = draw(
        _position_spread(draw(st.sampled_from(SpreadKind)), draw(_geometry()))
    )
    return spread


@st.composite
def positions_opened(draw: Draw) -> PositionOpened:
    """A coherent PositionOpened."""
    values = draw(field_values(PositionOpened))
    geometry = draw(_geometry())
    kinds = [SpreadKind.PUT_SPREAD_1, SpreadKind.PUT_SPREAD_2]
    if draw(st.booleans()):
        kinds.append(SpreadKind.CALL_SPREAD)
    spreads = tuple(draw(_position_spread(kind, geometry)) for kind in kinds)
    values.update(
        expiration=geometry[1],
        width=geometry[3],
        spreads=spreads,
        total_entry_credit=sum(s.entry_credit * s.quantity for s in spreads),
    )
    return PositionOpened(**values)


_TO_OPEN = {
    OrderAction.BUY_TO_CLOSE: OrderAction.BUY_TO_OPEN,
    OrderAction.SELL_TO_CLOSE: OrderAction.SELL_TO_OPEN,
}
_TO_CLOSE = {
    OrderAction.BUY_TO_OPEN: OrderAction.BUY_TO_CLOSE,
    OrderAction.SELL_TO_OPEN: OrderAction.SELL_TO_CLOSE,
}


def _shaped_legs(legs: tuple[OrderLeg, ...], purpose: OrderPurpose) -> tuple[OrderLeg, ...]:
    """Unique symbols, with opening actions for OPEN and closing actions for exits."""
    mapping = _TO_CLOSE if purpose.is_exit else _TO_OPEN
    unique = {leg.symbol: leg for leg in legs}.values()
    return tuple(
        leg.model_copy(update={"action": mapping.get(leg.action, leg.action)}) for leg in unique
    )


def _orders_submitted() -> st.SearchStrategy[OrderSubmitted]:
    def build(values: dict[str, Any], ids: tuple[UUID, UUID, UUID], kind: SpreadKind) -> Any:
        purpose = values["purpose"]
        values["legs"] = _shaped_legs(values["legs"], purpose)
        values["time_in_force"] = TimeInForce.GTC if purpose.is_exit else TimeInForce.DAY
        if purpose.is_exit:
            values["position_id"] = values["position_id"] or ids[0]
            values["spread_kind"] = values["spread_kind"] or kind
        else:
            values["suggestion_id"] = values["suggestion_id"] or ids[1]
            values["reservation_id"] = values["reservation_id"] or ids[2]
        return OrderSubmitted(**values)

    uuid_triples = st.tuples(st.uuids(), st.uuids(), st.uuids())
    return st.builds(build, field_values(OrderSubmitted), uuid_triples, st.sampled_from(SpreadKind))


def _exit_orders() -> st.SearchStrategy[ExitOrderPlaced]:
    def build(values: dict[str, Any], purpose: OrderPurpose) -> ExitOrderPlaced:
        values.update(
            purpose=purpose,
            legs=_shaped_legs(values["legs"], purpose),
            time_in_force=TimeInForce.GTC,
        )
        return ExitOrderPlaced(**values)

    exits = st.sampled_from([p for p in OrderPurpose if p.is_exit])
    return st.builds(build, field_values(ExitOrderPlaced), exits)


def _fill_reports(model: type[OrderFilled | OrderPartiallyFilled]) -> st.SearchStrategy[Any]:
    def build(values: dict[str, Any]) -> Any:
        values["legs"] = tuple(
            fill.model_copy(update={"broker_fill_id": f"{fill.broker_fill_id}-{i}"})
            for i, fill in enumerate(values["legs"])
        )
        return model(**values)

    return field_values(model).map(build)


def _approvals() -> st.SearchStrategy[SuggestionApproved]:
    def build(values: dict[str, Any]) -> SuggestionApproved:
        if values["automatic"]:
            values.update(custom_credit=None, approved_by=None)
        elif values["warning_level"] is not WarningLevel.NONE:
            values["warning_confirmed"] = True
        return SuggestionApproved(**values)

    return field_values(SuggestionApproved).map(build)


def _chain_snapshots() -> st.SearchStrategy[GetChainSnapshot]:
    def build(values: dict[str, Any]) -> GetChainSnapshot:
        low, high = sorted((values["min_dte"], values["max_dte"]))
        return GetChainSnapshot(**{**values, "min_dte": low, "max_dte": high})

    return field_values(GetChainSnapshot).map(build)


_CUSTOM: dict[type[BaseModel], Callable[[], st.SearchStrategy[Any]]] = {
    GetChainSnapshot: _chain_snapshots,
    BollingerBands: _sorted_bands,
    SpreadLeg: _spread_legs,
    SuggestedSpread: suggested_spreads,
    Suggestion: suggestions,
    SuggestionApproved: _approvals,
    PositionSpread: position_spreads,
    PositionOpened: positions_opened,
    OrderSubmitted: _orders_submitted,
    ExitOrderPlaced: _exit_orders,
    OrderFilled: lambda: _fill_reports(OrderFilled),
    OrderPartiallyFilled: lambda: _fill_reports(OrderPartiallyFilled),
}
