"""Execution's commands: order queries, cancels, the monitor's exits and re-pricing.

Each is answered from the folded state (`views`), by the replica owning the account. A
command that records a decision (an exit, a replacement) does so once per the order id
the caller chose, so a retried command places one order.
"""

from __future__ import annotations

import time
from uuid import UUID

from libs.contracts.commands import (
    CancelOrder,
    GetOrder,
    GetOrders,
    OrderListReply,
    OrderReply,
    PlaceExitOrder,
    ReplaceOrderPrice,
)
from libs.contracts.errors import ErrorKind, SenexError
from libs.runtime.following import CommandHandlers
from services.execution.background import Launcher
from services.execution.cancels import Canceller
from services.execution.exits import Exits
from services.execution.projection import OrderRecord
from services.execution.recording import OrderLocks, Recorder
from services.execution.state import ExecutionState
from services.execution.suspension import Suspension
from services.execution.views import (
    cancellable,
    find_record,
    listed,
    order_view,
    replacement,
)


class Commands:
    """Answers execution's commands."""

    def __init__(
        self,
        *,
        state: ExecutionState,
        recorder: Recorder,
        locks: OrderLocks,
        launcher: Launcher,
        canceller: Canceller,
        suspension: Suspension,
        exits: Exits,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._locks = locks
        self._launcher = launcher
        self._canceller = canceller
        self._suspension = suspension
        self._exits = exits

    def handlers(self) -> CommandHandlers:
        """The handler of each command verb."""
        return {
            GetOrder.VERB: self.get_order,
            GetOrders.VERB: self.get_orders,
            CancelOrder.VERB: self.cancel_order,
            PlaceExitOrder.VERB: self.place_exit_order,
            ReplaceOrderPrice.VERB: self.replace_order_price,
        }

    def _record(self, account: str, order_id: UUID) -> OrderRecord:
        return find_record(self._state.book(account), account, order_id)

    def _reply(self, account: str, order_id: UUID) -> OrderReply:
        """The order as the state holds it now (`NotFound` when the account has none such)."""
        return OrderReply(order=order_view(self._record(account, order_id), self._state.positions))

    async def get_order(self, command: GetOrder) -> OrderReply:
        """One order of the account."""
        return self._reply(command.account_id, command.order_id)

    async def get_orders(self, command: GetOrders) -> OrderListReply:
        """The account's orders, newest first."""
        records = listed(self._state.book(command.account_id), open_only=command.open_only)
        return OrderListReply(orders=tuple(order_view(r, self._state.positions) for r in records))

    async def cancel_order(self, command: CancelOrder) -> OrderReply:
        """Cancel a working order; the reply shows it as the broker reports it now."""
        account = command.account_id
        record = self._record(account, command.order_id)
        cancellable(record)
        try:
            await self._canceller.cancel_at_broker(account, record, command.reason)
        except SenexError as exc:
            if exc.kind is ErrorKind.BROKER_UNAVAILABLE:
                await self._suspension.suspend(account, exc)
            raise
        return self._reply(account, command.order_id)

    async def place_exit_order(self, command: PlaceExitOrder) -> OrderReply:
        """Record the monitor's exit decision (ExitOrderPlaced) and place it (once)."""
        account = command.account_id
        async with self._locks.decision(command.order_id):
            decided = await self._exits.decide(command)
        await self._exits.place(account, decided)
        return self._reply(account, command.order_id)

    async def replace_order_price(self, command: ReplaceOrderPrice) -> OrderReply:
        """Re-price a working closing order as a new decision (once per replacement id)."""
        account = command.account_id
        async with self._locks.decision(command.replacement_order_id):
            existing = self._state.book(account).orders.get(command.replacement_order_id)
            if existing is not None:
                return OrderReply(order=order_view(existing, self._state.positions))
            old = self._record(account, command.order_id)
            spec = replacement(old, command.replacement_order_id, command.limit_price)
            await self._recorder.submit(account, spec, command.causation())
        decided = time.perf_counter()
        self._launcher.start_sending(account, spec.order_id, resume=False, decided=decided)
        return self._reply(account, spec.order_id)
