"""``/trading/api/audit/...``: the event log as the audit service answers it.

The audit service filters every query by account; the gateway only ever asks for the
user's own accounts, so another user's events (or causal chains) cannot be read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from libs.contracts.commands import (
    EventPageReply,
    GetCausalChain,
    GetEvents,
    RecordedEvent,
    VerifyEventLog,
    VerifyReply,
)
from libs.contracts.errors import NotFound, ValidationFailed
from services.gateway.context import AccountQuery, GatewayDep, PrincipalDep
from services.gateway.errors import ErrorResponse

router = APIRouter(prefix="/trading/api/audit", tags=["audit"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (401, 403, 404, 409, 422, 503)
}
EVENT_TYPE = r"^[A-Za-z][A-Za-z0-9]{0,63}$"


@router.get("/events", response_model=EventPageReply, responses=_ERRORS)
async def events(
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
    type: Annotated[
        list[Annotated[str, Query(pattern=EVENT_TYPE)]] | None,
        Query(description="Event types to include (repeat the parameter); none = all."),
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_position: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPageReply:
    """A page of the account's recorded events in log order; continue with
    ``after_position=next_after_position``."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValidationFailed(f"{name}: give a timezone (e.g. Z or +00:00)", field=name)
    account_id = await gateway.account(principal, account)
    command = GetEvents(
        account_id=account_id,
        types=tuple(type or ()),
        since=since,
        until=until,
        after_position=after_position,
        limit=limit,
        requested_by=principal.user_id,
    )
    return await gateway.ask(command, EventPageReply)


@router.get("/chain/{correlation_id}", response_model=EventPageReply, responses=_ERRORS)
async def chain(
    correlation_id: Annotated[UUID, Path(description="A correlation id (an event's).")],
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> EventPageReply:
    """Every event of the user's accounts sharing ``correlation_id``, in log order."""
    found: list[RecordedEvent] = []
    more: int | None = None
    for account_id in await gateway.accounts_to_search(principal, account):
        command = GetCausalChain(
            account_id=account_id,
            chain_correlation_id=correlation_id,
            requested_by=principal.user_id,
        )
        page = await gateway.ask(command, EventPageReply)
        found.extend(page.events)
        more = more or page.next_after_position
    if not found:
        raise NotFound(
            f"no events with correlation id {correlation_id}",
            details={"correlation_id": str(correlation_id)},
        )
    found.sort(key=lambda e: e.position)
    return EventPageReply(events=tuple(found), next_after_position=more)


@router.get("/verify", response_model=VerifyReply, responses=_ERRORS)
async def verify(principal: PrincipalDep, gateway: GatewayDep) -> VerifyReply:
    """Check the whole event log's hash chain (tamper evidence)."""
    command = VerifyEventLog(
        account_id=await gateway.market_account(principal), requested_by=principal.user_id
    )
    # Verifying reads the whole log: allow it longer than a query.
    timeout = max(gateway.settings.command_timeout_s, 60.0)
    return await gateway.ask(command, VerifyReply, timeout=timeout)
