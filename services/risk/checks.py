"""The risk check on a new suggestion: ``RiskCheckPassed`` or ``RiskCheckFailed``, once.

The suggestion is judged at its mid credit, stressed as the suggestion says
(`judge_suggestion`, pure); the verdict is published under the account's lock, and a
suggestion already checked (a redelivery) publishes nothing.
"""

from __future__ import annotations

from libs.contracts.errors import ErrorKind
from libs.contracts.risk import RiskCheckFailed, RiskCheckPassed
from libs.contracts.strategy import Suggestion, SuggestionGenerated
from libs.runtime.following import ServiceShell
from libs.runtime.log import get_logger
from services.risk.accounts import RiskAccount
from services.risk.core import Budget, Failure, RiskCheck, check
from services.risk.state import SERVICE, NoBalance, RiskState


def judge_suggestion(account: RiskAccount, suggestion: Suggestion) -> RiskCheck | Failure:
    """The check of ``suggestion`` against the account's budget, or, when it cannot be
    assessed at all (no balance known, a negative max risk), the bare failure."""
    risk = account.risk()
    if risk is None:
        error = NoBalance(account.account_id)
        return Failure(error.kind, error.message)
    if suggestion.max_risk < 0:
        return Failure(
            ErrorKind.VALIDATION_ERROR,
            f"the suggestion's max risk {suggestion.max_risk} is negative",
        )
    budget = Budget(risk, stressed=suggestion.stressed, reserved_risk=account.usage.reserved_risk)
    return check(budget, suggestion.max_risk)


class SuggestionChecks:
    """Reacts to ``SuggestionGenerated`` with the suggestion's risk check."""

    def __init__(self, shell: ServiceShell, state: RiskState) -> None:
        self._shell = shell
        self._state = state
        self._log = get_logger(SERVICE)

    async def check_suggestion(self, event: SuggestionGenerated) -> None:
        """RiskCheckPassed or RiskCheckFailed for a new suggestion, once."""
        suggestion_id = event.suggestion.suggestion_id
        async with self._state.lock(event.account_id):
            account = self._state.account(event.account_id)
            if suggestion_id in account.checked:
                return
            verdict = judge_suggestion(account, event.suggestion)
            envelope = self._shell.envelope(event.account_id, event.causation())
            outcome: RiskCheckPassed | RiskCheckFailed
            if isinstance(verdict, Failure):
                outcome = RiskCheckFailed(
                    **envelope,
                    suggestion_id=suggestion_id,
                    reason=verdict.kind,
                    message=verdict.message,
                    assessment=None,
                )
            elif verdict.failure is None:
                outcome = RiskCheckPassed(
                    **envelope, suggestion_id=suggestion_id, assessment=verdict.assessment
                )
            else:
                outcome = RiskCheckFailed(
                    **envelope,
                    suggestion_id=suggestion_id,
                    reason=verdict.failure.kind,
                    message=verdict.failure.message,
                    assessment=verdict.assessment,
                )
            await self._shell.publish(outcome)
        self._log.info(
            "risk check",
            account_id=event.account_id,
            suggestion_id=str(suggestion_id),
            outcome=outcome.type,
        )
