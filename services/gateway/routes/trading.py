"""The trading workflow's REST endpoints: each a command or query to its owning service.

strategy: generate, execute (approve), reject, suggestions; risk: risk-budget;
execution: pending-orders, orders, order-status; position monitor: positions,
sync-positions; market data: market/{symbol}. validate-trade-risk combines strategy's
view of the suggestion with risk's budget (see `services.gateway.risk_preview`).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ApprovalReply,
    GetMarketCondition,
    GetOrder,
    GetOrders,
    GetPositions,
    GetRiskBudget,
    GetSuggestions,
    MarketConditionReply,
    OrderListReply,
    OrderReply,
    PositionListReply,
    RejectSuggestion,
    RiskBudgetReply,
    SuggestionListReply,
    SuggestionReply,
    SyncPositions,
    SyncPositionsReply,
)
from libs.contracts.errors import ValidationFailed
from services.gateway import actions
from services.gateway.context import AccountQuery, GatewayDep, PrincipalDep
from services.gateway.errors import ErrorResponse
from services.gateway.models import (
    ExecuteRequest,
    GenerateRequest,
    RejectRequest,
    TradeRiskValidation,
    ValidateTradeRiskRequest,
)
from services.gateway.risk_preview import preview

router = APIRouter(prefix="/trading/api", tags=["trading"])

_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse}
    for status in (400, 401, 403, 404, 409, 422, 429, 502, 503, 504)
}
SuggestionId = Annotated[UUID, Path(description="The suggestion's id.")]


@router.post("/senex_trident/generate/", response_model=SuggestionReply, responses=_ERRORS)
async def generate(
    body: GenerateRequest,
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> SuggestionReply:
    """Generate a Senex Trident suggestion; a no-trade outcome is an error with its reason."""
    return await actions.generate(gateway, principal, body.symbol, account)


@router.post(
    "/senex_trident/suggestions/{suggestion_id}/execute/",
    response_model=ApprovalReply,
    responses=_ERRORS,
)
async def execute(
    suggestion_id: SuggestionId,
    principal: PrincipalDep,
    gateway: GatewayDep,
    body: ExecuteRequest | None = None,
    account: AccountQuery = None,
) -> ApprovalReply:
    """Approve the suggestion (at mid, or ``custom_credit``); risk reservation and the
    order follow as events. A utilisation warning needs ``confirm_warning: true``."""
    request = body or ExecuteRequest()
    return await actions.execute(
        gateway,
        principal,
        suggestion_id,
        custom_credit=request.custom_credit,
        confirm_warning=request.confirm_warning,
        account=account,
    )


@router.post(
    "/senex_trident/suggestions/{suggestion_id}/reject/",
    response_model=SuggestionReply,
    responses=_ERRORS,
)
async def reject(
    suggestion_id: SuggestionId,
    principal: PrincipalDep,
    gateway: GatewayDep,
    body: RejectRequest | None = None,
    account: AccountQuery = None,
) -> SuggestionReply:
    """Turn the suggestion down."""
    request = body or RejectRequest()
    account_id, _ = await actions.find_suggestion(gateway, principal, account, suggestion_id)
    command = RejectSuggestion(
        account_id=account_id,
        suggestion_id=suggestion_id,
        reason=request.reason,
        requested_by=principal.user_id,
    )
    return await gateway.ask(command, SuggestionReply)


@router.get("/suggestions/", response_model=SuggestionListReply, responses=_ERRORS)
async def suggestions(
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
    pending_only: bool = True,
) -> SuggestionListReply:
    """The account's suggestions, newest first."""
    account_id = await gateway.account(principal, account)
    command = GetSuggestions(
        account_id=account_id, pending_only=pending_only, requested_by=principal.user_id
    )
    return await gateway.ask(command, SuggestionListReply)


@router.get("/suggestions/{suggestion_id}/", response_model=SuggestionReply, responses=_ERRORS)
async def suggestion(
    suggestion_id: SuggestionId,
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> SuggestionReply:
    """One suggestion with its status and risk check."""
    _, reply = await actions.find_suggestion(gateway, principal, account, suggestion_id)
    return reply


@router.get("/risk-budget/", response_model=RiskBudgetReply, responses=_ERRORS)
async def risk_budget(
    principal: PrincipalDep, gateway: GatewayDep, account: AccountQuery = None
) -> RiskBudgetReply:
    """The account's risk budget now."""
    account_id = await gateway.account(principal, account)
    command = GetRiskBudget(account_id=account_id, requested_by=principal.user_id)
    return await gateway.ask(command, RiskBudgetReply)


@router.post("/validate-trade-risk/", response_model=TradeRiskValidation, responses=_ERRORS)
async def validate_trade_risk(
    body: ValidateTradeRiskRequest,
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> TradeRiskValidation:
    """Whether the suggestion may be executed at ``custom_credit`` (or mid) now.

    Changes nothing (POST only because the workflow spec made it one); see
    `services.gateway.risk_preview` for what is checked.
    """
    account_id, reply = await actions.find_suggestion(
        gateway, principal, account, body.suggestion_id
    )
    budget = await gateway.ask(
        GetRiskBudget(account_id=account_id, requested_by=principal.user_id), RiskBudgetReply
    )
    return preview(reply.suggestion, budget.budget, body.custom_credit)


@router.get("/pending-orders/", response_model=OrderListReply, responses=_ERRORS)
async def pending_orders(
    principal: PrincipalDep, gateway: GatewayDep, account: AccountQuery = None
) -> OrderListReply:
    """Working orders of the account."""
    account_id = await gateway.account(principal, account)
    command = GetOrders(account_id=account_id, open_only=True, requested_by=principal.user_id)
    return await gateway.ask(command, OrderListReply)


@router.get("/orders/", response_model=OrderListReply, responses=_ERRORS)
async def orders(
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
    open_only: bool = False,
) -> OrderListReply:
    """The account's orders, newest first."""
    account_id = await gateway.account(principal, account)
    command = GetOrders(account_id=account_id, open_only=open_only, requested_by=principal.user_id)
    return await gateway.ask(command, OrderListReply)


@router.get("/order-status/{order_id}/", response_model=OrderReply, responses=_ERRORS)
async def order_status(
    order_id: Annotated[UUID, Path(description="The order's id.")],
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
) -> OrderReply:
    """One order and its status."""

    async def ask(account_id: str) -> OrderReply:
        command = GetOrder(account_id=account_id, order_id=order_id, requested_by=principal.user_id)
        return await gateway.ask(command, OrderReply)

    return await gateway.first_found(principal, account, ask, f"order {order_id}")


@router.get("/positions/", response_model=PositionListReply, responses=_ERRORS)
async def positions(
    principal: PrincipalDep,
    gateway: GatewayDep,
    account: AccountQuery = None,
    include_closed: bool = False,
) -> PositionListReply:
    """The account's positions."""
    account_id = await gateway.account(principal, account)
    command = GetPositions(
        account_id=account_id, include_closed=include_closed, requested_by=principal.user_id
    )
    return await gateway.ask(command, PositionListReply)


@router.post("/sync-positions/", response_model=SyncPositionsReply, responses=_ERRORS)
async def sync_positions(
    principal: PrincipalDep, gateway: GatewayDep, account: AccountQuery = None
) -> SyncPositionsReply:
    """Re-read the account's positions from the broker and reconcile."""
    account_id = await gateway.account(principal, account)
    command = SyncPositions(account_id=account_id, requested_by=principal.user_id)
    return await gateway.ask(command, SyncPositionsReply)


@router.get("/market/{symbol}/", response_model=MarketConditionReply, responses=_ERRORS)
async def market(
    symbol: Annotated[str, Path(max_length=10, description="QQQ or SPY.")],
    principal: PrincipalDep,
    gateway: GatewayDep,
) -> MarketConditionReply:
    """Quote, Bollinger bands, stress, IV rank and the daily closes for the chart."""
    try:
        underlying = Underlying(symbol.upper())
    except ValueError:
        choices = ", ".join(u.value for u in Underlying)
        raise ValidationFailed(f"symbol: one of {choices}", field="symbol") from None
    command = GetMarketCondition(
        account_id=await gateway.market_account(principal),
        underlying=underlying,
        requested_by=principal.user_id,
    )
    return await gateway.ask(command, MarketConditionReply)
