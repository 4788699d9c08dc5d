"""The canonical encoding of a log row and the hash chain over it.

A row's hash is ``SHA-256(prev_hash || canonical)`` where ``canonical`` is the compact
JSON array (object keys sorted, as ``orjson`` writes them with ``OPT_SORT_KEYS``)::

    [position, "event_id", "type", account_id|null, "occurred_at", payload, metadata]

with ``occurred_at`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``. The genesis row's
``prev_hash`` is 32 zero bytes.

Verification rebuilds ``canonical`` from the stored columns, and PostgreSQL's ``jsonb``
normalises what it stores: it reorders keys (sorting fixes that), reprints numbers
(``1e+16`` comes back as ``10000000000000000``, ``-0.0`` as ``0.0``) and cannot hold
``\\u0000``. `normalise_json` maps a value to the form that survives the trip, so the
bytes hashed on append are the bytes verification recomputes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import orjson

from libs.eventlog.errors import InvalidRecord

#: ``prev_hash`` of position 1.
GENESIS_HASH = bytes(32)

#: The integers orjson reads back as integers; beyond them it reads a float.
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
#: orjson writes floats of at least this magnitude in exponent form; an integral one
#: comes back from ``jsonb`` as a plain integer.
_EXPONENT_FORM = 1e16


class _Unfit(Exception):
    """A value `normalise_json` refuses; ``path`` collects the keys on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def normalise_json(value: object) -> object:
    """``value`` as plain JSON data that a ``jsonb`` round trip gives back unchanged.

    Accepts dicts with string keys, lists and tuples, strings, booleans, None, integers in
    [-2**63, 2**64 - 1] and finite floats. Floats that ``jsonb`` would hand back as integers
    become those integers, ``-0.0`` becomes ``0.0``. Anything else raises `InvalidRecord`
    naming where it sits: money belongs in strings (as the contracts' Decimals are), and a
    silent conversion would store something other than what the producer meant.
    """
    try:
        return _normalise(value)
    except _Unfit as unfit:
        where = "$" + "".join(reversed(unfit.path))
        raise InvalidRecord(f"{where}: {unfit.reason}") from None


def _normalise(value: object) -> object:
    # Ordered by how often each kind occurs in event payloads.
    if isinstance(value, str):
        if "\x00" in value:
            raise _Unfit("PostgreSQL jsonb cannot store the NUL character")
        return value
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unfit(f"object keys must be strings, got {key!r}")
            if "\x00" in key:
                raise _Unfit("PostgreSQL jsonb cannot store the NUL character in a key")
            try:
                out[key] = _normalise(item)
            except _Unfit as unfit:
                unfit.path.append(f".{key}")
                raise
        return out
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unfit(f"integer {value} is outside [-2**63, 2**64-1]; send it as a string")
        return value
    if isinstance(value, float):
        return _normalise_float(value)
    if isinstance(value, list | tuple):
        items: list[object] = []
        for index, item in enumerate(value):
            try:
                items.append(_normalise(item))
            except _Unfit as unfit:
                unfit.path.append(f"[{index}]")
                raise
        return items
    raise _Unfit(
        f"{type(value).__name__} is not plain JSON data (use str, int, float, bool, None, "
        "list or dict; Decimals as strings)"
    )


def _normalise_float(value: float) -> float | int:
    if not math.isfinite(value):
        raise _Unfit(f"{value} cannot be stored in jsonb; send it as a string")
    if value == 0.0:
        return 0.0  # jsonb's numeric has no negative zero
    if abs(value) >= _EXPONENT_FORM and _INT_MIN <= value <= _INT_MAX:
        # Integral (every double this large is); jsonb prints it as an integer, which
        # reads back as an int. Beyond 64 bits it reads back as this same float.
        return int(value)
    return value


def encode_json(value: object) -> bytes:
    """Compact JSON with sorted keys: the canonical form of a payload or metadata object.

    Expects data that `normalise_json` accepted, or that was read back from ``jsonb``.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidRecord(f"not encodable as JSON: {exc}") from None


def encode_stored_json(value: object) -> bytes:
    """`encode_json` of `normalise_json` of ``value``: the bytes append hashes and stores.

    Payloads are mostly strings and integers (money travels as strings), so the usual
    path is one quick scan and one orjson call; floats, other types and errors take the
    full `normalise_json` walk, which also names where a refused value sits.
    """
    if not _plain_without_floats(value):
        value = normalise_json(value)
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        normalise_json(value)  # raises InvalidRecord naming the value, where it can
        raise InvalidRecord(f"not encodable as JSON: {exc}") from None
    if b"\\u0000" in data:
        normalise_json(value)  # names the NUL; passes when the text only looks like one
    return data


_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})


def _plain_without_floats(value: object) -> bool:
    """True when ``value`` holds only dicts, lists and plain non-float leaves."""
    items: Iterable[object]
    if type(value) is dict:
        items = value.values()
    elif type(value) is list or type(value) is tuple:
        items = value
    else:
        return type(value) in _PLAIN_LEAVES
    for item in items:
        if type(item) not in _PLAIN_LEAVES and not _plain_without_floats(item):
            return False
    return True


def canonical_timestamp(moment: datetime) -> str:
    """``moment`` in UTC, ISO-8601 with microseconds (``2026-01-02T14:30:00.000000+00:00``)."""
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="microseconds")
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidRecord(f"timestamp {moment.isoformat()} has no timezone")
    if offset:
        # Wall-clock arithmetic: shifting by the offset gives UTC wall time without
        # the cost of a time zone conversion.
        moment = moment - offset
    return canonical_utc_timestamp(moment.replace(tzinfo=None))


def canonical_utc_timestamp(naive_utc: datetime) -> str:
    """`canonical_timestamp` of a naive datetime that already is UTC wall time.

    The verifier reads ``occurred_at AT TIME ZONE 'UTC'`` to skip per-row time zone
    conversion; the result is the same string.
    """
    return naive_utc.isoformat(timespec="microseconds") + "+00:00"


def canonical_tail(
    event_id: str,
    type_: str,
    account_id: str | None,
    occurred_at: str,
    payload_json: bytes,
    metadata_json: bytes,
) -> bytes:
    """Everything of the canonical encoding after the position.

    Split from the position so an appender can encode rows before it holds the lock
    that decides their positions.
    """
    return b"".join(
        (
            b',"',
            event_id.encode(),
            b'",',
            orjson.dumps(type_),
            b",",
            orjson.dumps(account_id),
            b',"',
            occurred_at.encode(),
            b'",',
            payload_json,
            b",",
            metadata_json,
            b"]",
        )
    )


def canonical_encoding(position: int, tail: bytes) -> bytes:
    """The canonical bytes of the row at ``position`` whose `canonical_tail` is ``tail``."""
    return b"[" + str(position).encode() + tail


def chain_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    """SHA-256 over the previous row's hash followed by this row's canonical bytes."""
    return hashlib.sha256(prev_hash + canonical).digest()


def row_hash(
    prev_hash: bytes,
    position: int,
    event_id: str,
    type_: str,
    account_id: str | None,
    occurred_at: datetime,
    payload: Mapping[str, object],
    metadata: Mapping[str, object],
) -> bytes:
    """The hash of one row from its decoded column values (the verifier's view)."""
    tail = canonical_tail(
        event_id,
        type_,
        account_id,
        canonical_timestamp(occurred_at),
        encode_json(payload),
        encode_json(metadata),
    )
    return chain_hash(prev_hash, canonical_encoding(position, tail))
