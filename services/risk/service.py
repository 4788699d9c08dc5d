"""The risk service's shell: checks, reservations, releases and the risk-budget query.

State is `services.risk.accounts.RiskBook` (template, balance, `RiskUsage`, suggestions,
opening orders per account), rebuilt at start by a `Follower` and kept live by it. The
verdicts come from the pure core (`services.risk.core`); this module only gathers their
inputs (market data's stress, the broker's dry run) and publishes what they decide.

Reactions (live events only; the follower never re-enacts history):

- ``SuggestionGenerated`` -> ``RiskCheckPassed`` / ``RiskCheckFailed`` at the mid credit,
  stressed as the suggestion says.
- ``SuggestionApproved`` -> under the account's lock: re-check at the order's limit
  credit (stressed as market data says now), the warning gate, the broker's dry run,
  then ``RiskReserved`` / ``RiskReservationFailed``. The verdict is folded into the state
  *before the lock is released*, so the next approval of the account is judged against
  it: approvals decided one after another can never together exceed the budget. (The
  lock is per process: an account's events must be handled by one replica.)
- An opening order's end or ``PositionOpened`` -> ``RiskReleased`` (`release_due`).

Every reaction first looks at the state (already checked? already decided? still
pending?), so a redelivered event publishes nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

import nats.js.errors
from nats.aio.msg import Msg

from libs.broker.adapter import BrokerAdapter
from libs.broker.credentials import VaultCredentials
from libs.broker.models import DryRunResult
from libs.broker.settings import BrokerSettings
from libs.broker.vault import CredentialsVault
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    GetMarketCondition,
    GetRiskBudget,
    MarketConditionReply,
    RiskBudgetReply,
)
from libs.contracts.envelope import Event, new_event_id
from libs.contracts.errors import ErrorKind, SenexError, ServiceUnavailable
from libs.contracts.execution import OrderCancelled, OrderExpired, OrderRejected
from libs.contracts.market import MarketConditionChanged
from libs.contracts.positions import PositionOpened
from libs.contracts.registry import parse_event
from libs.contracts.risk import (
    RiskAssessment,
    RiskCheckFailed,
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
)
from libs.contracts.strategy import (
    Suggestion,
    SuggestionApproved,
    SuggestionExpired,
    SuggestionGenerated,
    SuggestionRejected,
)
from libs.contracts.subjects import market_subject
from libs.domain.orders import OrderRequest
from libs.domain.trident import opening_order_request, trident_risk_at_order_price
from libs.runtime.bus import MARKET_STREAM
from libs.runtime.clock import Clock
from libs.runtime.following import FollowingService
from libs.runtime.runner import ServiceContext
from services.risk import accounts
from services.risk.accounts import RiskAccount, RiskBook
from services.risk.core import (
    Budget,
    DryRunVerdict,
    budget_view,
    check,
    reserve,
)
from services.risk.metrics import RiskBudgetCollector
from services.risk.settings import RiskSettings

SERVICE = "risk"

_RELEASING = (
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PositionOpened,
    SuggestionRejected,
    SuggestionExpired,
)


class NoBalance(ServiceUnavailable):
    """No broker balance is known for the account yet, so there is no budget to judge by.

    SERVICE_UNAVAILABLE (market data has not delivered the balance) rather than
    INSUFFICIENT_BUYING_POWER: the user should retry shortly, not think they lack funds.
    """

    def __init__(self, account_id: str) -> None:
        super().__init__(
            f"no broker balance known for account {account_id} yet, so no risk budget: "
            "market data publishes balances every 30 s; try again shortly",
            details={"account_id": account_id},
        )


class RiskService(FollowingService):
    """Risk budget, pre-trade checks, reservations and releases."""

    name = SERVICE

    def __init__(
        self,
        *,
        settings: RiskSettings | None = None,
        broker_settings: BrokerSettings | None = None,
        clock: Clock | None = None,
        durable: str = SERVICE,
    ) -> None:
        """Settings default to the environment (``SENEX_RISK_*``, ``SENEX_BROKER_*``)."""
        super().__init__(SERVICE, clock=clock, durable=durable)
        self._settings_given = settings
        self._broker_settings_given = broker_settings
        self._book = RiskBook()
        self._locks: dict[str, asyncio.Lock] = {}
        self._stressed: dict[str, bool] = {}
        """The latest MarketConditionChanged's verdict per underlying (budget view)."""
        self._adapter: BrokerAdapter | None = None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def book(self) -> RiskBook:
        """Every account's state."""
        return self._book

    def account(self, account_id: str) -> RiskAccount:
        """What the service knows of ``account_id``."""
        return self._book.get(account_id)

    async def start(self, ctx: ServiceContext) -> None:
        self._settings = self._settings_given or RiskSettings()
        broker_settings = self._broker_settings_given or BrokerSettings()
        await self.connect(ctx)
        ctx.metrics.registry.register(RiskBudgetCollector(SERVICE, lambda: self._book))
        vault = await CredentialsVault.open(ctx.settings.database_url, broker_settings)
        self._adapter = BrokerAdapter(broker_settings, VaultCredentials(vault, broker_settings))
        await self._follow_market_conditions()
        await self.follow(self._apply, self._react)
        await self.serve({GetRiskBudget.VERB: self.get_risk_budget})

    async def stop(self) -> None:
        await self.stop_following()  # no reaction may reach the broker once it is closed
        if self._adapter is not None:
            await self._adapter.aclose()
        await self.disconnect()

    # --- state ----------------------------------------------------------------------

    def _apply(self, event: Event) -> None:
        """Fold one event (pure apart from the assignment)."""
        self._book = accounts.apply(self._book, event)

    async def _emit(self, event: Event) -> None:
        """Publish, then fold at once: the next decision must see this one."""
        await self.bus.publish(event)
        self._apply(event)

    def _envelope(self, cause: Event) -> dict[str, Any]:
        assert cause.account_id is not None
        return {
            "occurred_at": self.clock.now(),
            "producer": SERVICE,
            "account_id": cause.account_id,
            **cause.causation(),
        }

    def _lock(self, account_id: str) -> asyncio.Lock:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        return lock

    async def _react(self, event: Event) -> None:
        if isinstance(event, SuggestionGenerated):
            await self.check_suggestion(event)
        elif isinstance(event, SuggestionApproved):
            await self.decide_approval(event)
        elif isinstance(event, _RELEASING):
            await self.release_if_due(event)

    # --- market condition -----------------------------------------------------------

    async def _follow_market_conditions(self) -> None:
        """Keep the latest stress verdict per underlying for the budget view.

        Seeded from the market stream's last MarketConditionChanged of each underlying,
        then followed live (core NATS: only the newest matters).
        """
        for symbol in self._settings.underlyings:
            subject = market_subject(symbol, MarketConditionChanged.__name__)
            try:
                raw = await self.bus.js.get_last_msg(MARKET_STREAM.name, subject)
            except nats.js.errors.NotFoundError:
                continue  # none in the stream's window yet
            self._on_condition(raw.data or b"")

        async def on_message(msg: Msg) -> None:
            self._on_condition(msg.data)

        subject = market_subject("*", MarketConditionChanged.__name__)
        self.bus.subscriptions.append(await self.bus.nc.subscribe(subject, cb=on_message))

    def _on_condition(self, data: bytes) -> None:
        try:
            event = parse_event(data)
        except SenexError as exc:
            self._log.warning("unreadable market condition skipped", error=exc.message)
            return
        if isinstance(event, MarketConditionChanged):
            self._stressed[event.symbol] = event.stressed

    async def _stressed_now(self, suggestion: Suggestion, cause: SuggestionApproved) -> bool:
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
            reply = await self.bus.request(
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

    # --- the check on a suggestion ------------------------------------------------------

    async def check_suggestion(self, event: SuggestionGenerated) -> None:
        """RiskCheckPassed or RiskCheckFailed for a new suggestion, once."""
        suggestion = event.suggestion
        suggestion_id = suggestion.suggestion_id
        async with self._lock(event.account_id):
            account = self.account(event.account_id)
            if suggestion_id in account.checked:
                return
            risk = account.risk()
            outcome: Event
            if risk is None:
                error = NoBalance(event.account_id)
                outcome = RiskCheckFailed(
                    **self._envelope(event),
                    suggestion_id=suggestion_id,
                    reason=error.kind,
                    message=error.message,
                    assessment=None,
                )
            elif suggestion.max_risk < 0:
                outcome = RiskCheckFailed(
                    **self._envelope(event),
                    suggestion_id=suggestion_id,
                    reason=ErrorKind.VALIDATION_ERROR,
                    message=f"the suggestion's max risk {suggestion.max_risk} is negative",
                    assessment=None,
                )
            else:
                budget = Budget(
                    risk, stressed=suggestion.stressed, reserved_risk=account.usage.reserved_risk
                )
                verdict = check(budget, suggestion.max_risk)
                if verdict.failure is None:
                    outcome = RiskCheckPassed(
                        **self._envelope(event),
                        suggestion_id=suggestion_id,
                        assessment=verdict.assessment,
                    )
                else:
                    outcome = RiskCheckFailed(
                        **self._envelope(event),
                        suggestion_id=suggestion_id,
                        reason=verdict.failure.kind,
                        message=verdict.failure.message,
                        assessment=verdict.assessment,
                    )
            await self._emit(outcome)
        self._log.info(
            "risk check",
            account_id=event.account_id,
            suggestion_id=str(suggestion_id),
            outcome=outcome.type,
        )

    # --- approvals ----------------------------------------------------------------------

    async def decide_approval(self, event: SuggestionApproved) -> None:
        """RiskReserved or RiskReservationFailed for an approval, once, under the lock."""
        async with self._lock(event.account_id):
            account = self.account(event.account_id)
            if event.suggestion_id in account.decided:
                return  # a redelivery: answered already
            outcome = await self._verdict(account, event)
            await self._emit(outcome)
        if isinstance(outcome, RiskReserved):
            self._log.info(
                "risk reserved",
                account_id=event.account_id,
                suggestion_id=str(event.suggestion_id),
                amount=str(outcome.amount),
            )
        else:
            assert isinstance(outcome, RiskReservationFailed)
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
            **self._envelope(event),
            suggestion_id=event.suggestion_id,
            reason=kind,
            message=message,
            assessment=assessment,
        )

    async def _verdict(
        self, account: RiskAccount, event: SuggestionApproved
    ) -> RiskReserved | RiskReservationFailed:
        suggestion = account.suggestions.get(event.suggestion_id)
        if suggestion is None:
            return self._failed(
                event,
                ErrorKind.NOT_FOUND,
                f"suggestion {event.suggestion_id} is unknown to risk (or no longer pending)",
            )
        risk = account.risk()
        if risk is None:
            error = NoBalance(event.account_id)
            return self._failed(event, error.kind, error.message)
        try:
            at_limit = trident_risk_at_order_price(
                suggestion.width,
                event.limit_credit,
                includes_call_spread=suggestion.includes_call_spread,
            )
        except ValueError as exc:
            return self._failed(event, ErrorKind.VALIDATION_ERROR, str(exc))
        if at_limit.max_risk < 0:
            return self._failed(
                event,
                ErrorKind.VALIDATION_ERROR,
                f"limit credit {event.limit_credit} exceeds the spread width: "
                f"max risk {at_limit.max_risk} is negative",
            )
        stressed = await self._stressed_now(suggestion, event)
        reservation = reserve(
            risk,
            account.pending(),
            event.suggestion_id,
            at_limit.max_risk,
            stressed=stressed,
            approval=event,
        )
        reservation_id = new_event_id()
        if reservation.passed:
            try:
                # The very request execution will place under this reservation.
                request = opening_order_request(
                    suggestion, event.limit_credit, reservation_id=reservation_id
                )
            except ValueError as exc:
                return self._failed(
                    event, ErrorKind.VALIDATION_ERROR, str(exc), reservation.check.assessment
                )
            try:
                result = await self._dry_run(event.account_id, request)
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
            **self._envelope(event),
            reservation_id=reservation_id,
            suggestion_id=event.suggestion_id,
            amount=at_limit.max_risk,
            limit_credit=event.limit_credit,
            assessment=reservation.check.assessment,
        )

    async def _dry_run(self, account_id: str, request: OrderRequest) -> DryRunResult:
        """The broker's dry run, retried a few times when it fails transiently."""
        assert self._adapter is not None
        backoff = self._settings.dry_run_backoff_s or (0.0,)
        attempts = self._settings.dry_run_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._adapter.dry_run(account_id, request)
            except SenexError as exc:
                if not exc.kind.is_transient or attempt == attempts:
                    raise
                delay = backoff[min(attempt, len(backoff)) - 1]
                self._log.warning(
                    "dry run failed; retrying",
                    account_id=account_id,
                    attempt=attempt,
                    kind=exc.kind.value,
                    error=exc.message,
                    delay_s=delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # --- releases -----------------------------------------------------------------------

    async def release_if_due(self, event: Event) -> None:
        """RiskReleased when ``event`` ends a pending reservation (see `release_due`)."""
        assert event.account_id is not None
        async with self._lock(event.account_id):
            due = accounts.release_due(self.account(event.account_id), event)
            if due is None:
                return
            released = RiskReleased(
                **self._envelope(event),
                reservation_id=due.reservation.reservation_id,
                suggestion_id=due.reservation.suggestion_id,
                amount=due.reservation.amount,
                reason=due.reason,
                order_id=due.order_id,
            )
            await self._emit(released)
        self._log.info(
            "risk released",
            account_id=event.account_id,
            reservation_id=str(released.reservation_id),
            reason=released.reason.value,
            amount=str(released.amount),
        )

    # --- queries ------------------------------------------------------------------------

    def stressed_underlyings(self) -> tuple[str, ...]:
        """Underlyings market data last judged stressed."""
        return tuple(sorted(symbol for symbol, stressed in self._stressed.items() if stressed))

    async def get_risk_budget(self, command: GetRiskBudget) -> RiskBudgetReply:
        """The account's budget now: every figure, the warning level, stressed underlyings."""
        account = self.account(command.account_id)
        risk = account.risk()
        if risk is None:
            raise NoBalance(command.account_id)
        return RiskBudgetReply(
            budget=budget_view(
                risk,
                reserved_risk=account.usage.reserved_risk,
                open_positions=account.usage.open_positions,
                as_of=self.clock.now(),
                stressed_underlyings=self.stressed_underlyings(),
            )
        )

    def reserved_by_suggestion(self, account_id: str) -> Mapping[UUID, Decimal]:
        """Pending reservations of the account by suggestion (for tests and diagnostics)."""
        return self.account(account_id).pending()
