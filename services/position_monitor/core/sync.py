"""Broker sync: compare the app's open positions with what the broker holds (DOMAIN.md 4, 7).

The broker is the source of truth, and the local state is never edited to match it:
the diff only names what needs a human. It never proposes an order or any other change
at the broker, and it adopts nothing the app did not open.

Positions can share option symbols (two Tridents on the same strikes and expiration),
and the broker reports one net quantity per symbol. So quantities are compared per
symbol against the sum the app expects; a position whose symbols the broker no longer
holds at all is gone (closed externally); one with any symbol whose total differs is a
mismatch. When two positions share a symbol and the total is off, neither can be
blamed alone: both are flagged as mismatched and neither is marked gone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from libs.contracts.positions import AttentionReason, HeldLeg, PositionSpread
from libs.contracts.symbols import OccSymbol


@dataclass(frozen=True, slots=True)
class AppPosition:
    """An open position as the app expects the broker to hold it."""

    position_id: UUID
    underlying: str
    legs: Mapping[str, int]
    """OCC symbol -> signed quantity (short < 0); zeros are ignored."""

    @classmethod
    def of_spreads(
        cls, position_id: UUID, underlying: str, spreads: Sequence[PositionSpread]
    ) -> AppPosition:
        """From the open spreads: short -quantity, long +quantity, summed per symbol
        (the two put spreads share their symbols).
        """
        legs: dict[str, int] = defaultdict(int)
        for spread in spreads:
            legs[spread.short_symbol] -= spread.quantity
            legs[spread.long_symbol] += spread.quantity
        return cls(position_id, underlying, dict(legs))

    @classmethod
    def of_held_legs(
        cls, position_id: UUID, underlying: str, held: Sequence[HeldLeg]
    ) -> AppPosition:
        """From what a flagged (unmanaged) position was last seen holding."""
        legs: dict[str, int] = defaultdict(int)
        for leg in held:
            legs[leg.symbol] += leg.quantity
        return cls(position_id, underlying, dict(legs))


@dataclass(frozen=True, slots=True)
class LegDifference:
    """One symbol whose broker total differs from what the app's positions add up to."""

    symbol: str
    expected: int
    held: int


@dataclass(frozen=True, slots=True)
class SyncFinding:
    """One position that needs attention after the sync."""

    position_id: UUID
    underlying: str
    reason: AttentionReason
    """GONE_AT_BROKER or BROKER_MISMATCH."""
    message: str
    active: bool
    """False when the position is gone at the broker (mark it inactive)."""
    held_legs: tuple[HeldLeg, ...]
    """What the broker holds of the position's symbols (empty when gone)."""
    differences: tuple[LegDifference, ...] = ()


@dataclass(frozen=True, slots=True)
class Unowned:
    """A broker holding no app position accounts for: reported, never adopted."""

    symbol: str
    quantity: int


@dataclass(frozen=True, slots=True)
class BrokerSyncDiff:
    """What the sync found; empty when the broker agrees with the app."""

    findings: tuple[SyncFinding, ...] = ()
    unowned: tuple[Unowned, ...] = field(default=())

    @property
    def in_sync(self) -> bool:
        """Nothing to flag or report."""
        return not self.findings and not self.unowned


def _held_legs(symbols: Sequence[str], broker: Mapping[str, int]) -> tuple[HeldLeg, ...]:
    return tuple(
        HeldLeg(symbol=OccSymbol(symbol), quantity=broker[symbol])
        for symbol in symbols
        if broker.get(symbol, 0) != 0
    )


def _describe(differences: Sequence[LegDifference]) -> str:
    return "; ".join(
        f"{d.symbol.strip()}: expected {d.expected:+d}, broker holds {d.held:+d}"
        for d in differences
    )


def diff_broker_positions(
    positions: Sequence[AppPosition], broker: Mapping[str, int]
) -> BrokerSyncDiff:
    """Compare ``positions`` (the app's active open ones) with ``broker`` (symbol -> net
    signed quantity, as the broker reports it).

    Findings come in the order of ``positions``; unowned holdings in symbol order.
    """
    expected: dict[str, int] = defaultdict(int)
    for position in positions:
        for symbol, quantity in position.legs.items():
            if quantity != 0:
                expected[symbol] += quantity
    findings: list[SyncFinding] = []
    for position in positions:
        symbols = sorted(s for s, q in position.legs.items() if q != 0)
        if not symbols:
            continue
        held = _held_legs(symbols, broker)
        if not held:
            findings.append(
                SyncFinding(
                    position_id=position.position_id,
                    underlying=position.underlying,
                    reason=AttentionReason.GONE_AT_BROKER,
                    message=(
                        f"{position.underlying} position is no longer held at the broker "
                        "(closed outside the app); marked inactive"
                    ),
                    active=False,
                    held_legs=(),
                )
            )
            continue
        differences = tuple(
            LegDifference(symbol, expected.get(symbol, 0), broker.get(symbol, 0))
            for symbol in symbols
            if broker.get(symbol, 0) != expected.get(symbol, 0)
        )
        if differences:
            findings.append(
                SyncFinding(
                    position_id=position.position_id,
                    underlying=position.underlying,
                    reason=AttentionReason.BROKER_MISMATCH,
                    message=(
                        f"{position.underlying} position differs from the broker: "
                        f"{_describe(differences)}"
                    ),
                    active=True,
                    held_legs=held,
                    differences=differences,
                )
            )
    unowned = tuple(
        Unowned(symbol, quantity)
        for symbol, quantity in sorted(broker.items())
        if quantity != 0 and symbol not in expected
    )
    return BrokerSyncDiff(findings=tuple(findings), unowned=unowned)


def is_new_finding(
    finding: SyncFinding,
    current_reason: AttentionReason | None,
    current_held: Sequence[HeldLeg],
) -> bool:
    """Whether ``finding`` says something the position's current flag does not.

    The sync runs every few minutes; re-flagging the same state each time would repeat
    the e-mail. A changed reason or changed broker holdings is news.
    """
    return finding.reason is not current_reason or tuple(finding.held_legs) != tuple(current_held)
