"""Users: names and argon2 password hashes in ``gateway_users``.

A user's id is their username, lower-cased: it is what ``AccountLinked.user_id`` and the
vault's links carry (``senex account link --user U`` names the same user). Hashing runs
in a worker thread: argon2 is deliberately slow (tens of milliseconds) and must not
stall the event loop that serves every other request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from libs.contracts.errors import InvalidState, NotFound, ValidationFailed
from services.gateway.db import Pool

USERNAME = re.compile(r"^[a-z0-9_.@+-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_HASHER = PasswordHasher()
#: Verified against when the username is unknown, so both answers take as long.
_DUMMY_HASH = _HASHER.hash("senex-no-such-user")


@dataclass(frozen=True, slots=True)
class User:
    """A user as the gateway knows them (never the hash)."""

    user_id: str
    created_at: datetime


def normalise_username(raw: str) -> str:
    """The user id for ``raw``: trimmed and lower-cased; VALIDATION_ERROR if not allowed."""
    name = raw.strip().lower()
    if not USERNAME.match(name):
        raise ValidationFailed(
            "username: 1-64 characters of letters, digits and _ . @ + -", field="username"
        )
    return name


def check_password(password: str) -> None:
    """VALIDATION_ERROR when ``password`` is too short or absurdly long."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password: at least {MIN_PASSWORD} characters", field="password")
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(f"password: at most {MAX_PASSWORD} characters", field="password")


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password`` (blocking, CPU-bound)."""
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (None: an unknown user, always False).

    Blocking and CPU-bound; the unknown-user path costs the same as a real check.
    """
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class UserStore:
    """Creates users and checks their passwords."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(self, username: str, password: str) -> User:
        """A new user; INVALID_STATE when the name is taken."""
        user_id = normalise_username(username)
        check_password(password)
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._pool.connection() as conn:
            try:
                cur = await conn.execute(
                    "INSERT INTO gateway_users (user_id, password_hash) VALUES (%s, %s) "
                    "RETURNING user_id, created_at",
                    (user_id, hashed),
                )
            except psycopg.errors.UniqueViolation:
                raise InvalidState(
                    f"user {user_id} exists already", details={"user_id": user_id}
                ) from None
            row = await cur.fetchone()
        assert row is not None
        return User(row["user_id"], row["created_at"])

    async def get(self, user_id: str) -> User:
        """The user (NOT_FOUND when unknown)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, created_at FROM gateway_users WHERE user_id = %s", (user_id,)
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return User(row["user_id"], row["created_at"])

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches; None otherwise (unknown name included)."""
        try:
            user_id = normalise_username(username)
        except ValidationFailed:
            user_id = None
        row = None
        if user_id is not None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT user_id, created_at, password_hash FROM gateway_users "
                    "WHERE user_id = %s",
                    (user_id,),
                )
                row = await cur.fetchone()
        stored = row["password_hash"] if row is not None else None
        if not await asyncio.to_thread(password_matches, stored, password[:MAX_PASSWORD]):
            return None
        assert row is not None
        if _HASHER.check_needs_rehash(row["password_hash"]):
            # Parameters were raised since this hash was made: upgrade it now.
            new_hash = await asyncio.to_thread(hash_password, password)
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE gateway_users SET password_hash = %s, updated_at = now() "
                    "WHERE user_id = %s",
                    (new_hash, row["user_id"]),
                )
        return User(row["user_id"], row["created_at"])
