"""The trading actions REST and the WebSocket share: generate and execute.

Both transports take the same path to the owning service, so a WebSocket
``execute_order`` is checked exactly like ``POST .../execute/`` (the suggestion must be
one of the user's, the warning must be confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    Command,
    GenerateSuggestion,
    GetSuggestion,
    SuggestionReply,
)
from libs.contracts.envelope import new_event_id
from services.gateway.context import Gateway, Principal

C = TypeVar("C", bound=Command)


@dataclass(frozen=True, slots=True)
class CommandIds:
    """Ids a caller picks for a command, to recognise the events it causes."""

    command_id: UUID
    """Events the command directly causes carry it as ``causation_id``."""
    correlation_id: UUID
    """Events of the flow the command starts carry it (unless the owner keeps the flow's
    own, as strategy does for an approval)."""

    @classmethod
    def new(cls) -> CommandIds:
        return cls(command_id=new_event_id(), correlation_id=new_event_id())

    def apply(self, command: C) -> C:
        return command.model_copy(
            update={"command_id": self.command_id, "correlation_id": self.correlation_id}
        )


async def find_suggestion(
    gateway: Gateway, principal: Principal, account: str | None, suggestion_id: UUID
) -> tuple[str, SuggestionReply]:
    """The suggestion and the account it belongs to (NOT_FOUND if not the user's)."""

    async def ask(account_id: str) -> tuple[str, SuggestionReply]:
        command = GetSuggestion(
            account_id=account_id, suggestion_id=suggestion_id, requested_by=principal.user_id
        )
        return account_id, await gateway.ask(command, SuggestionReply)

    return await gateway.first_found(principal, account, ask, f"suggestion {suggestion_id}")


async def generate(
    gateway: Gateway,
    principal: Principal,
    symbol: Underlying,
    account: str | None,
    *,
    ids: CommandIds | None = None,
) -> SuggestionReply:
    """Ask strategy for a Senex Trident on ``symbol``; a no-trade outcome raises its error."""
    account_id = await gateway.account(principal, account)
    command = GenerateSuggestion(
        account_id=account_id, underlying=symbol, requested_by=principal.user_id
    )
    if ids is not None:
        command = ids.apply(command)
    return await gateway.ask(command, SuggestionReply, timeout=gateway.settings.generate_timeout_s)


async def execute(
    gateway: Gateway,
    principal: Principal,
    suggestion_id: UUID,
    *,
    custom_credit: Decimal | None,
    confirm_warning: bool,
    account: str | None,
    ids: CommandIds | None = None,
) -> ApprovalReply:
    """Approve the user's suggestion (at mid, or ``custom_credit``)."""
    account_id, _ = await find_suggestion(gateway, principal, account, suggestion_id)
    command = ApproveSuggestion(
        account_id=account_id,
        suggestion_id=suggestion_id,
        custom_credit=custom_credit,
        confirm_warning=confirm_warning,
        requested_by=principal.user_id,
    )
    if ids is not None:
        command = ids.apply(command)
    return await gateway.ask(command, ApprovalReply)
