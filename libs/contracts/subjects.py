"""NATS subjects (ARCHITECTURE.md, Bus).

- ``senex.evt.<account>.<context>.<Type>``: account events (business stream)
- ``senex.md.<symbol>.<Type>``: market-wide events (market-data stream)
- ``senex.cmd.<service>.<verb>.<account>``: commands and queries (request-reply)

Subjects carry the account so the gateway and NATS permissions can route per user and
replicas can partition by it.
"""

from __future__ import annotations

import functools
import re

from libs.contracts.commands import Command
from libs.contracts.envelope import Event

PREFIX = "senex"
#: Every account event (the business stream's subjects).
ALL_ACCOUNT_EVENTS = f"{PREFIX}.evt.>"
#: Every market-wide event (the market-data stream's subjects).
ALL_MARKET_DATA = f"{PREFIX}.md.>"
#: Where consumers park messages they cannot process.
DEAD_LETTER_PREFIX = f"{PREFIX}.dlq"

# NATS tokens are split on "." and may not hold whitespace or the wildcards * and >.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@functools.lru_cache(maxsize=8192)
def token(value: str) -> str:
    """``value`` as one subject token: spaces dropped, other unsafe characters -> ``_``.

    OCC symbols lose only their padding (``QQQ   251219P00592000`` ->
    ``QQQ251219P00592000``), which keeps them unambiguous.
    """
    safe = _UNSAFE.sub("_", value.replace(" ", ""))
    if not safe:
        raise ValueError(f"{value!r} leaves no subject token")
    return safe


def account_event_subject(account_id: str, context: str, type_name: str) -> str:
    """``senex.evt.<account>.<context>.<Type>``."""
    return f"{PREFIX}.evt.{token(account_id)}.{token(context)}.{token(type_name)}"


def market_subject(symbol: str, type_name: str) -> str:
    """``senex.md.<symbol>.<Type>`` with the symbol made token-safe."""
    return f"{PREFIX}.md.{token(symbol)}.{token(type_name)}"


def event_subject(event: Event) -> str:
    """The subject ``event`` is published on."""
    if event.MARKET_WIDE:
        symbol = getattr(event, "symbol", None)
        if isinstance(symbol, str):
            return market_subject(symbol, event.type)
    if event.account_id is None:
        raise ValueError(f"{event.type} has no account to route by")
    return account_event_subject(event.account_id, event.CONTEXT, event.type)


def command_subject(service: str, verb: str, account_id: str) -> str:
    """``senex.cmd.<service>.<verb>.<account>``."""
    return f"{PREFIX}.cmd.{token(service)}.{token(verb)}.{token(account_id)}"


def subject_for_command(command: Command) -> str:
    """The subject ``command`` is sent to."""
    return command_subject(command.SERVICE, command.VERB, command.account_id)


def account_events_filter(account_id: str = "*", context: str = "*", type_name: str = "*") -> str:
    """A subscription filter over account events; ``*`` matches any token."""
    parts = [part if part == "*" else token(part) for part in (account_id, context, type_name)]
    return f"{PREFIX}.evt.{'.'.join(parts)}"


def market_filter(symbol: str = "*", type_name: str = "*") -> str:
    """A subscription filter over market-wide events."""
    parts = [part if part == "*" else token(part) for part in (symbol, type_name)]
    return f"{PREFIX}.md.{'.'.join(parts)}"


def command_filter(service: str = "*", verb: str = "*", account_id: str = "*") -> str:
    """A subscription filter over commands; a service listens on ``command_filter(name)``."""
    parts = [part if part == "*" else token(part) for part in (service, verb, account_id)]
    return f"{PREFIX}.cmd.{'.'.join(parts)}"


def dead_letter_subject(subject: str) -> str:
    """Where a message from ``subject`` goes when a consumer gives up on it."""
    rest = subject.removeprefix(f"{PREFIX}.")
    return f"{DEAD_LETTER_PREFIX}.{rest}"
