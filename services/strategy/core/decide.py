"""The ordered checks that turn a snapshot into a decision (DOMAIN.md 2.6).

Order: position limit, expiration and strikes, overlap, then pricing (which refuses a
trade whose total mid credit is not positive: NO_CREDIT). Each check adds a
line to the reason trail, so a "no trade" says why and a suggestion says how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from libs.contracts.execution import OrderAction
from libs.contracts.market import BollingerBands, Greeks
from libs.contracts.strategy import SkipReason
from libs.contracts.symbols import OccSymbol, OptionType
from libs.domain.trident import trident_risk
from libs.indicators.bands import (
    StressDetector,
    band_position,
    bollinger,
    price_at_or_below_lower_band,
)
from services.strategy.core.pricing import (
    Credit,
    PricedLeg,
    position_greeks,
    total_credit,
)
from services.strategy.core.snapshot import ChainExpiration, OpenPosition, Snapshot
from services.strategy.core.strikes import (
    StrikeChoice,
    base_strike,
    candidate_expirations,
    choose_strikes,
    days_to_expiration,
    new_york_date,
    spread_width,
)

#: Open app-managed positions allowed at once (DOMAIN.md 2.6, system-controlled).
POSITION_LIMIT = 30
#: Static risk-free rate when neither the broker nor the snapshot gives one (DOMAIN.md 3).
DEFAULT_RISK_FREE_RATE = Decimal("0.045")
PUT_SPREAD_QUANTITY = 2
CALL_SPREAD_QUANTITY = 1


@dataclass(frozen=True, slots=True)
class Proposal:
    """A Senex Trident the core would suggest (credits per share, risk in dollars)."""

    underlying: str
    expiration: date
    dte: int
    width: Decimal
    base_strike: Decimal
    short_strike: Decimal
    put_long_strike: Decimal
    call_long_strike: Decimal | None
    """None when the call spread is omitted (near a band)."""
    put_spread_quantity: int
    call_spread_quantity: int
    near_bollinger_band: bool
    stressed: bool
    bands: BollingerBands
    tradeable_capital: Decimal
    legs: tuple[PricedLeg, ...]
    put_spread_credit: Credit
    call_spread_credit: Credit
    total_credit: Credit
    max_profit: Decimal
    max_risk: Decimal
    required_capital: Decimal
    greeks: Greeks | None
    """None when an option's IV cannot be implied from its mid."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A suggestion, or a reasoned no trade; ``trail`` lists each check's outcome."""

    reason_code: SkipReason | None
    trail: tuple[str, ...]
    proposal: Proposal | None = None
    expiration: date | None = None
    """The expiration considered, when one was chosen."""

    @property
    def suggests(self) -> bool:
        """Whether a trade is suggested."""
        return self.proposal is not None

    @property
    def reason(self) -> str:
        """The trail as one sentence list."""
        return "; ".join(self.trail)


def _conflicts(
    positions: tuple[OpenPosition, ...], underlying: str, choice: StrikeChoice
) -> list[str]:
    """Overlaps with open spreads of the same underlying, expiration and type (2.5)."""
    proposed: list[tuple[str, Decimal, Decimal]] = [
        ("put", choice.short_strike, choice.put_long_strike)
    ]
    if choice.call_long_strike is not None:
        proposed.append(("call", choice.short_strike, choice.call_long_strike))
    found: list[str] = []
    for position in positions:
        if position.underlying != underlying or position.expiration != choice.expiration:
            continue
        for spread in position.spreads:
            for kind, short, long in proposed:
                if spread.type != kind:
                    continue
                existing = f"open {kind} spread {spread.short}/{spread.long}"
                if short == spread.long:
                    found.append(f"proposed short {kind} {short} = long strike of {existing}")
                if long == spread.short:
                    found.append(f"proposed long {kind} {long} = short strike of {existing}")
    return found


def _legs(snapshot: Snapshot, chain: ChainExpiration, choice: StrikeChoice) -> list[PricedLeg]:
    plan: list[tuple[Decimal, OptionType, OrderAction, int]] = [
        (choice.short_strike, OptionType.PUT, OrderAction.SELL_TO_OPEN, PUT_SPREAD_QUANTITY),
        (choice.put_long_strike, OptionType.PUT, OrderAction.BUY_TO_OPEN, PUT_SPREAD_QUANTITY),
    ]
    if choice.call_long_strike is not None:
        plan += [
            (choice.short_strike, OptionType.CALL, OrderAction.SELL_TO_OPEN, CALL_SPREAD_QUANTITY),
            (
                choice.call_long_strike,
                OptionType.CALL,
                OrderAction.BUY_TO_OPEN,
                CALL_SPREAD_QUANTITY,
            ),
        ]
    legs: list[PricedLeg] = []
    for strike, option_type, action, quantity in plan:
        row = chain.row(strike)
        quote = None if row is None else (row.call if option_type is OptionType.CALL else row.put)
        if quote is None:  # choose_strikes checked every leg; unreachable
            raise AssertionError(f"{strike} {option_type} has no quote")
        symbol = OccSymbol.build(snapshot.underlying, chain.expiration, option_type, strike)
        legs.append(PricedLeg(symbol, action, quantity, quote.bid, quote.ask))
    return legs


def decide(
    snapshot: Snapshot,
    *,
    risk_free_rate: Decimal = DEFAULT_RISK_FREE_RATE,
    stress_detector: StressDetector = price_at_or_below_lower_band,
) -> Decision:
    """What the strategy would do now, from ``snapshot`` alone (DOMAIN.md 1-3).

    ``risk_free_rate`` applies unless the snapshot carries its own.
    """
    trail: list[str] = []
    positions = snapshot.account.positions

    # 1. Position limit.
    if len(positions) >= POSITION_LIMIT:
        trail.append(f"{len(positions)} open app-managed positions: the limit is {POSITION_LIMIT}")
        return Decision(SkipReason.POSITION_LIMIT, tuple(trail))
    trail.append(f"position limit: {len(positions)} of {POSITION_LIMIT} open")

    # Market condition and sizing: inputs to the strike checks.
    price = snapshot.price
    bands = bollinger(snapshot.daily_closes, price)
    position = band_position(price, bands)
    near_band = price >= bands.upper or price <= bands.lower
    stressed = stress_detector(price, bands)
    include_calls = not near_band
    capital = snapshot.account.tradeable_capital
    width = spread_width(capital)
    base = base_strike(price)
    trail.append(f"price {price} -> base strike {base}")
    trail.append(f"tradeable capital {capital} -> width {width}")
    if near_band:
        trail.append(
            f"price {price} {position.value.lower().replace('_', ' ')} band "
            f"(lower {bands.lower:.4f}, upper {bands.upper:.4f}): call spread omitted"
        )
    if stressed:
        trail.append("stressed market: price at or below the lower band")

    # 2. Expiration and strikes.
    today = new_york_date(snapshot.as_of)
    chains = {c.expiration: c for c in snapshot.chain}
    candidates = candidate_expirations(chains, today)
    if not candidates:
        trail.append(f"no expiration with 30 <= DTE <= 50 from {today}")
        return Decision(SkipReason.NO_EXPIRATION, tuple(trail))
    choice: StrikeChoice | None = None
    for expiration in candidates:
        outcome = choose_strikes(chains[expiration], base, width, include_calls)
        dte = days_to_expiration(today, expiration)
        if isinstance(outcome, StrikeChoice):
            choice = outcome
            trail.append(
                f"expiration {expiration} (DTE {dte}): short strike {outcome.short_strike}"
            )
            break
        trail.append(f"expiration {expiration} (DTE {dte}) skipped: {outcome}")
    if choice is None:
        return Decision(SkipReason.STRIKE_NOT_FOUND, tuple(trail))

    # 3. Overlap, on the chosen expiration only.
    conflicts = _conflicts(positions, snapshot.underlying, choice)
    if conflicts:
        trail.extend(conflicts)
        return Decision(SkipReason.CONFLICTING_POSITION, tuple(trail), expiration=choice.expiration)
    trail.append("no conflict with open spreads")

    # 4. Pricing.
    chain = chains[choice.expiration]
    legs = _legs(snapshot, chain, choice)
    put_credit = Credit.of_spread(legs[0], legs[1])
    call_credit = Credit.of_spread(legs[2], legs[3]) if include_calls else Credit.zero()
    total = total_credit(put_credit, call_credit)
    figures = trident_risk(width, total.mid)
    dte = days_to_expiration(today, choice.expiration)
    rate = snapshot.risk_free_rate if snapshot.risk_free_rate is not None else risk_free_rate
    greeks = position_greeks(legs, price, dte, rate)
    if total.mid <= 0:
        # Not a DOMAIN.md rule: the owner's choice, a careful trader does not pay to open
        # a credit trade. Last check, after pricing.
        trail.append(f"total mid credit {total.mid} is not positive: no credit to collect")
        return Decision(SkipReason.NO_CREDIT, tuple(trail), expiration=choice.expiration)
    trail.append(
        f"total credit {total.mid} mid, {total.natural} natural; max risk {figures.max_risk}"
    )
    if greeks is None:
        trail.append("greeks unavailable: IV could not be implied from a leg's mid")
    proposal = Proposal(
        underlying=snapshot.underlying,
        expiration=choice.expiration,
        dte=dte,
        width=width,
        base_strike=base,
        short_strike=choice.short_strike,
        put_long_strike=choice.put_long_strike,
        call_long_strike=choice.call_long_strike,
        put_spread_quantity=PUT_SPREAD_QUANTITY,
        call_spread_quantity=CALL_SPREAD_QUANTITY if include_calls else 0,
        near_bollinger_band=near_band,
        stressed=stressed,
        bands=bands,
        tradeable_capital=capital,
        legs=tuple(legs),
        put_spread_credit=put_credit,
        call_spread_credit=call_credit,
        total_credit=total,
        max_profit=figures.max_profit,
        max_risk=figures.max_risk,
        required_capital=figures.required_capital,
        greeks=greeks,
    )
    return Decision(None, tuple(trail), proposal=proposal, expiration=choice.expiration)
