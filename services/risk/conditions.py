"""Market conditions: whether each underlying is stressed, as market data says.

`MarketConditions` keeps the latest stress verdict per underlying for the budget view:
seeded at start from the market stream's last ``MarketConditionChanged`` of each
configured underlying, then followed live on the bus (only the newest matters). An
approval asks market data afresh (`stressed_now`); without an answer it is judged
unstressed, the lower tolerance, so the failure can only make the check stricter.
"""

from __future__ import annotations

from collections.abc import Mapping

from libs.contracts.base import Underlying
from libs.contracts.commands import GetMarketCondition, MarketConditionReply
from libs.contracts.errors import SenexError
from libs.contracts.market import MarketConditionChanged
from libs.contracts.registry import parse_event
from libs.contracts.strategy import Suggestion, SuggestionApproved
from libs.contracts.subjects import market_subject
from libs.runtime.bus import MARKET_STREAM
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from services.risk.settings import RiskSettings
from services.risk.state import SERVICE

#: The subject of one underlying's condition changes (``"*"``: every underlying's).
CONDITION = MarketConditionChanged.__name__


def stress_verdict(data: bytes) -> tuple[str, bool] | None:
    """``(symbol, stressed)`` of a market message; None when it is another event.

    Raises `SenexError` when the message cannot be read as an event.
    """
    event = parse_event(data)
    if isinstance(event, MarketConditionChanged):
        return event.symbol, event.stressed
    return None


def stressed_symbols(verdicts: Mapping[str, bool]) -> tuple[str, ...]:
    """The symbols judged stressed, sorted."""
    return tuple(sorted(symbol for symbol, stressed in verdicts.items() if stressed))


class MarketConditions:
    """The latest stress verdict per underlying, and market data's verdict on demand."""

    def __init__(self, shell: ServiceShell, settings: RiskSettings) -> None:
        self._shell = shell
        self._settings = settings
        self._stressed: dict[str, bool] = {}
        self._log = get_logger(SERVICE)

    async def follow(self) -> None:
        """Seed from the market stream's last condition of each underlying, then follow."""
        bus = self._shell.bus
        for symbol in self._settings.underlyings:
            data = await bus.last_message(MARKET_STREAM, market_subject(symbol, CONDITION))
            if data is not None:  # None: none in the stream's window yet
                self.on_condition(data)

        async def on_message(_subject: str, data: bytes) -> None:
            self.on_condition(data)

        await bus.subscribe(market_subject("*", CONDITION), on_message)

    def on_condition(self, data: bytes) -> None:
        """Keep the verdict of a ``MarketConditionChanged`` (anything else is passed over)."""
        try:
            verdict = stress_verdict(data)
        except SenexError as exc:
            self._log.warning("unreadable market condition skipped", error=exc.message)
            return
        if verdict is not None:
            symbol, stressed = verdict
            self._stressed[symbol] = stressed

    def stressed_underlyings(self) -> tuple[str, ...]:
        """Underlyings market data last judged stressed."""
        return stressed_symbols(self._stressed)

    async def stressed_now(self, suggestion: Suggestion, cause: SuggestionApproved) -> bool:
        """Whether the underlying is stressed now, as market data says.

        Without an answer: not stressed, the lower tolerance, so the failure can only make
        the check stricter (fail safe).
        """
        try:
            underlying = Underlying(suggestion.underlying)
        except ValueError:
            self._log.warning(
                "no market condition for this underlying; unstressed tolerance",
                underlying=suggestion.underlying,
            )
            return False
        command = GetMarketCondition(
            account_id=cause.account_id, underlying=underlying, correlation_id=cause.correlation_id
        )
        try:
            reply = await self._shell.bus.request(
                command, MarketConditionReply, timeout=self._settings.market_condition_timeout_s
            )
        except SenexError as exc:
            self._log.warning(
                "market condition unavailable; checking with the unstressed tolerance",
                underlying=suggestion.underlying,
                kind=exc.kind.value,
                error=exc.message,
            )
            return False
        self._stressed[reply.underlying.value] = reply.stressed
        return reply.stressed
