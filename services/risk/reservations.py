"""The verdict on an approval: ``RiskReserved`` or ``RiskReservationFailed``, once.

Under the account's lock: the approval is re-checked at the order's limit credit
(`approval_inputs`, pure: the suggestion is known, a balance is known, the limit leaves
a non-negative max risk), stressed as market data says now, through the warning gate and
the broker's dry run of the very order execution will place; the verdict is published
and folded *before the lock is released*, so the next approval of the account is judged
against it: approvals decided one after another can never together exceed the budget.
(The lock is per process: an account's events are reacted to by one replica.)
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.contracts.envelope import new_event_id
from libs.contracts.errors import ErrorKind, SenexError
from libs.contracts.risk import RiskAssessment, RiskReservationFailed, RiskReserved
from libs.contracts.strategy import Suggestion, SuggestionApproved
from libs.domain.trident import TridentRisk, opening_order_request, trident_risk_at_order_price
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from services.risk.accounts import RiskAccount
from services.risk.conditions import MarketConditions
from services.risk.core import AccountRisk, DryRunVerdict, Failure, reserve
from services.risk.dry_run import BrokerDryRun
from services.risk.state import SERVICE, NoBalance, RiskState


@dataclass(frozen=True)
class ApprovalInputs:
    """What an approval is judged from: its suggestion, the account, the risk at the limit."""

    suggestion: Suggestion
    risk: AccountRisk
    at_limit: TridentRisk


def approval_inputs(account: RiskAccount, event: SuggestionApproved) -> ApprovalInputs | Failure:
    """The inputs of the approval's verdict, or why it fails before any is asked for."""
    suggestion = account.suggestions.get(event.suggestion_id)
    if suggestion is None:
        return Failure(
            ErrorKind.NOT_FOUND,
            f"suggestion {event.suggestion_id} is unknown to risk (or no longer pending)",
        )
    risk = account.risk()
    if risk is None:
        error = NoBalance(account.account_id)
        return Failure(error.kind, error.message)
    try:
        at_limit = trident_risk_at_order_price(
            suggestion.width,
            event.limit_credit,
            includes_call_spread=suggestion.includes_call_spread,
        )
    except ValueError as exc:
        return Failure(ErrorKind.VALIDATION_ERROR, str(exc))
    if at_limit.max_risk < 0:
        return Failure(
            ErrorKind.VALIDATION_ERROR,
            f"limit credit {event.limit_credit} exceeds the spread width: "
            f"max risk {at_limit.max_risk} is negative",
        )
    return ApprovalInputs(suggestion, risk, at_limit)


class Reservations:
    """Reacts to ``SuggestionApproved`` with the reservation's verdict."""

    def __init__(
        self,
        shell: ServiceShell,
        state: RiskState,
        conditions: MarketConditions,
        broker: BrokerDryRun,
    ) -> None:
        self._shell = shell
        self._state = state
        self._conditions = conditions
        self._broker = broker
        self._log = get_logger(SERVICE)

    async def decide_approval(self, event: SuggestionApproved) -> None:
        """RiskReserved or RiskReservationFailed for an approval, once, under the lock."""
        async with self._state.lock(event.account_id):
            account = self._state.account(event.account_id)
            if event.suggestion_id in account.decided:
                return  # a redelivery: answered already
            outcome = await self._verdict(account, event)
            await self._shell.publish(outcome)
        if isinstance(outcome, RiskReserved):
            self._log.info(
                "risk reserved",
                account_id=event.account_id,
                suggestion_id=str(event.suggestion_id),
                amount=str(outcome.amount),
            )
        else:
            self._log.info(
                "reservation refused",
                account_id=event.account_id,
                suggestion_id=str(event.suggestion_id),
                reason=outcome.reason.value,
                error=outcome.message,
            )

    def _failed(
        self,
        event: SuggestionApproved,
        kind: ErrorKind,
        message: str,
        assessment: RiskAssessment | None = None,
    ) -> RiskReservationFailed:
        return RiskReservationFailed(
            **self._shell.envelope(event.account_id, event.causation()),
            suggestion_id=event.suggestion_id,
            reason=kind,
            message=message,
            assessment=assessment,
        )

    async def _verdict(
        self, account: RiskAccount, event: SuggestionApproved
    ) -> RiskReserved | RiskReservationFailed:
        inputs = approval_inputs(account, event)
        if isinstance(inputs, Failure):
            return self._failed(event, inputs.kind, inputs.message)
        stressed = await self._conditions.stressed_now(inputs.suggestion, event)
        reservation = reserve(
            inputs.risk,
            account.pending(),
            event.suggestion_id,
            inputs.at_limit.max_risk,
            stressed=stressed,
            approval=event,
        )
        reservation_id = new_event_id()
        if reservation.passed:
            try:
                # The very request execution will place under this reservation.
                request = opening_order_request(
                    inputs.suggestion, event.limit_credit, reservation_id=reservation_id
                )
            except ValueError as exc:
                return self._failed(
                    event, ErrorKind.VALIDATION_ERROR, str(exc), reservation.check.assessment
                )
            try:
                result = await self._broker.dry_run(event.account_id, request)
            except SenexError as exc:
                # The broker could not judge the order: no reservation without its verdict.
                return self._failed(
                    event,
                    exc.kind,
                    f"the broker's dry run failed: {exc.message}",
                    reservation.check.assessment,
                )
            reservation = reservation.with_dry_run(DryRunVerdict.of(result))
        failure = reservation.check.failure
        if failure is not None:
            return self._failed(event, failure.kind, failure.message, reservation.check.assessment)
        return RiskReserved(
            **self._shell.envelope(event.account_id, event.causation()),
            reservation_id=reservation_id,
            suggestion_id=event.suggestion_id,
            amount=inputs.at_limit.max_risk,
            limit_credit=event.limit_credit,
            assessment=reservation.check.assessment,
        )
