"""Exit orders: the decisions (``ExitOrderPlaced``) recorded, then placed once each.

An exit is decided by execution itself (a profit target after the opening filled) or by
the position monitor (``PlaceExitOrder``: a stop loss, a time exit, a manual exit). Each
decision is recorded once by its order id; placing it records its ``OrderSubmitted``
(once, under the order's decision lock) and starts sending it. An exit that cannot be
built as a valid limit order flags its position instead.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from structlog.stdlib import BoundLogger

from libs.contracts.commands import PlaceExitOrder
from libs.contracts.errors import NotFound, ValidationFailed
from libs.contracts.execution import OrderLeg
from libs.contracts.positions import (
    AttentionReason,
    ExitOrderPlaced,
    PositionNeedsAttention,
    PositionOpened,
)
from services.execution.background import Launcher
from services.execution.core import InvalidOrder, OrderSpec, exit_order
from services.execution.recording import OrderLocks, Recorder
from services.execution.state import ExecutionState


def exit_underlying(position: PositionOpened | None, legs: Sequence[OrderLeg]) -> str:
    """The underlying of an exit: its position's, else its first leg's root symbol."""
    return position.underlying if position is not None else legs[0].symbol.root


def exit_spec(decided: ExitOrderPlaced, underlying: str) -> OrderSpec:
    """The limit order of an exit decision; `InvalidOrder` when it cannot be one."""
    return exit_order(
        order_id=decided.order_id,
        underlying=underlying,
        position_id=decided.position_id,
        spread_kind=decided.spread_kind,
        purpose=decided.purpose,
        legs=decided.legs,
        limit_price=decided.limit_price,
    )


def refused_exit_attention(
    decided: ExitOrderPlaced, underlying: str, error: str, env: dict[str, Any]
) -> PositionNeedsAttention:
    """The flag of a position whose exit decision could not be placed."""
    return PositionNeedsAttention(
        **env,
        position_id=decided.position_id,
        underlying=underlying,
        reason=AttentionReason.ORDER_FAILED,
        message=f"the {decided.purpose.value} exit could not be placed: {error}",
        order_id=decided.order_id,
        app_managed=True,
    )


class Exits:
    """Records exit decisions and places each once."""

    def __init__(
        self,
        state: ExecutionState,
        recorder: Recorder,
        locks: OrderLocks,
        launcher: Launcher,
        log: BoundLogger,
    ) -> None:
        self._state = state
        self._recorder = recorder
        self._locks = locks
        self._launcher = launcher
        self._log = log

    async def on_decided(self, event: ExitOrderPlaced) -> None:
        """Reaction to ``ExitOrderPlaced``: place the exit (nothing when placed already)."""
        await self.place(event.account_id, event)

    async def place(self, account: str, decided: ExitOrderPlaced) -> None:
        """Record and send the exit ``decided`` (once per order id)."""
        started = time.perf_counter()
        async with self._locks.decision(decided.order_id):
            record = self._state.order(decided.order_id)
            if record is not None:
                self._launcher.resume_if_unanswered(account, record)
                return
            underlying = exit_underlying(
                self._state.positions.get(decided.position_id), decided.legs
            )
            try:
                spec = exit_spec(decided, underlying)
            except InvalidOrder as exc:
                self._log.error(
                    "exit order refused", order_id=str(decided.order_id), error=str(exc)
                )
                env = self._recorder.envelope(account, decided.causation())
                await self._recorder.publish(
                    refused_exit_attention(decided, underlying, str(exc), env)
                )
                return
            await self._recorder.submit(account, spec, decided.causation())
        self._launcher.start_sending(account, spec.order_id, resume=False, decided=started)

    async def decide(self, command: PlaceExitOrder) -> ExitOrderPlaced:
        """The command's ExitOrderPlaced: published now, or the one already recorded.

        The caller holds the order's decision lock.
        """
        account = command.account_id
        decided = self._state.exits.get(command.order_id)
        if decided is not None:
            if decided.account_id != account:
                raise NotFound(f"order {command.order_id} not found for account {account}")
            return decided
        underlying = exit_underlying(self._state.positions.get(command.position_id), command.legs)
        try:
            exit_order(
                order_id=command.order_id,
                underlying=underlying,
                position_id=command.position_id,
                spread_kind=command.spread_kind,
                purpose=command.purpose,
                legs=command.legs,
                limit_price=command.limit_price,
            )
            decided = ExitOrderPlaced(
                **self._recorder.envelope(account, command.causation()),
                position_id=command.position_id,
                spread_kind=command.spread_kind,
                order_id=command.order_id,
                purpose=command.purpose,
                legs=command.legs,
                limit_price=command.limit_price,
                replaces_order_id=command.replaces_order_id,
                reason=command.reason,
            )
        except (InvalidOrder, ValidationError) as exc:
            raise ValidationFailed(f"invalid exit order: {exc}", field="legs") from None
        await self._recorder.publish(decided)
        return decided
