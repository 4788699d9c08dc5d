"""Generation: decide from live data, then publish the suggestion or the "no trade".

The decision itself is the pure core's (`services.strategy.core.decide`); `skip_reason`
and `skip_details` are the pure choices around it: whether a decision is a no trade (and
why), and what the ``SuggestionSkipped`` event's details say.
"""

from __future__ import annotations

from datetime import date

from libs.contracts.commands import GenerateSuggestion, SuggestionReply
from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ERROR_CLASSES, ErrorKind, SenexError
from libs.contracts.strategy import SkipReason, SuggestionGenerated, SuggestionSkipped
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from services.strategy.core import Decision, Snapshot, decide
from services.strategy.inputs import chain_quotes, skip_message, suggestion_of
from services.strategy.market import MarketInputs
from services.strategy.queries import view
from services.strategy.state import SERVICE, StrategyState


def skip_reason(decision: Decision) -> SkipReason | None:
    """Why ``decision`` is a no trade; None when it proposes a trade to publish.

    A decision without a proposal and without a reason (which the core should not
    make) is reported as STRIKE_NOT_FOUND rather than published half-made.
    """
    if decision.proposal is None or decision.reason_code is not None:
        return decision.reason_code or SkipReason.STRIKE_NOT_FOUND
    return None


def skip_details(underlying: str, expiration: date | None) -> dict[str, str]:
    """The details of a ``SuggestionSkipped``: the underlying and, if chosen, the expiration."""
    details = {"underlying": underlying}
    if expiration is not None:
        details["expiration"] = expiration.isoformat()
    return details


class Generation:
    """The ``generate_suggestion`` command (the automation's too)."""

    def __init__(self, shell: ServiceShell, state: StrategyState, inputs: MarketInputs) -> None:
        self._shell = shell
        self._state = state
        self._inputs = inputs
        self._log = get_logger(SERVICE)

    async def generate(self, command: GenerateSuggestion) -> SuggestionReply:
        """Decide from live data; publish SuggestionGenerated, or SuggestionSkipped + error."""
        try:
            snapshot_json, market = await self._inputs.snapshot(command)
        except SenexError as exc:
            if exc.kind is ErrorKind.MARKET_DATA_STALE:
                await self._skip(command, SkipReason.MARKET_DATA_STALE, exc.message, (), None)
            raise
        now = self._shell.clock.now()
        decision = decide(Snapshot.model_validate(snapshot_json))
        code = skip_reason(decision)
        if code is not None:
            message = skip_message(command.underlying.value, decision)
            await self._skip(command, code, message, decision.trail, decision.expiration)
            raise ERROR_CLASSES[code.error_kind](
                message, details={"underlying": command.underlying.value}
            )
        suggestion = suggestion_of(
            decision,
            suggestion_id=new_event_id(),
            now=now,
            condition=market.condition,
            quotes=chain_quotes(market.chain),
        )
        await self._shell.publish(
            SuggestionGenerated(
                **self._shell.envelope(command.account_id, command.causation()),
                suggestion=suggestion,
                automatic=command.automatic,
                reason_trail=decision.trail,
                risk_free_rate=market.condition.risk_free_rate,
            )
        )
        self._log.info(
            "suggestion generated",
            account_id=command.account_id,
            suggestion_id=str(suggestion.suggestion_id),
            automatic=command.automatic,
        )
        record = self._state.record(command.account_id, suggestion.suggestion_id)
        return SuggestionReply(suggestion=view(record))

    async def _skip(
        self,
        command: GenerateSuggestion,
        code: SkipReason,
        message: str,
        trail: tuple[str, ...],
        expiration: date | None,
    ) -> None:
        await self._shell.publish(
            SuggestionSkipped(
                **self._shell.envelope(command.account_id, command.causation()),
                underlying=command.underlying.value,
                reason_code=code,
                message=message,
                expiration=expiration,
                details=skip_details(command.underlying.value, expiration),
                automatic=command.automatic,
                reason_trail=trail,
            )
        )
        self._log.info(
            "no trade",
            account_id=command.account_id,
            underlying=command.underlying.value,
            reason_code=code.value,
        )
