"""Catch up, then follow: a service's state from the business stream, and its reactions.

Two readers, kept apart on purpose:

* the fold (`StreamFold`): this process reads the whole stream in order, from its first
  message, and folds each event with the pure ``apply`` callback: the history that
  existed at start (catch-up, never re-enacted), then every new event;
* the reactions: durable consumers shared by every replica of the service, calling the
  async ``react`` (side effects such as an automatic approval) for each live event once
  the fold has passed it. A service that runs as one replica reacts through one durable
  consumer over the whole stream; a partitioned service reacts through one durable
  consumer per partition it owns (`react_to` / `stop_reacting`, driven by its leases),
  so one account's events are reacted to in stream order by one replica at a time.

Reactions are at least once: a durable consumer remembers what was acknowledged, so an
event that arrived while the service was down (or whose reaction failed, or whose
replica died) is reacted to after the restart or by the replica that takes over,
against the fully caught-up state. ``react`` must therefore decide from the current
state (is the suggestion still pending?) so a second delivery does nothing. Folding is
exactly once per process: a redelivered reaction never folds again. Across processes
the projections themselves ignore an event id they have applied, which also covers an
event the service published and folded before it came back through the stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import nats.js.errors
from nats.js import api

from libs.contracts.envelope import Event
from libs.contracts.subjects import partition_events_filter
from libs.runtime.bus import Bus, Consumer, ConsumerSpec, Delivery, PublishAck
from libs.runtime.fold import Apply, StreamFold

__all__ = ["Apply", "Follower", "React"]

#: Side effects of one live event, run after it is folded.
React = Callable[[Event], Awaitable[None]]


async def _nothing(_: Event) -> None:
    return None


class Follower:
    """Folds the business stream into a service's state and reacts to live events."""

    def __init__(
        self,
        bus: Bus,
        durable: str,
        apply: Apply,
        react: React = _nothing,
        *,
        spec: ConsumerSpec | None = None,
    ) -> None:
        """``durable`` names the reaction consumers (``<durable>-p<n>`` per partition)."""
        self._bus = bus
        self._react = react
        self._spec = spec if spec is not None else ConsumerSpec(durable=durable)
        self._fold = StreamFold(bus, self._spec.durable, apply, stream=self._spec.stream)
        self._consumers: dict[int | None, Consumer] = {}

    @property
    def caught_up(self) -> bool:
        """Whether the history that existed at start is folded (for /health)."""
        return self._fold.caught_up

    @property
    def last_sequence(self) -> int:
        """The highest stream sequence folded so far (0 before any)."""
        return self._fold.last_sequence

    @property
    def catch_up_end(self) -> int:
        """The last stream sequence that existed at start (folded during catch-up)."""
        return self._fold.catch_up_end

    @property
    def running(self) -> bool:
        """Whether the fold and every reaction consumer run."""
        return self._fold.running and all(c.running for c in self._consumers.values())

    @property
    def reacting_to(self) -> frozenset[int]:
        """The partitions this process reacts to (empty when it reacts to all at once)."""
        return frozenset(p for p in self._consumers if p is not None)

    async def start(self, *, react_to_all: bool = True) -> None:
        """Catch up, follow live, and (``react_to_all``) react to every account's events."""
        await self._fold.start()
        if react_to_all:
            await self._start_reacting(None, self._spec)

    async def fold_published(
        self, published: Sequence[tuple[Event, PublishAck]], timeout: float
    ) -> None:
        """Return once the state includes the events this process just published."""
        await self._fold.fold_published(published, timeout)

    async def wait_folded(self, sequence: int, timeout: float) -> None:
        """Return once the state includes stream position ``sequence``."""
        await self._fold.wait_for(sequence, timeout)

    async def react_to(self, partition: int) -> None:
        """Start reacting to the events of ``partition`` (this replica now owns it)."""
        spec = dataclasses.replace(
            self._spec,
            durable=f"{self._spec.durable}-p{partition}",
            filter_subjects=(partition_events_filter(partition),),
        )
        await self._start_reacting(partition, spec)

    async def stop_reacting(self, partition: int) -> None:
        """Stop reacting to ``partition`` after the event in hand (its cursor stays)."""
        consumer = self._consumers.pop(partition, None)
        if consumer is not None:
            await consumer.stop()

    async def _start_reacting(self, key: int | None, spec: ConsumerSpec) -> None:
        if key in self._consumers:
            return
        await self._ensure_durable(spec)
        self._consumers[key] = await self._bus.consume(spec, self._handle)

    async def _ensure_durable(self, spec: ConsumerSpec) -> None:
        """Create a new durable consumer just after the history this process caught up on.

        A service's first start must not react to events that predate it; an existing
        durable resumes from its own acknowledgements. A partition's first durable of a
        service that used to react through one durable over everything starts where that
        one stopped acknowledging, so nothing that arrived across the upgrade is missed.
        """
        stream = spec.stream.name
        try:
            await self._bus.js.consumer_info(stream, spec.durable)
        except nats.js.errors.NotFoundError:
            start = self._fold.catch_up_end + 1
            if spec.durable != self._spec.durable:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    floor = (await self._bus.js.consumer_info(stream, self._spec.durable)).ack_floor
                    if floor is not None:
                        start = min(start, floor.stream_seq + 1)
            config = dataclasses.replace(
                spec.config(),
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
            )
            await self._bus.js.add_consumer(stream, config)

    async def _handle(self, event: Event, delivery: Delivery) -> None:
        # Decide against a state that includes this event and everything before it;
        # if the fold lags too long, the event comes back (nak) rather than wait forever.
        await self._fold.wait_for(delivery.stream_sequence, timeout=self._spec.ack_wait / 2)
        await self._react(event)

    async def stop(self) -> None:
        """Stop reacting and folding (the durable consumers stay for the next start)."""
        for key in list(self._consumers):
            await self._consumers.pop(key).stop()
        await self._fold.stop()
