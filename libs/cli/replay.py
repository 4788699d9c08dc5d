"""`senex replay`: fold one account's event log into the services' projections.

The projections are the very ones the services fold live (`PROJECTIONS`), driven by
the same `AccountFold`, so a replay shows what the system believed at any moment: for
audits, for rebuilding a service, and for comparing with what the broker says.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
import psycopg
import typer

from libs.contracts.errors import ContractError
from libs.eventlog.errors import EventLogError, translated_errors
from libs.eventlog.reads import event_from_stored, read_account
from libs.eventlog.records import DUPLICATE_TYPE
from libs.eventlog.store import EventLog
from libs.projections import AccountFold, Anomaly, Projection
from libs.runtime.settings import Settings
from services.execution.projection import ORDERS, OrderBook
from services.position_monitor.projection import POSITIONS, PositionBook
from services.risk.projection import RISK, ReservationStatus, RiskUsage
from services.strategy.projection import SUGGESTIONS, SuggestionBook

#: Every projection that exists so far, in the order they are printed.
PROJECTIONS: tuple[Projection[Any], ...] = (SUGGESTIONS, RISK, ORDERS, POSITIONS)

#: Exit status when the log could not be read (unreachable, no schema).
EXIT_UNREADABLE = 2

_RESULT_KEYS = frozenset(
    {
        "account_id",
        "until",
        "head_position",
        "last_position",
        "events_folded",
        "events_ignored",
        "events_skipped",
        "skipped",
    }
)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """An account's projections after folding its log, with what was read."""

    account_id: str
    until: datetime | None
    fold: AccountFold
    head_position: int
    """The log's head when the replay started; later rows are not read."""
    last_position: int | None
    """Position of the last row of the account that was read (folded or skipped)."""
    events_folded: int
    events_ignored: int
    """Valid events of types no projection folds (not rebuilt, so not checked)."""
    malformed: int
    duplicates: int
    unreadable: tuple[int, ...]
    """Positions of rows that no longer parse against the contracts."""

    @property
    def events_skipped(self) -> int:
        """Malformed, duplicate-marker and unreadable rows."""
        return self.malformed + self.duplicates + len(self.unreadable)

    def to_json(self) -> dict[str, Any]:
        """One JSON-ready object: each projection by name, plus the counts."""
        states = self.fold.to_json()
        clash = _RESULT_KEYS & states.keys()
        if clash:
            raise ValueError(f"projection names {sorted(clash)} clash with replay fields")
        return {
            "account_id": self.account_id,
            "until": None if self.until is None else self.until.isoformat(),
            "head_position": self.head_position,
            "last_position": self.last_position,
            "events_folded": self.events_folded,
            "events_ignored": self.events_ignored,
            "events_skipped": self.events_skipped,
            "skipped": {
                "malformed": self.malformed,
                "duplicate": self.duplicates,
                "unreadable": len(self.unreadable),
            },
            **states,
        }


async def fold_account(
    conn: psycopg.AsyncConnection[Any],
    account_id: str,
    until: datetime | None = None,
    *,
    projections: Sequence[Projection[Any]] = PROJECTIONS,
) -> ReplayResult:
    """Fold ``account_id``'s rows (``occurred_at <= until``) in position order.

    ``conn`` must be in autocommit mode. Malformed and duplicate-marker rows, and rows
    that no longer parse, are skipped and counted. Raises `ValueError` for a naive
    ``until`` and `EventLogError` subclasses when the log cannot be read.
    """
    if until is not None and until.utcoffset() is None:
        raise ValueError("until must be timezone-aware")
    head = await EventLog(conn).head()
    fold = AccountFold.start(account_id, projections)
    # Rebuilding an event (contract validation) is most of a replay's cost: rows of types
    # no projection folds are counted and passed over without it.
    folded_types = {
        event_type.__name__
        for projection in projections
        for event_type in projection.handlers.event_types
    }
    folded = ignored = malformed = duplicates = 0
    unreadable: list[int] = []
    last: int | None = None
    async for stored in read_account(conn, account_id, until=until, through_position=head.position):
        last = stored.position
        if stored.type == DUPLICATE_TYPE:
            duplicates += 1
            continue
        if stored.type not in folded_types and not stored.malformed:
            ignored += 1
            continue
        try:
            event = event_from_stored(stored)
        except ContractError:
            unreadable.append(stored.position)
            continue
        if event is None:
            malformed += 1
            continue
        fold = fold.apply(event)
        folded += 1
    return ReplayResult(
        account_id=account_id,
        until=until,
        fold=fold,
        head_position=head.position,
        last_position=last,
        events_folded=folded,
        events_ignored=ignored,
        malformed=malformed,
        duplicates=duplicates,
        unreadable=tuple(unreadable),
    )


async def replay_account(
    database_url: str,
    account_id: str,
    until: datetime | None = None,
    *,
    projections: Sequence[Projection[Any]] = PROJECTIONS,
) -> ReplayResult:
    """`fold_account` over a connection of its own to ``database_url``."""
    with translated_errors():
        conn = await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=5
        )
    async with conn:
        with _collector_paused():
            return await fold_account(conn, account_id, until=until, projections=projections)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bounded, acyclic batch job.

    A replay keeps a growing fold (every order, position, suggestion) alive; each full
    collection walked all of it again, which made the replay's cost per event grow with
    the history. Events and states form no reference cycles, so nothing is lost by
    collecting once at the end instead.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_until(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-01-05T16:00:00+00:00"
        ) from None
    _require_aware(moment)
    return moment


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise typer.BadParameter(
            f"{moment.isoformat()} has no time zone; give one, e.g. "
            f"{moment.isoformat()}+00:00 or {moment.isoformat()}Z",
            param_hint="'--until'",
        )


def replay(
    account: Annotated[
        str, typer.Option("--account", help="Broker account number to replay.", show_default=False)
    ],
    until: Annotated[
        datetime | None,
        typer.Option(
            "--until",
            parser=_parse_until,
            metavar="TIME",
            help="Fold only events that occurred at or before TIME (ISO 8601 with a time "
            "zone, e.g. 2026-01-05T16:00:00Z).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a summary.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="PostgreSQL DSN (default: $DATABASE_URL, else the settings' default).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fold an account's event log into the projections and print them.

    An account without events (unknown, or nothing before --until) prints an empty
    result. Exits 2 when the log cannot be read.
    """
    if until is not None:
        _require_aware(until)
    url = database_url or Settings().database_url
    try:
        result = asyncio.run(replay_account(url, account, until=until))
    except EventLogError as exc:
        if json_output:
            typer.echo(orjson.dumps({"ok": False, "error": str(exc)}).decode())
        else:
            typer.echo(f"replay failed: {exc}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    if json_output:
        typer.echo(orjson.dumps(result.to_json()).decode())
    else:
        for line in summary(result):
            typer.echo(line)


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _counts(values: Iterable[str]) -> str:
    counted = Counter(values)
    return ", ".join(f"{n} {name}" for name, n in sorted(counted.items())) or "none"


def _anomaly_lines(anomalies: Sequence[Anomaly], indent: str = "    ") -> list[str]:
    return [
        f"{indent}! {a.occurred_at.isoformat()} {a.event_type} {a.event_id}: {a.message}"
        for a in anomalies
    ]


def summary(result: ReplayResult) -> list[str]:
    """The replay as lines a person reads (entities in the order the log introduced them)."""
    cut = f" up to {result.until.isoformat()}" if result.until else ""
    lines = [f"account {result.account_id}{cut} (log head at position {result.head_position})"]
    if result.last_position is None:
        lines.append(
            "  no events: the log holds nothing for this account"
            f"{cut} (an unknown account looks the same)"
        )
        return lines
    lines.append(
        f"  folded {result.events_folded} events through position {result.last_position}; "
        f"{result.events_ignored} of types no projection folds; "
        f"skipped {result.events_skipped} ({result.malformed} malformed, "
        f"{result.duplicates} duplicate, {len(result.unreadable)} unreadable)"
    )
    if result.unreadable:
        positions = ", ".join(str(p) for p in result.unreadable[:10])
        lines.append(f"  unreadable rows at positions {positions}")
    fold = result.fold
    lines += _suggestion_lines(fold.state(SUGGESTIONS))
    lines += _risk_lines(fold.state(RISK))
    lines += _order_lines(fold.state(ORDERS))
    lines += _position_lines(fold.state(POSITIONS))
    return lines


def _suggestion_lines(book: SuggestionBook) -> list[str]:
    records = list(book.suggestions.values())
    statuses = _counts(r.status.value for r in records)
    lines = [f"suggestions: {len(records)} ({statuses}); {len(book.skipped)} skipped"]
    for r in records:
        s = r.suggestion
        check = "unchecked"
        if r.risk_check is not None:
            level = r.risk_check.warning_level
            check = "risk passed" if r.risk_check.passed else f"risk failed {r.risk_check.reason}"
            check += f" ({level.value})" if level is not None else ""
        limit = f" limit {_money(r.approval.limit_credit)}" if r.approval else ""
        lines.append(
            f"  {s.suggestion_id} {s.underlying} {s.expiration} {s.short_strike} w{s.width} "
            f"{r.status.value}{limit}, {check}"
        )
        lines += _anomaly_lines(r.anomalies)
    for skip in book.skipped.values():
        lines.append(f"  skipped {skip.underlying} {skip.reason_code.value}: {skip.message}")
    return lines + _anomaly_lines(book.anomalies, "  ")


def _risk_lines(usage: RiskUsage) -> list[str]:
    pending = sum(1 for r in usage.reservations.values() if r.status is ReservationStatus.PENDING)
    lines = [
        f"risk: used {_money(usage.used_risk)} = reserved {_money(usage.reserved_risk)} "
        f"({pending} pending) + open positions {_money(usage.open_positions_max_risk)} "
        f"({usage.open_positions} open)"
    ]
    for r in usage.reservations.values():
        lines += _anomaly_lines(r.anomalies)
    return lines + _anomaly_lines(usage.anomalies, "  ")


def _order_lines(book: OrderBook) -> list[str]:
    orders = list(book.orders.values())
    lines = [f"orders: {len(orders)} ({_counts(o.status.value for o in orders)})"]
    for o in orders:
        target = f" {o.spread_kind.value}" if o.spread_kind else ""
        lines.append(
            f"  {o.order_id} {o.purpose.value}{target} {o.underlying} {o.status.value} "
            f"limit {_money(o.limit_price)}, {len(o.fills)} fills"
        )
        lines += _anomaly_lines(o.anomalies)
    return lines + _anomaly_lines(book.anomalies, "  ")


def _position_lines(book: PositionBook) -> list[str]:
    positions = list(book.positions.values())
    lines = [f"positions: {len(positions)} ({_counts(p.status.value for p in positions)})"]
    for p in positions:
        spreads = ", ".join(
            f"{s.spread.kind.value} {'open' if s.open else s.close_reason}" for s in p.spreads
        )
        flags = " NEEDS ATTENTION" if p.needs_attention else ""
        flags += "" if p.app_managed else " (not app-managed)"
        lines.append(
            f"  {p.position_id} {p.underlying} {p.expiration or '-'} {p.status.value}{flags}: "
            f"realized {_money(p.realized_pnl)}, unrealized {_money(p.unrealized_pnl)}"
            f" [{spreads}]"
        )
        lines += _anomaly_lines(p.anomalies)
    return lines + _anomaly_lines(book.anomalies, "  ")
