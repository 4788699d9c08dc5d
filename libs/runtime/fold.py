"""The whole business stream folded into a service's state, in order, exactly once.

`StreamFold.start` reads the stream from its first message to the last one that existed
at that moment (catch-up) and then keeps reading new messages as they are stored,
calling the pure ``apply`` callback for each, in stream order. It reads through a
consumer of this process's own (a gapless `StreamReader`), so every replica of a
service folds every account, whichever partitions it reacts to: a replica that takes
over a partition already knows its accounts, and a command for an account is answered
from the same state whichever replica answers it.

A reaction to an event waits (`StreamFold.wait_for`) until the fold has passed the
event's stream position, so it is decided against a state that includes the event and
everything stored before it.

A service that publishes an event learns its stream position from the publish ack
(`fold_published`). When the fold stands right before that position, the event is folded
at once from the object in hand, and the reader passes over it when it arrives: still
exactly once and in stream order, without waiting for the message to come back. Else
(another event was stored between) the publisher waits for the reader as any reaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence

from libs.contracts.envelope import Event
from libs.contracts.errors import ContractError
from libs.contracts.registry import parse_event
from libs.runtime.bus import (
    BUSINESS_STREAM,
    Bus,
    BusError,
    PublishAck,
    StreamMessage,
    StreamSpec,
)
from libs.runtime.log import get_logger
from libs.runtime.tasks import cancel_and_wait

#: Pure fold of one event into the service's state.
Apply = Callable[[Event], None]

#: Messages fetched per batch.
FOLD_BATCH = 500
#: A consumer of a process that died without deleting it is removed by the server.
FOLD_CONSUMER_INACTIVE_S = 120.0


class StreamFold:
    """Folds one stream into a state: catch-up at start, then live, in stream order."""

    def __init__(
        self,
        bus: Bus,
        name: str,
        apply: Apply,
        *,
        stream: StreamSpec = BUSINESS_STREAM,
        batch: int = FOLD_BATCH,
    ) -> None:
        self._bus = bus
        self._apply = apply
        self._stream = stream
        self._batch = batch
        # Each process reads with a consumer of its own: replicas must not share a cursor.
        self._consumer = f"{name}-fold-{uuid.uuid4().hex[:12]}"
        self._reader = bus.reader(
            stream, self._consumer, inactive_threshold=FOLD_CONSUMER_INACTIVE_S
        )
        self._caught_up = False
        self._catch_up_end = 0
        self._last_sequence = 0
        self._advanced = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("fold", consumer=self._consumer)

    @property
    def caught_up(self) -> bool:
        """Whether the history that existed at start is folded."""
        return self._caught_up

    @property
    def catch_up_end(self) -> int:
        """The last stream sequence that existed at start (folded during catch-up)."""
        return self._catch_up_end

    @property
    def last_sequence(self) -> int:
        """The highest stream sequence folded so far (0 before any)."""
        return self._last_sequence

    @property
    def running(self) -> bool:
        """Whether the live fold is running."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Fold the history that exists now, then keep folding live; returns caught up."""
        info = await self._bus.js.stream_info(self._stream.name)
        self._catch_up_end = int(info.state.last_seq)
        await self._reader.start_after(0)
        while self._reader.next_sequence <= self._catch_up_end:
            await self._fold_batch(await self._reader.next_batch(self._batch))
        self._caught_up = True
        self._log.info("caught up", last_sequence=self._catch_up_end)
        self._task = asyncio.create_task(self._live(), name=f"fold-{self._consumer}")

    async def _live(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self._reader.next_batch(self._batch)
            except Exception as exc:  # NATS reconnecting or restarting: re-read from here
                self._log.warning("stream read failed; resuming", error=repr(exc))
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await self._reader.start_after(self._reader.next_sequence - 1)
                continue
            await self._fold_batch(batch)

    async def _fold_batch(self, batch: list[StreamMessage]) -> None:
        if not batch:
            return
        for message in batch:
            if message.sequence <= self._last_sequence:
                continue  # folded already by its publisher (`fold_published`)
            self._fold(message)
        # Waiters first (a publisher waiting for its own events): the ack can follow.
        async with self._advanced:
            self._advanced.notify_all()
        with contextlib.suppress(Exception):
            # A lost ack costs nothing: the reader never goes back over what it folded.
            await batch[-1].ack()

    def _fold(self, message: StreamMessage) -> None:
        try:
            event = parse_event(message.data)
        except ContractError as exc:
            # Not an event: the reaction consumers dead-letter it; the state skips it.
            self._log.warning("unreadable event skipped", sequence=message.sequence, error=str(exc))
            self._last_sequence = message.sequence
        else:
            self._fold_event(event, message.sequence)

    def _fold_event(self, event: Event, sequence: int) -> None:
        try:
            self._apply(event)
        except Exception:
            # A projection that cannot fold one event must not stop the fold of every
            # later one; the trace goes to the log for a fix.
            self._log.exception("event could not be folded", sequence=sequence, type=event.type)
        self._last_sequence = sequence

    async def fold_published(
        self, published: Sequence[tuple[Event, PublishAck]], timeout: float
    ) -> None:
        """Return once the fold has passed ``published`` (each event this process
        published, with its ack). Each one the fold stands right before is folded now;
        for the others it waits for the reader (see the module docstring). A duplicate's
        ack names the original message, which may differ from the object in hand (a
        decision re-made later): it is only waited for.
        """
        mine = [(e, ack) for e, ack in published if ack.stream == self._stream.name]
        if not mine:
            return  # another stream's events: this fold never sees them
        folded = False
        for event, ack in sorted(mine, key=lambda pair: pair[1].sequence):
            if self._caught_up and not ack.duplicate and ack.sequence == self._last_sequence + 1:
                self._fold_event(event, ack.sequence)
                folded = True
        if folded:
            async with self._advanced:
                self._advanced.notify_all()
        await self.wait_for(max(ack.sequence for _, ack in mine), timeout)

    async def wait_for(self, sequence: int, timeout: float) -> None:
        """Return once the fold has passed ``sequence``; `BusError` after ``timeout``."""
        if self._last_sequence >= sequence:
            return
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self._last_sequence >= sequence)
        except TimeoutError as exc:
            raise BusError(
                f"state has folded up to {self._last_sequence}, not yet {sequence}"
            ) from exc

    async def stop(self) -> None:
        """Stop folding and remove this process's consumer."""
        self._stopping.set()
        if self._task is not None:
            # Nothing is lost by cutting a fetch short: the consumer is this process's
            # own and goes with it (a shared consumer's stop must wait for its fetch).
            await cancel_and_wait([self._task])
            self._task = None
        await self._reader.close()
        # Already gone, or NATS is away: the server removes an inactive consumer itself.
        with contextlib.suppress(Exception):
            await self._bus.js.delete_consumer(self._stream.name, self._consumer)
