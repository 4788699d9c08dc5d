"""Typed errors of the monitor's decision core."""

from __future__ import annotations


class MonitorCoreError(ValueError):
    """Base of the core's errors: inputs the decisions cannot be made from."""


class MissingQuote(MonitorCoreError):
    """A leg has no quote, so the spread cannot be valued (no guessing)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"no quote for {symbol!r}")
        self.symbol = symbol


class InvalidExit(MonitorCoreError):
    """An exit order cannot be built as asked (the message says why)."""


class InvalidFill(MonitorCoreError):
    """A closing fill does not close the spread it is booked against."""
