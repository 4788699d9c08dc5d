"""Trading suspended once when the broker goes away, resumed once when it answers."""

from __future__ import annotations

from libs.contracts.errors import AuthFailed, BrokerTimeout, BrokerUnavailable, ErrorKind
from libs.contracts.system import TradingResumed, TradingSuspended
from services.execution.suspension import suspension_kind
from tests.unit.execution.fakes import ACCOUNT, Execution


def test_refused_credentials_stay_auth_failed_anything_else_is_unavailable() -> None:
    assert suspension_kind(ErrorKind.AUTH_FAILED) is ErrorKind.AUTH_FAILED
    assert suspension_kind(ErrorKind.BROKER_UNAVAILABLE) is ErrorKind.BROKER_UNAVAILABLE
    assert suspension_kind(ErrorKind.BROKER_TIMEOUT) is ErrorKind.BROKER_UNAVAILABLE


async def test_an_account_is_suspended_once_and_resumed_once() -> None:
    execution = Execution()
    suspension = execution.suspension
    await suspension.broker_answered(ACCOUNT)  # not suspended: nothing to say
    await suspension.suspend(ACCOUNT, BrokerUnavailable("connection refused"))
    await suspension.suspend(ACCOUNT, BrokerTimeout("still away"))
    (suspended,) = execution.of(TradingSuspended)
    assert suspended.reason is ErrorKind.BROKER_UNAVAILABLE
    assert suspended.message == "trading suspended: connection refused"
    assert ACCOUNT in execution.state.suspended
    await suspension.broker_answered(ACCOUNT)
    await suspension.broker_answered(ACCOUNT)
    (resumed,) = execution.of(TradingResumed)
    assert resumed.causation_id == suspended.event_id
    assert resumed.correlation_id == suspended.correlation_id
    assert ACCOUNT not in execution.state.suspended


async def test_refused_credentials_suspend_as_auth_failed() -> None:
    execution = Execution()
    await execution.suspension.suspend(ACCOUNT, AuthFailed("refresh token revoked"))
    (suspended,) = execution.of(TradingSuspended)
    assert suspended.reason is ErrorKind.AUTH_FAILED
