"""Default credentials and account numbering of the simulator."""

from __future__ import annotations

from decimal import Decimal

#: OAuth client secret of the customer every fresh simulator has.
DEFAULT_CLIENT_SECRET = "senex-paper-secret"  # noqa: S105 - a published test credential
#: Refresh token of that customer.
DEFAULT_REFRESH_TOKEN = "senex-paper-refresh"  # noqa: S105 - a published test credential
#: Account number of the default customer's account.
DEFAULT_ACCOUNT_NUMBER = "5WT00001"
#: Cash every new account starts with unless told otherwise.
DEFAULT_STARTING_CASH = Decimal("100000.00")
#: Access-token lifetime in seconds (TastyTrade's is 15 minutes).
DEFAULT_TOKEN_LIFETIME = 900


def account_number(serial: int) -> str:
    """The account number of the ``serial``-th account (1-based), e.g. ``5WT00001``."""
    return f"5WT{serial:05d}"
