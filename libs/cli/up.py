"""`senex up`: start the whole system locally (paper mode)."""

from __future__ import annotations


def up() -> None:
    """Start the servers and every service; stay up until Ctrl-C."""
    raise SystemExit("not wired yet")
