"""Suspending and resuming trading of an account when the broker goes away and returns.

An unreachable broker (or credentials it refuses for good) suspends the account's
trading: ``TradingSuspended``, once. The first broker answer afterwards (a send, a
lookup, the reconciliation probe) resumes it: ``TradingResumed``, caused by the
suspension. Both are check-then-publish, so one at a time.
"""

from __future__ import annotations

import asyncio

from structlog.stdlib import BoundLogger

from libs.contracts.errors import ErrorKind, SenexError
from libs.contracts.system import TradingResumed, TradingSuspended
from services.execution.recording import Recorder
from services.execution.state import ExecutionState


def suspension_kind(kind: ErrorKind) -> ErrorKind:
    """Why trading is suspended after an error of ``kind``: refused credentials stay
    AUTH_FAILED, anything else reads as an unreachable broker."""
    return kind if kind is ErrorKind.AUTH_FAILED else ErrorKind.BROKER_UNAVAILABLE


class Suspension:
    """Publishes an account's trading suspension and its end, once each."""

    def __init__(self, state: ExecutionState, recorder: Recorder, log: BoundLogger) -> None:
        self._state = state
        self._recorder = recorder
        self._log = log
        self._lock = asyncio.Lock()
        """Suspending and resuming are check-then-publish: one at a time."""

    async def suspend(self, account: str, exc: SenexError) -> None:
        """Suspend ``account``'s trading after ``exc`` (nothing when suspended already)."""
        async with self._lock:
            if account in self._state.suspended:
                return
            kind = suspension_kind(exc.kind)
            await self._recorder.publish(
                TradingSuspended(
                    **self._recorder.envelope(account, None),
                    reason=kind,
                    message=f"trading suspended: {exc.message}",
                )
            )
        self._log.error("trading suspended", account_id=account, kind=kind.value)

    async def broker_answered(self, account: str) -> None:
        """The broker answered for ``account``: resume its trading if suspended."""
        if account not in self._state.suspended:
            return
        async with self._lock:
            suspended = self._state.suspended.get(account)
            if suspended is None:
                return
            await self._recorder.publish(
                TradingResumed(
                    **self._recorder.envelope(account, suspended.causation()),
                    message="the broker answers again; trading resumed",
                )
            )
        self._log.info("trading resumed", account_id=account)
