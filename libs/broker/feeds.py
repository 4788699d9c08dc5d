"""An account's notification stream as a service holds it: stream, consumer, reconnects."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from libs.broker.streaming import AccountStream


@dataclass
class AccountFeed:
    """One account's streamer, the task consuming it, and the reconnects already handled.

    Notifications sent while the socket was down are lost (see `AccountStream`), so a
    service re-reads the broker's REST state after each reconnect: `reconnected` tells it
    when, once per batch of reconnects.
    """

    stream: AccountStream
    task: asyncio.Task[None]
    reconnects_seen: int = 0

    def reconnected(self) -> bool:
        """True when the stream reconnected since the last call (then re-read REST)."""
        reconnects = self.stream.health().reconnects
        if reconnects > self.reconnects_seen:
            self.reconnects_seen = reconnects
            return True
        return False
