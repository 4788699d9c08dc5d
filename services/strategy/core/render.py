"""A decision as JSON (Decimal values as strings) and as a readable summary."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from services.strategy.core.decide import Decision, Proposal
from services.strategy.core.pricing import Credit

#: Bands are shown to 4 decimals (ROUND_HALF_EVEN); decisions use the unrounded values.
_BAND_PLACES = Decimal("0.0001")


def _band(value: Decimal) -> str:
    return str(value.quantize(_BAND_PLACES, rounding=ROUND_HALF_EVEN))


def _credit(credit: Credit) -> dict[str, str]:
    return {"natural": str(credit.natural), "mid": str(credit.mid)}


def proposal_json(p: Proposal) -> dict[str, Any]:
    """The ``suggestion`` object of the CLI's output."""
    return {
        "underlying": p.underlying,
        "expiration": p.expiration.isoformat(),
        "dte": p.dte,
        "width": str(p.width),
        "short_strike": str(p.short_strike),
        "put_long_strike": str(p.put_long_strike),
        "call_long_strike": None if p.call_long_strike is None else str(p.call_long_strike),
        "put_spread_quantity": p.put_spread_quantity,
        "call_spread_quantity": p.call_spread_quantity,
        "near_bollinger_band": p.near_bollinger_band,
        "stressed": p.stressed,
        "bollinger": {
            "upper": _band(p.bands.upper),
            "middle": _band(p.bands.middle),
            "lower": _band(p.bands.lower),
        },
        "legs": [
            {
                "symbol": str(leg.symbol),
                "action": leg.action.value,
                "quantity": leg.quantity,
                "bid": str(leg.bid),
                "ask": str(leg.ask),
                "mid": str(leg.mid),
            }
            for leg in p.legs
        ],
        "put_spread_credit": _credit(p.put_spread_credit),
        "call_spread_credit": _credit(p.call_spread_credit),
        "total_credit": _credit(p.total_credit),
        "max_profit": str(p.max_profit),
        "max_risk": str(p.max_risk),
        "required_capital": str(p.required_capital),
        "greeks": None
        if p.greeks is None
        else {
            "delta": str(p.greeks.delta),
            "gamma": str(p.greeks.gamma),
            "theta": str(p.greeks.theta),
            "vega": str(p.greeks.vega),
        },
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """The CLI's JSON output for ``decision``."""
    return {
        "decision": "suggest" if decision.proposal is not None else "no_trade",
        "reason_code": None if decision.reason_code is None else decision.reason_code.value,
        "reason": decision.reason,
        "suggestion": None if decision.proposal is None else proposal_json(decision.proposal),
    }


def decision_text(decision: Decision) -> str:
    """A readable summary: legs, credits, risk and the reason trail."""
    lines: list[str] = []
    p = decision.proposal
    if p is None:
        code = decision.reason_code.value if decision.reason_code is not None else "?"
        lines.append(f"NO TRADE ({code})")
    else:
        calls = "" if p.call_long_strike is not None else " (call spread omitted: near a band)"
        lines.append(
            f"SUGGEST {p.underlying} {p.expiration} (DTE {p.dte}), width {p.width}, "
            f"short {p.short_strike}{calls}"
        )
        lines.append("Legs:")
        for leg in p.legs:
            lines.append(
                f"  {leg.action.value:<12} {leg.quantity} x {leg.symbol}  "
                f"bid {leg.bid}  ask {leg.ask}  mid {leg.mid}"
            )
        lines.append(
            f"Credits (natural / mid, per share): put spread {p.put_spread_credit.natural} / "
            f"{p.put_spread_credit.mid}; call spread {p.call_spread_credit.natural} / "
            f"{p.call_spread_credit.mid}; total {p.total_credit.natural} / {p.total_credit.mid}"
        )
        lines.append(
            f"Risk: max profit {p.max_profit}, max risk {p.max_risk}, "
            f"required capital {p.required_capital}"
        )
        lines.append(
            f"Bollinger: lower {_band(p.bands.lower)}, middle {_band(p.bands.middle)}, "
            f"upper {_band(p.bands.upper)}; near band {p.near_bollinger_band}; "
            f"stressed {p.stressed}"
        )
        if p.greeks is None:
            lines.append("Greeks: unavailable")
        else:
            g = p.greeks
            lines.append(
                f"Greeks (position): delta {g.delta}, gamma {g.gamma}, "
                f"theta {g.theta}/day, vega {g.vega}/vol point"
            )
    lines.append("Why:")
    lines.extend(f"  - {step}" for step in decision.trail)
    return "\n".join(lines)
