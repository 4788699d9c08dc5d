"""Values made into NATS subject tokens (shared by subjects and partitions)."""

from __future__ import annotations

import functools
import re

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
