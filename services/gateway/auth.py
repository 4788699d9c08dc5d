"""Sessions and CSRF.

Login creates a random session token (the HttpOnly cookie) and a random CSRF token
(returned in the login body; the browser's script sends it back as ``X-CSRF-Token``).
Only the SHA-256 of the session token is stored, so a read of the table cannot be
replayed as a login. A state-changing request (anything but GET/HEAD/OPTIONS) is
accepted only when its header equals the session's CSRF token: a cross-site form or
script can make the browser send the cookie, but cannot read the token to send it too.
SameSite=Strict on the cookie is the second, independent guard.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.gateway.db import Pool
from services.gateway.errors import CsrfRejected

SESSION_COOKIE = "senex_session"
CSRF_HEADER = "X-CSRF-Token"
#: Methods that never change state and so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the sessions table stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_csrf(method: str, expected: str, given: str | None) -> None:
    """Raise `CsrfRejected` when ``method`` changes state and ``given`` is not ``expected``."""
    if method.upper() in SAFE_METHODS:
        return
    if not given:
        raise CsrfRejected(f"missing {CSRF_HEADER} header", field=CSRF_HEADER)
    # Constant time: the comparison must not reveal how much of a guess was right.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected(f"{CSRF_HEADER} does not match the session", field=CSRF_HEADER)


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser session."""

    token_hash: str
    user_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


class SessionStore:
    """Sessions in ``gateway_sessions``, valid until their absolute expiry."""

    def __init__(self, pool: Pool, ttl: timedelta) -> None:
        self._pool = pool
        self._ttl = ttl

    async def create(self, user_id: str, now: datetime) -> tuple[str, Session]:
        """A new session for ``user_id``: the token for the cookie, and the session."""
        token = new_token()
        session = Session(
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=new_token(),
            created_at=now,
            expires_at=now + self._ttl,
        )
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO gateway_sessions "
                "(token_hash, user_id, csrf_token, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    session.token_hash,
                    session.user_id,
                    session.csrf_token,
                    session.created_at,
                    session.expires_at,
                ),
            )
        return token, session

    async def lookup(self, token: str, now: datetime) -> Session | None:
        """The live session of ``token``; None when unknown or expired."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT token_hash, user_id, csrf_token, created_at, expires_at "
                "FROM gateway_sessions WHERE token_hash = %s AND expires_at > %s",
                (token_hash(token), now),
            )
            row = await cur.fetchone()
        return Session(**row) if row is not None else None

    async def delete(self, hashed: str) -> None:
        """End the session (logout)."""
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM gateway_sessions WHERE token_hash = %s", (hashed,))

    async def purge_expired(self, now: datetime) -> int:
        """Delete sessions past their expiry; the number deleted."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM gateway_sessions WHERE expires_at <= %s", (now,))
            return cur.rowcount
