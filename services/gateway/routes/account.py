"""``/trading/api/settings/`` and ``/trading/api/broker-link/``."""

from __future__ import annotations

from fastapi import APIRouter

from libs.broker.models import BrokerCredentials
from libs.contracts.account import AccountSettings
from libs.contracts.errors import ValidationFailed
from services.gateway.context import AccountQuery, GatewayDep, PrincipalDep, account_out
from services.gateway.errors import ErrorResponse
from services.gateway.models import (
    AccountOut,
    BrokerLinkRequest,
    BrokerLinkStatus,
    SettingsResponse,
)

router = APIRouter(prefix="/trading/api", tags=["account"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (401, 403, 404, 409, 422, 502, 503)
}


@router.get("/settings/", response_model=SettingsResponse, responses=_ERRORS)
async def get_settings(
    principal: PrincipalDep, gateway: GatewayDep, account: AccountQuery = None
) -> SettingsResponse:
    """The account's settings (the defaults until changed)."""
    account_id = await gateway.account(principal, account)
    return SettingsResponse(
        account_number=account_id, settings=await gateway.accounts.settings(account_id)
    )


@router.put("/settings/", response_model=SettingsResponse, responses=_ERRORS)
async def put_settings(
    body: AccountSettings,
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> SettingsResponse:
    """Replace the account's settings (the whole snapshot); publishes AccountSettingsChanged."""
    account_id = await gateway.account(principal, account)
    event = await gateway.accounts.change_settings(
        principal.user_id, account_id, body, gateway.clock.now()
    )
    return SettingsResponse(account_number=account_id, settings=event.settings)


async def _status(principal: PrincipalDep, gateway: GatewayDep) -> BrokerLinkStatus:
    links = await gateway.accounts.links(principal.user_id)
    return BrokerLinkStatus(
        mode=gateway.accounts.mode,
        linked=bool(links),
        accounts=[AccountOut.model_validate(account_out(link)) for link in links],
    )


@router.get("/broker-link/", response_model=BrokerLinkStatus, responses=_ERRORS)
async def get_broker_link(principal: PrincipalDep, gateway: GatewayDep) -> BrokerLinkStatus:
    """Which accounts are linked and how (never the credentials)."""
    return await _status(principal, gateway)


@router.put("/broker-link/", response_model=BrokerLinkStatus, responses=_ERRORS)
async def put_broker_link(
    body: BrokerLinkRequest, principal: PrincipalDep, gateway: GatewayDep
) -> BrokerLinkStatus:
    """Link an account: credentials checked with the broker, stored encrypted, write-only."""
    if body.mode is not gateway.accounts.mode:
        raise ValidationFailed(
            f"mode: this system trades {gateway.accounts.mode.value}; "
            f"a {body.mode.value} link would never be used",
            field="mode",
        )
    now = gateway.clock.now()
    if body.client_secret is None and body.refresh_token is None:
        await gateway.accounts.link_new_paper_customer(
            user_id=principal.user_id, nickname=body.nickname, now=now
        )
    elif body.client_secret is None or body.refresh_token is None:
        missing = "client_secret" if body.client_secret is None else "refresh_token"
        raise ValidationFailed(f"{missing}: give both credentials, or neither", field=missing)
    else:
        await gateway.accounts.link(
            user_id=principal.user_id,
            credentials=BrokerCredentials(
                client_secret=body.client_secret, refresh_token=body.refresh_token
            ),
            account_number=body.account_number,
            nickname=body.nickname,
            now=now,
        )
    return await _status(principal, gateway)
