"""psycopg adapters for ``jsonb``: pre-encoded bytes in, orjson out.

The log encodes a payload once (the canonical bytes are hashed and stored alike), so
COPY must take those bytes as they are rather than encode the object again; reads
decode with orjson, the decoder the canonical encoding assumes (see canonical.py).
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import DataError
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.postgres import types as builtin_types
from psycopg.pq import Format

#: ``jsonb`` is built in, so its oid is fixed.
JSONB_OID = builtin_types["jsonb"].oid
#: The first byte of binary jsonb: its format version.
JSONB_VERSION = 1


class JsonbBytesDumper(Dumper):
    """Writes already-encoded JSON (bytes) as binary ``jsonb``; for COPY with set_types."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> Buffer:
        return bytes((JSONB_VERSION,)) + bytes(obj)


class JsonbOrjsonLoader(Loader):
    """Reads binary ``jsonb`` with orjson (straight from the buffer, without a copy)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        view = memoryview(data)
        if not view or view[0] != JSONB_VERSION:
            raise DataError("unknown jsonb binary format")
        return orjson.loads(view[1:])


def use_jsonb_bytes_dumper(context: AdaptContext) -> None:
    """Make ``context`` (a cursor) dump ``jsonb`` columns of a typed COPY from bytes."""
    context.adapters.register_dumper(None, JsonbBytesDumper)


def use_jsonb_loader(context: AdaptContext, loader: type[Loader]) -> None:
    """Make ``context`` (a cursor) load binary ``jsonb`` with ``loader``."""
    context.adapters.register_loader(JSONB_OID, loader)
