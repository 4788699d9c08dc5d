"""Catch up, then follow: how a service builds its projection from the business stream.

At `Follower.start` the follower reads the business stream from its first message to
the last one that existed at that moment, folding each event with the pure ``apply``
callback and nothing else: history is never re-enacted. It then follows live through a
durable consumer (`Bus.consume`: explicit ack, redelivery with backoff, dead letters),
calling ``apply`` and then the async ``react`` (side effects such as an automatic
approval) for each new event.

Reactions are at least once: the durable consumer remembers what was acknowledged,
so an event that arrived while the service was down (or whose reaction failed) is
reacted to after the restart, against the fully caught-up state. ``react`` must
therefore decide from the current state (is the suggestion still pending?) so a second
delivery does nothing. Folding is exactly once per process: events inside the
catch-up range are not folded again when the durable consumer redelivers them, and an
event whose reaction failed is not folded again on its redelivery. Across processes
the projections themselves ignore an event id they have applied, which also covers an
event the service published and folded before it came back through the stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Awaitable, Callable

import nats.js.errors
from nats.js import api

from libs.contracts.envelope import Event
from libs.contracts.errors import ContractError
from libs.contracts.registry import parse_event
from libs.runtime.bus import Bus, Consumer, ConsumerSpec, Delivery
from libs.runtime.log import get_logger

#: Pure fold of one event into the service's state.
Apply = Callable[[Event], None]
#: Side effects of one live event, run after it is folded.
React = Callable[[Event], Awaitable[None]]

#: Messages fetched per catch-up batch.
CATCH_UP_BATCH = 500


async def _nothing(_: Event) -> None:
    return None


class Follower:
    """Folds the business stream into a service's state: catch-up, then live."""

    def __init__(
        self,
        bus: Bus,
        durable: str,
        apply: Apply,
        react: React = _nothing,
        *,
        spec: ConsumerSpec | None = None,
    ) -> None:
        self._bus = bus
        self._apply = apply
        self._react = react
        self._spec = spec if spec is not None else ConsumerSpec(durable=durable)
        self._caught_up = False
        self._catch_up_end = 0
        self._last_sequence = 0
        # Sequences folded live whose reaction has not succeeded yet: a redelivery of
        # one of them is reacted to again but not folded again.
        self._awaiting_reaction: set[int] = set()
        self._consumer: Consumer | None = None
        self._log = get_logger("follower", consumer=self._spec.durable)

    @property
    def caught_up(self) -> bool:
        """Whether the history that existed at start is folded (for /health)."""
        return self._caught_up

    @property
    def last_sequence(self) -> int:
        """The highest stream sequence folded so far (0 before any)."""
        return self._last_sequence

    @property
    def catch_up_end(self) -> int:
        """The last stream sequence that existed at start (folded during catch-up)."""
        return self._catch_up_end

    @property
    def running(self) -> bool:
        """Whether the live consumer is running."""
        return self._consumer is not None and self._consumer.running

    async def start(self) -> None:
        """Catch up with the stream, then start following it live; returns once caught up."""
        info = await self._bus.js.stream_info(self._spec.stream.name)
        self._catch_up_end = int(info.state.last_seq)
        await self._catch_up(self._catch_up_end)
        self._caught_up = True
        self._log.info("caught up", last_sequence=self._catch_up_end)
        await self._ensure_durable()
        self._consumer = await self._bus.consume(self._spec, self._handle)

    async def _catch_up(self, end: int) -> None:
        if end == 0:
            return
        # A consumer of this instance's own, removed once done: replicas catching up at
        # the same time must not share a cursor.
        name = f"{self._spec.durable}-catchup-{uuid.uuid4().hex[:12]}"
        reader = self._bus.reader(self._spec.stream, name)
        await reader.start_after(0)
        try:
            while reader.next_sequence <= end:
                batch = await reader.next_batch(CATCH_UP_BATCH)
                for message in batch:
                    if message.sequence > end:
                        break
                    self._fold(message.data, message.sequence)
                if batch:
                    await batch[-1].ack()
        finally:
            await reader.close()
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._bus.js.delete_consumer(self._spec.stream.name, name)

    def _fold(self, data: bytes, sequence: int) -> None:
        try:
            event = parse_event(data)
        except ContractError as exc:
            # The live consumer dead-letters such a message; history just skips it.
            self._log.warning("unreadable event skipped", sequence=sequence, error=str(exc))
        else:
            self._apply(event)
        self._last_sequence = max(self._last_sequence, sequence)

    async def _ensure_durable(self) -> None:
        """Create the durable consumer, when new, just after the caught-up history.

        A service's first start must not react to events that predate it; an existing
        durable resumes from its own acknowledgements.
        """
        stream = self._spec.stream.name
        try:
            await self._bus.js.consumer_info(stream, self._spec.durable)
        except nats.js.errors.NotFoundError:
            config = dataclasses.replace(
                self._spec.config(),
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._catch_up_end + 1,
            )
            await self._bus.js.add_consumer(stream, config)

    async def _handle(self, event: Event, delivery: Delivery) -> None:
        sequence = delivery.stream_sequence
        if sequence > self._catch_up_end and sequence not in self._awaiting_reaction:
            self._apply(event)
            self._last_sequence = max(self._last_sequence, sequence)
            self._awaiting_reaction.add(sequence)
        try:
            await self._react(event)
        except Exception:
            if delivery.num_delivered >= self._spec.max_deliver:
                self._awaiting_reaction.discard(sequence)  # dead-lettered: never back
            raise
        self._awaiting_reaction.discard(sequence)

    async def stop(self) -> None:
        """Stop following (the durable consumer stays for the next start)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
