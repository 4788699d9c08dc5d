"""SQLite state of the simulator: customers, tokens, accounts, positions, orders, settings.

One connection, used from the server's event-loop thread (plus the control thread of
tests through the HTTP API only), guarded by a lock because sqlite3 objects are not
thread-safe. Every statement is small, so a handler never blocks for long.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    token_lifetime INTEGER NOT NULL,
    UNIQUE (client_secret, refresh_token)
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    number TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    nickname TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    cash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    account TEXT NOT NULL,
    symbol TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    average_open_price TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account, symbol)
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account, status);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Customer:
    """A login: its credentials and access-token lifetime."""

    id: int
    name: str
    client_secret: str
    refresh_token: str
    token_lifetime: int


@dataclass(frozen=True)
class AccountRow:
    """An account of a customer."""

    number: str
    customer_id: int
    nickname: str
    opened_at: datetime
    cash: Decimal


@dataclass(frozen=True)
class PositionRow:
    """A signed position (contracts; negative = short)."""

    account: str
    symbol: str
    quantity: int
    average_open_price: Decimal
    created_at: datetime
    updated_at: datetime


class Store:
    """The simulator's persistent state."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _all(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _run(self, sql: str, *args: object) -> int:
        with self._lock:
            cursor = self._db.execute(sql, args)
            return int(cursor.lastrowid or 0)

    # customers and tokens

    def add_customer(
        self, name: str, client_secret: str, refresh_token: str, token_lifetime: int
    ) -> Customer:
        """Create a customer; raises sqlite3.IntegrityError on duplicate credentials."""
        new_id = self._run(
            "INSERT INTO customers (name, client_secret, refresh_token, token_lifetime)"
            " VALUES (?, ?, ?, ?)",
            name,
            client_secret,
            refresh_token,
            token_lifetime,
        )
        return Customer(new_id, name, client_secret, refresh_token, token_lifetime)

    def customers(self) -> list[Customer]:
        """All customers, oldest first."""
        rows = self._all(
            "SELECT id, name, client_secret, refresh_token, token_lifetime"
            " FROM customers ORDER BY id"
        )
        return [Customer(*row) for row in rows]

    def customer(self, customer_id: int) -> Customer | None:
        """One customer by id."""
        return next((c for c in self.customers() if c.id == customer_id), None)

    def customer_by_credentials(self, client_secret: str, refresh_token: str) -> Customer | None:
        """The customer owning this credential pair."""
        rows = self._all(
            "SELECT id, name, client_secret, refresh_token, token_lifetime FROM customers"
            " WHERE client_secret = ? AND refresh_token = ?",
            client_secret,
            refresh_token,
        )
        return Customer(*rows[0]) if rows else None

    def set_token_lifetime(self, customer_id: int, seconds: int) -> None:
        """Change how long the customer's next access tokens live."""
        self._run("UPDATE customers SET token_lifetime = ? WHERE id = ?", seconds, customer_id)

    def add_token(self, token: str, customer_id: int, expires_at: float) -> None:
        """Record an issued access token (expiry in real epoch seconds)."""
        self._run(
            "INSERT INTO tokens (token, customer_id, expires_at) VALUES (?, ?, ?)",
            token,
            customer_id,
            expires_at,
        )

    def token_owner(self, token: str, now: float) -> int | None:
        """The customer of a live access token."""
        rows = self._all(
            "SELECT customer_id FROM tokens WHERE token = ? AND expires_at > ?", token, now
        )
        return int(rows[0][0]) if rows else None

    def expire_tokens(self, customer_id: int | None, now: float) -> None:
        """Drop access tokens (all, or one customer's) and those already expired."""
        if customer_id is None:
            self._run("DELETE FROM tokens")
        else:
            self._run(
                "DELETE FROM tokens WHERE customer_id = ? OR expires_at <= ?", customer_id, now
            )

    # accounts

    def add_account(
        self, number: str, customer_id: int, nickname: str, opened_at: datetime, cash: Decimal
    ) -> None:
        """Open an account."""
        self._run(
            "INSERT INTO accounts (number, customer_id, nickname, opened_at, cash)"
            " VALUES (?, ?, ?, ?, ?)",
            number,
            customer_id,
            nickname,
            opened_at.isoformat(),
            str(cash),
        )

    def account_count(self) -> int:
        """How many accounts exist (for numbering the next one)."""
        return int(self._all("SELECT COUNT(*) FROM accounts")[0][0])

    def accounts(self, customer_id: int | None = None) -> list[AccountRow]:
        """Accounts of one customer, or all."""
        sql = "SELECT number, customer_id, nickname, opened_at, cash FROM accounts"
        rows = (
            self._all(sql + " WHERE customer_id = ? ORDER BY number", customer_id)
            if customer_id is not None
            else self._all(sql + " ORDER BY number")
        )
        return [
            AccountRow(r[0], r[1], r[2], datetime.fromisoformat(r[3]), Decimal(r[4])) for r in rows
        ]

    def account(self, number: str) -> AccountRow | None:
        """One account."""
        return next((a for a in self.accounts() if a.number == number), None)

    def set_cash(self, number: str, cash: Decimal) -> None:
        """Overwrite an account's cash balance."""
        self._run("UPDATE accounts SET cash = ? WHERE number = ?", str(cash), number)

    # positions

    def positions(self, account: str | None = None) -> list[PositionRow]:
        """Open positions of one account, or all."""
        sql = (
            "SELECT account, symbol, quantity, average_open_price, created_at, updated_at"
            " FROM positions"
        )
        rows = (
            self._all(sql + " WHERE account = ? ORDER BY symbol", account)
            if account is not None
            else self._all(sql + " ORDER BY account, symbol")
        )
        return [
            PositionRow(
                r[0],
                r[1],
                r[2],
                Decimal(r[3]),
                datetime.fromisoformat(r[4]),
                datetime.fromisoformat(r[5]),
            )
            for r in rows
        ]

    def put_position(self, row: PositionRow) -> None:
        """Write a position; a zero quantity removes it."""
        if row.quantity == 0:
            self._run(
                "DELETE FROM positions WHERE account = ? AND symbol = ?", row.account, row.symbol
            )
            return
        self._run(
            "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?, ?)",
            row.account,
            row.symbol,
            row.quantity,
            str(row.average_open_price),
            row.created_at.isoformat(),
            row.updated_at.isoformat(),
        )

    # orders (stored as JSON documents; the status column serves the live-order scan)

    def next_order_id(self) -> int:
        """Reserve an order id by inserting a placeholder row."""
        return self._run("INSERT INTO orders (account, status, body) VALUES ('', 'Reserved', '{}')")

    def put_order(self, order_id: int, account: str, status: str, body: dict[str, Any]) -> None:
        """Write an order document."""
        self._run(
            "INSERT OR REPLACE INTO orders (id, account, status, body) VALUES (?, ?, ?, ?)",
            order_id,
            account,
            status,
            orjson.dumps(body).decode(),
        )

    def order(self, order_id: int) -> dict[str, Any] | None:
        """One order document."""
        rows = self._all("SELECT body FROM orders WHERE id = ? AND status != 'Reserved'", order_id)
        return dict(orjson.loads(rows[0][0])) if rows else None

    def orders(
        self, account: str | None = None, statuses: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Order documents, newest first, filtered by account and status."""
        sql = "SELECT body FROM orders WHERE status != 'Reserved'"
        args: list[object] = []
        if account is not None:
            sql += " AND account = ?"
            args.append(account)
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            args.extend(statuses)
        return [dict(orjson.loads(r[0])) for r in self._all(sql + " ORDER BY id DESC", *args)]

    # settings

    def get_meta(self, key: str) -> Any:
        """A JSON setting, or None."""
        rows = self._all("SELECT value FROM meta WHERE key = ?", key)
        return orjson.loads(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        """Write a JSON setting (None deletes it)."""
        if value is None:
            self._run("DELETE FROM meta WHERE key = ?", key)
        else:
            self._run(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                key,
                orjson.dumps(value).decode(),
            )
