"""NATS subjects (ARCHITECTURE.md, Bus).

- ``senex.evt.<partition>.<account>.<context>.<Type>``: account events (business stream)
- ``senex.md.<symbol>.<Type>``: market-wide events (market-data stream)
- ``senex.cmd.<service>.<verb>.<partition>.<account>``: commands and queries
  (request-reply)

Subjects carry the account so the gateway and NATS permissions can route per user, and
the account's partition (`libs.contracts.partitions`) so a replica can take exactly the
events and commands of the partitions it owns with a subject filter.
"""

from __future__ import annotations

from libs.contracts.commands import Command
from libs.contracts.envelope import Event
from libs.contracts.partitions import partition_of
from libs.contracts.tokens import token as token  # re-exported: subjects are built from it

PREFIX = "senex"
#: Every account event (the business stream's subjects).
ALL_ACCOUNT_EVENTS = f"{PREFIX}.evt.>"
#: Every market-wide event (the market-data stream's subjects).
ALL_MARKET_DATA = f"{PREFIX}.md.>"
#: Where consumers park messages they cannot process.
DEAD_LETTER_PREFIX = f"{PREFIX}.dlq"


def account_event_subject(account_id: str, context: str, type_name: str) -> str:
    """``senex.evt.<partition>.<account>.<context>.<Type>``."""
    partition = partition_of(account_id)
    return f"{PREFIX}.evt.{partition}.{token(account_id)}.{token(context)}.{token(type_name)}"


def account_of_subject(subject: str) -> str | None:
    """The account token of an account event's subject (None for any other subject).

    Reads the layout before partitions too (``senex.evt.<account>.<context>.<Type>``),
    which a stream written before the upgrade still holds.
    """
    tokens = subject.split(".")
    if tokens[:2] != [PREFIX, "evt"]:
        return None
    if len(tokens) == 6:
        return tokens[3]
    if len(tokens) == 5:
        return tokens[2]
    return None


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
    """``senex.cmd.<service>.<verb>.<partition>.<account>``."""
    partition = partition_of(account_id)
    return f"{PREFIX}.cmd.{token(service)}.{token(verb)}.{partition}.{token(account_id)}"


def subject_for_command(command: Command) -> str:
    """The subject ``command`` is sent to."""
    return command_subject(command.SERVICE, command.VERB, command.account_id)


def _partition_token(account_id: str) -> str:
    return "*" if account_id == "*" else str(partition_of(account_id))


def account_events_filter(account_id: str = "*", context: str = "*", type_name: str = "*") -> str:
    """A subscription filter over account events; ``*`` matches any token."""
    parts = [part if part == "*" else token(part) for part in (account_id, context, type_name)]
    return f"{PREFIX}.evt.{_partition_token(account_id)}.{'.'.join(parts)}"


def partition_events_filter(partition: int) -> str:
    """Every account event of one partition (a replica's share of the stream)."""
    return f"{PREFIX}.evt.{partition}.>"


def market_filter(symbol: str = "*", type_name: str = "*") -> str:
    """A subscription filter over market-wide events."""
    parts = [part if part == "*" else token(part) for part in (symbol, type_name)]
    return f"{PREFIX}.md.{'.'.join(parts)}"


def command_filter(
    service: str = "*", verb: str = "*", account_id: str = "*", partition: int | None = None
) -> str:
    """A subscription filter over commands, optionally of one partition only."""
    parts = [part if part == "*" else token(part) for part in (service, verb)]
    part = _partition_token(account_id) if partition is None else str(partition)
    if partition is not None and account_id != "*" and partition_of(account_id) != partition:
        raise ValueError(f"account {account_id!r} is not in partition {partition}")
    account = "*" if account_id == "*" else token(account_id)
    return f"{PREFIX}.cmd.{'.'.join(parts)}.{part}.{account}"


def dead_letter_subject(subject: str) -> str:
    """Where a message from ``subject`` goes when a consumer gives up on it."""
    rest = subject.removeprefix(f"{PREFIX}.")
    return f"{DEAD_LETTER_PREFIX}.{rest}"
