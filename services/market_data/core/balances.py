"""When a broker balance is worth a `BalanceUpdated`: only when its figures changed.

Balances are polled every 30 s and pushed by the account streamer; writing an identical
event to the permanent log every 30 s per account would bury the real changes (and grow
the log by ~780 events a day per account for nothing). So an event is published the
first time an account's balances are seen (per process start) and then only when one of
the figures differs from the last published ones. The broker's ``updated_at`` is not a
figure: it moves on every poll even when nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from libs.broker.models import Balances


@dataclass(frozen=True)
class BalanceFigures:
    """The figures a `BalanceUpdated` carries, without the broker's timestamp."""

    derivative_buying_power: Decimal
    net_liquidating_value: Decimal
    cash_balance: Decimal
    equity_buying_power: Decimal | None
    maintenance_requirement: Decimal | None

    @classmethod
    def of(cls, balances: Balances) -> BalanceFigures:
        """The figures of a broker report."""
        return cls(
            derivative_buying_power=balances.derivative_buying_power,
            net_liquidating_value=balances.net_liquidating_value,
            cash_balance=balances.cash_balance,
            equity_buying_power=balances.equity_buying_power,
            maintenance_requirement=balances.maintenance_requirement,
        )


class BalanceChanges:
    """The last published figures per account."""

    def __init__(self) -> None:
        self._last: dict[str, BalanceFigures] = {}

    def should_publish(self, account: str, figures: BalanceFigures) -> bool:
        """Whether ``figures`` differ from the last published for ``account``.

        Decimal equality is numeric, so ``100.0`` and ``100.00`` count as the same.
        """
        return self._last.get(account) != figures

    def published(self, account: str, figures: BalanceFigures) -> None:
        """Record that ``figures`` were published for ``account``."""
        self._last[account] = figures

    def forget(self, account: str) -> None:
        """Drop an account that is no longer linked."""
        self._last.pop(account, None)
