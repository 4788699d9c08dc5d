"""What execution needs of the broker: the order calls of `libs.broker.adapter.BrokerAdapter`.

The collaborators take this protocol rather than the adapter itself, so a unit test can
hand them a broker in memory; the composition root hands them the real adapter.
"""

from __future__ import annotations

from typing import Protocol

from libs.broker.models import BrokerOrder
from libs.domain.orders import OrderRequest


class OrderBroker(Protocol):
    """The broker adapter's order calls (errors are `SenexError` with their kind)."""

    async def place_order(self, account_number: str, request: OrderRequest) -> BrokerOrder: ...

    async def replace_order(
        self, account_number: str, broker_order_id: str, request: OrderRequest
    ) -> BrokerOrder: ...

    async def cancel_order(self, account_number: str, broker_order_id: str) -> None: ...

    async def get_order(self, account_number: str, broker_order_id: str) -> BrokerOrder: ...

    async def get_live_orders(self, account_number: str) -> list[BrokerOrder]: ...

    async def find_order_by_client_tag(
        self, account_number: str, tag: str
    ) -> BrokerOrder | None: ...

    def expire_session(self, account_number: str) -> None: ...
