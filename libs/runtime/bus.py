"""The event bus: NATS JetStream for events, NATS request-reply for commands.

Services use this module and never import ``nats``. It gives them:

* streams declared idempotently (business events, market data, dead letters);
* `Bus.publish`: one event, validated by its contract, ``Nats-Msg-Id = event_id`` (a
  re-publish inside the duplicate window is dropped by the server), ack awaited;
* `Bus.publish_many`: the pipelined path (many publishes in flight, acks gathered);
* `Bus.consume`: a durable pull consumer with explicit ack, bounded redelivery with
  backoff, and a dead-letter subject after the last delivery, so one poison message
  never blocks the consumer;
* `Bus.request` / `Bus.serve`: typed request-reply (reply model or raised `SenexError`);
* `Bus.close`: stop consumers after their current message, then drain the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext

from libs.contracts.commands import Command, Reply
from libs.contracts.envelope import Event
from libs.contracts.errors import (
    ErrorKind,
    ErrorReply,
    InternalError,
    SenexError,
    ServiceUnavailable,
)
from libs.contracts.partitions import PARTITIONED_SERVICES
from libs.contracts.registry import (
    command_for,
    encode_command,
    encode_event,
    encode_reply,
    event_model,
    parse_command,
    parse_event,
    parse_reply,
)
from libs.contracts.subjects import (
    ALL_ACCOUNT_EVENTS,
    ALL_MARKET_DATA,
    DEAD_LETTER_PREFIX,
    command_filter,
    event_subject,
    subject_for_command,
    token,
)
from libs.runtime.log import correlation, get_logger
from libs.runtime.metrics import ServiceMetrics
from libs.runtime.settings import Settings

R = TypeVar("R", bound=Reply)

#: How long a command is retried while nobody answers (a partition changing hands).
NO_RESPONDERS_GRACE_S = 2.0
NO_RESPONDERS_RETRY_S = 0.1
#: How long one publish attempt waits for its ack before it is sent again.
PUBLISH_ATTEMPT_TIMEOUT_S = 5.0
#: Header carrying the event id; JetStream drops a second message with the same id.
MSG_ID = api.Header.MSG_ID
#: Headers a dead-lettered message carries so an operator can tell what went wrong.
DLQ_SUBJECT_HEADER = "Senex-Original-Subject"
DLQ_ERROR_HEADER = "Senex-Error"
DLQ_DELIVERIES_HEADER = "Senex-Deliveries"
DLQ_SEQUENCE_HEADER = "Senex-Stream-Sequence"


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream the platform needs."""

    name: str
    subjects: tuple[str, ...]
    storage: api.StorageType
    max_age: timedelta | None
    duplicate_window: timedelta

    def config(self, replicas: int = 1) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.name,
            num_replicas=replicas,
            subjects=list(self.subjects),
            storage=self.storage,
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            max_age=self.max_age.total_seconds() if self.max_age else None,
            duplicate_window=self.duplicate_window.total_seconds(),
        )


#: Business events: kept on disk for good; the audit recorder copies them to Postgres.
BUSINESS_STREAM = StreamSpec(
    name="SENEX_EVENTS",
    subjects=(ALL_ACCOUNT_EVENTS,),
    storage=api.StorageType.FILE,
    max_age=None,
    duplicate_window=timedelta(minutes=5),
)
#: Market data: high volume, short-lived; decisions embed the quotes they used.
MARKET_STREAM = StreamSpec(
    name="SENEX_MARKET",
    subjects=(ALL_MARKET_DATA,),
    storage=api.StorageType.FILE,
    max_age=timedelta(minutes=15),
    duplicate_window=timedelta(minutes=2),
)
#: Poison messages parked by service consumers, for an operator to inspect.
DEAD_LETTER_STREAM = StreamSpec(
    name="SENEX_DEAD_LETTERS",
    subjects=(f"{DEAD_LETTER_PREFIX}.>",),
    storage=api.StorageType.FILE,
    max_age=timedelta(days=30),
    duplicate_window=timedelta(minutes=5),
)
STREAMS: tuple[StreamSpec, ...] = (BUSINESS_STREAM, MARKET_STREAM, DEAD_LETTER_STREAM)


@dataclass(frozen=True)
class PublishAck:
    """The server's receipt: the stream sequence, and whether it was a duplicate."""

    stream: str
    sequence: int
    duplicate: bool


@dataclass(frozen=True)
class Delivery:
    """How a message reached a handler: stream position and delivery count."""

    stream_sequence: int
    num_delivered: int
    subject: str


#: A consumer's handler; raising makes the message be redelivered (then dead-lettered).
EventHandler = Callable[[Event, Delivery], Awaitable[None]]
#: Called with the subject and data of a plain (core NATS) message.
MessageHandler = Callable[[str, bytes], Awaitable[None]]
#: What `Bus.subscribe` and `Bus.serve` return: a handle only for `unsubscribe` / `unserve`.
BusSubscription = Subscription


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer of one stream."""

    durable: str
    stream: StreamSpec = BUSINESS_STREAM
    filter_subjects: tuple[str, ...] = (ALL_ACCOUNT_EVENTS,)
    #: Deliveries before the message goes to the dead-letter subject.
    max_deliver: int = 5
    #: Delay before redelivery n (the last value repeats).
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    #: Time the server waits for an ack before redelivering (e.g. the process died).
    ack_wait: float = 30.0
    batch: int = 100
    #: Start from the stream's beginning (a new projection) or only new messages.
    deliver_all: bool = True

    def __post_init__(self) -> None:
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be at least 1")
        if not self.backoff:
            raise ValueError("backoff needs at least one delay")

    def delay_after(self, deliveries: int) -> float:
        """Redelivery delay after ``deliveries`` failed attempts."""
        return self.backoff[min(deliveries, len(self.backoff)) - 1]

    def config(self) -> api.ConsumerConfig:
        # The server redelivers without limit: the consumer itself dead-letters at
        # max_deliver (even when a handler crashed the process before it could nak),
        # so no message is ever silently dropped by a server-side limit.
        policy = api.DeliverPolicy.ALL if self.deliver_all else api.DeliverPolicy.NEW
        subjects = list(self.filter_subjects)
        return api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=policy,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
            max_ack_pending=max(1000, self.batch * 4),
        )


async def fetch_available(
    sub: JetStreamContext.PullSubscription, batch: int, timeout: float
) -> list[Msg]:
    """Up to ``batch`` messages, returned as soon as one is there; TimeoutError if none.

    nats-py's ``fetch(n)`` with nothing stored yet waits out its whole timeout for n
    messages even after the first has arrived, which would delay every reaction by up
    to the timeout. A fetch of one returns with the first message; what the server says
    is pending behind it is then taken at once.
    """
    first = await sub.fetch(1, timeout=timeout)
    pending = first[-1].metadata.num_pending if first else 0
    if batch <= 1 or pending <= 0:
        return first
    try:
        return first + await sub.fetch(min(batch - 1, pending), timeout=timeout)
    except (TimeoutError, nats.errors.TimeoutError):
        return first  # taken meanwhile (a redelivery elsewhere): the next fetch goes on


def dead_letter_subject(durable: str) -> str:
    """Where consumer ``durable`` parks the messages it gave up on."""
    return f"{DEAD_LETTER_PREFIX}.{token(durable)}"


class BusError(SenexError):
    """The bus could not do what was asked (no stream, publish not acknowledged)."""

    KIND = ErrorKind.SERVICE_UNAVAILABLE


class Consumer:
    """A running pull consumer: fetches batches, dispatches, acks, dead-letters."""

    def __init__(
        self,
        bus: Bus,
        spec: ConsumerSpec,
        handler: EventHandler,
        subscription: JetStreamContext.PullSubscription,
    ) -> None:
        self.spec = spec
        self._bus = bus
        self._handler = handler
        self._sub = subscription
        self._stopping = asyncio.Event()
        self._log = get_logger("bus.consumer", consumer=spec.durable)
        self._task = asyncio.create_task(self._run(), name=f"consumer-{spec.durable}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = await fetch_available(self._sub, self.spec.batch, 1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                return
            except Exception as exc:  # reconnecting or server restarting: retry soon
                self._log.warning("fetch failed; retrying", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                try:
                    await self._dispatch(msg)
                except Exception:
                    # Acking, naking or dead-lettering failed (NATS went away): the
                    # message stays unacknowledged and comes back after ack_wait.
                    self._log.exception("message left for redelivery")

    async def _dispatch(self, msg: Msg) -> None:
        meta = msg.metadata
        delivery = Delivery(
            stream_sequence=meta.sequence.stream,
            num_delivered=meta.num_delivered,
            subject=msg.subject,
        )
        metrics = self._bus.metrics
        if metrics is not None:
            metrics.consumer_lag.labels(metrics.service, self.spec.durable).set(meta.num_pending)
        if delivery.num_delivered > self.spec.max_deliver:
            # Delivered again although we gave up (the process died mid-handler): park it.
            await self._dead_letter(msg, delivery, "exceeded max deliveries")
            return
        started = time.perf_counter()
        type_name = "unparsed"
        try:
            event = parse_event(msg.data)
            type_name = event.type
            with correlation(event.correlation_id, event_type=event.type):
                await self._handler(event, delivery)
        except Exception as exc:
            self._count(type_name, started, "error")
            if metrics is not None:
                kind = exc.kind.value if isinstance(exc, SenexError) else "INTERNAL_ERROR"
                metrics.error(kind)
            if delivery.num_delivered >= self.spec.max_deliver:
                await self._dead_letter(msg, delivery, f"{type(exc).__name__}: {exc}")
            else:
                self._log.warning(
                    "handler failed; will redeliver",
                    stream_sequence=delivery.stream_sequence,
                    delivery=delivery.num_delivered,
                    error=repr(exc),
                )
                await msg.nak(delay=self.spec.delay_after(delivery.num_delivered))
            return
        await msg.ack()
        self._count(type_name, started, "ok")

    def _count(self, type_name: str, started: float, outcome: str) -> None:
        if self._bus.metrics is not None:
            self._bus.metrics.handled(type_name, time.perf_counter() - started, outcome)

    async def _dead_letter(self, msg: Msg, delivery: Delivery, reason: str) -> None:
        headers = {
            DLQ_SUBJECT_HEADER: msg.subject,
            DLQ_ERROR_HEADER: reason[:1000],
            DLQ_DELIVERIES_HEADER: str(delivery.num_delivered),
            DLQ_SEQUENCE_HEADER: str(delivery.stream_sequence),
            MSG_ID: f"{self.spec.stream.name}:{self.spec.durable}:{delivery.stream_sequence}",
        }
        await self._bus.js.publish(
            dead_letter_subject(self.spec.durable), msg.data, headers=headers
        )
        # Acked only once the dead letter is stored: a crash in between redelivers it.
        await msg.term()
        if self._bus.metrics is not None:
            self._bus.metrics.dead_letters.labels(
                self._bus.metrics.service, self.spec.durable
            ).inc()
        self._log.error(
            "message dead-lettered",
            stream_sequence=delivery.stream_sequence,
            deliveries=delivery.num_delivered,
            reason=reason,
        )

    async def stop(self) -> None:
        """Finish the message in hand, then stop fetching."""
        self._stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()

    @property
    def running(self) -> bool:
        return not self._task.done()


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One raw message of a stream, as a recorder copies it."""

    sequence: int
    subject: str
    data: bytes
    msg_id: str | None
    stored_at: datetime
    #: Messages after this one not yet delivered (the reader's lag).
    pending: int
    #: Acknowledge this message and every earlier one (ack policy ALL).
    ack: Callable[[], Awaitable[None]] = field(repr=False, compare=False)


class StreamReader:
    """Reads a stream in order from a position, through one durable consumer.

    For a recorder whose store is the cursor: it asks to start after the position it
    last committed, takes gapless batches in stream order, and acknowledges through
    what it committed (ack policy ALL: ``batch[-1].ack()``, one ack per batch). If the
    stream ever hands it something other than the next sequence (after a crash,
    unacknowledged messages come back only after ``ack_wait``), the consumer is
    recreated at the next wanted sequence, so the reader never waits on a redelivery
    timer nor skips a message.
    """

    def __init__(
        self,
        bus: Bus,
        stream: StreamSpec,
        durable: str,
        *,
        ack_wait: float,
        inactive_threshold: float | None = None,
    ) -> None:
        self._bus = bus
        self._stream = stream
        self._durable = durable
        self._ack_wait = ack_wait
        self._inactive_threshold = inactive_threshold
        self._sub: JetStreamContext.PullSubscription | None = None
        self._next = 1

    @property
    def next_sequence(self) -> int:
        """The sequence the next batch starts with."""
        return self._next

    async def start_after(self, sequence: int) -> None:
        """(Re)create the consumer so the next message delivered is ``sequence + 1``."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._bus.js.delete_consumer(self._stream.name, self._durable)
        config = api.ConsumerConfig(
            durable_name=self._durable,
            ack_policy=api.AckPolicy.ALL,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=sequence + 1,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            max_ack_pending=-1,
            inactive_threshold=self._inactive_threshold,
        )
        await self._bus.js.add_consumer(self._stream.name, config)
        self._sub = await self._bus.js.pull_subscribe_bind(
            durable=self._durable, stream=self._stream.name
        )
        self._next = sequence + 1

    async def next_batch(self, size: int, timeout: float = 1.0) -> list[StreamMessage]:
        """Up to ``size`` messages continuing the last batch; empty when none came."""
        if self._sub is None:
            raise BusError("StreamReader.start_after must be called first")
        try:
            msgs = await fetch_available(self._sub, size, timeout)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        batch: list[StreamMessage] = []
        for msg in msgs:
            meta = msg.metadata
            seq = meta.sequence.stream
            if seq < self._next:
                continue  # a redelivery of something already taken
            if seq > self._next:
                # Out of order: re-read from the first missing message.
                await self.start_after(self._next - 1)
                break
            headers = msg.headers or {}
            batch.append(
                StreamMessage(
                    sequence=seq,
                    subject=msg.subject,
                    data=msg.data,
                    msg_id=headers.get(MSG_ID),
                    stored_at=meta.timestamp,
                    pending=meta.num_pending,
                    ack=msg.ack,
                )
            )
            self._next = seq + 1
        return batch

    async def close(self) -> None:
        """Stop reading (the durable consumer stays for the next start)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


CommandHandler = Callable[[Command], Awaitable[Reply]]


@dataclass
class Bus:
    """A connection to NATS with JetStream, as the services see it."""

    nc: NatsClient
    js: JetStreamContext
    metrics: ServiceMetrics | None = None
    #: Copies of each stream (and of the lease bucket) JetStream keeps.
    stream_replicas: int = 1
    consumers: list[Consumer] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        *,
        metrics: ServiceMetrics | None = None,
        connect_timeout: float = 5.0,
        stream_replicas: int | None = None,
    ) -> Bus:
        """Connect (reconnecting forever after the first success) and declare streams.

        ``url`` may list several servers of a cluster, comma-separated. Streams get
        ``stream_replicas`` copies (default: the ``SENEX_STREAM_REPLICAS`` setting).
        """
        log = get_logger("bus", client=name)

        async def on_disconnect() -> None:
            log.warning("nats disconnected")

        async def on_reconnect() -> None:
            log.info("nats reconnected")

        async def on_error(exc: Exception) -> None:
            log.warning("nats error", error=repr(exc))

        nc = await nats.connect(
            [server.strip() for server in url.split(",") if server.strip()],
            name=name,
            connect_timeout=connect_timeout,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
            pending_size=64 * 1024 * 1024,
        )
        if stream_replicas is None:
            stream_replicas = Settings().stream_replicas
        bus = cls(
            nc=nc,
            js=nc.jetstream(timeout=10.0),
            metrics=metrics,
            stream_replicas=stream_replicas,
        )
        await bus.ensure_streams()
        return bus

    async def ensure_streams(self, streams: Iterable[StreamSpec] = STREAMS) -> None:
        """Create the streams, or bring an existing one's config up to date."""
        for spec in streams:
            config = spec.config(self.stream_replicas)
            try:
                await self.js.stream_info(spec.name)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
            else:
                await self.js.update_stream(config)

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    async def flush(self, timeout: float = 10.0) -> None:
        """Round trip to the server behind everything sent so far, subscriptions included.

        nats-py's own ``flush()`` writes its PING straight to the socket while SUBs wait
        in the client's buffer for its flusher task, so the PONG can come back before
        the server has a subscription: a command or message sent the moment a service
        says "serving" could reach nobody. A request is buffered like the SUBs, behind
        them, and the server handles one connection's protocol in order, so its answer
        (no responders, on an inbox nobody serves) proves they are in place.
        """
        with contextlib.suppress(nats.errors.NoRespondersError):
            await self.nc.request(self.nc.new_inbox(), b"", timeout=timeout)

    # --- events ---------------------------------------------------------------------

    @staticmethod
    def _outgoing(event: Event) -> tuple[str, bytes, dict[str, str]]:
        # Contract models validate on construction and are frozen; what is left to check
        # is that this is the registered contract for its type, not a look-alike class.
        if event_model(event.type) is not type(event):
            raise BusError(
                f"{type(event).__name__} is not the registered contract for {event.type!r}",
                kind=ErrorKind.VALIDATION_ERROR,
            )
        return event_subject(event), encode_event(event), {MSG_ID: str(event.event_id)}

    async def publish(self, event: Event, *, timeout: float = 30.0) -> PublishAck:
        """Publish one event and wait for the stream's ack.

        An unanswered publish (NATS or JetStream restarting) is sent again with the
        same ``Nats-Msg-Id`` until acknowledged or ``timeout`` passes: if the first
        copy was stored after all, the server drops the second.
        """
        return (await self.publish_many([event], timeout=timeout))[0]

    async def publish_many(
        self, events: Sequence[Event], *, timeout: float = 30.0
    ) -> list[PublishAck]:
        """Publish many events with their acks in flight together; acks in event order.

        Unacknowledged publishes are retried with the same message id (see `publish`),
        so the caller gets either every ack or a `BusError`, never a silent gap.
        """
        outgoing = [self._outgoing(event) for event in events]
        acks: list[PublishAck | None] = [None] * len(outgoing)
        deadline = time.monotonic() + timeout
        pending = list(range(len(outgoing)))
        attempt_timeout = PUBLISH_ATTEMPT_TIMEOUT_S
        while pending:
            futures: dict[int, asyncio.Future[api.PubAck]] = {}
            try:
                for i in pending:
                    subject, data, headers = outgoing[i]
                    futures[i] = await self.js.publish_async(subject, data, headers=headers)
            except (nats.errors.ConnectionClosedError, nats.errors.OutboundBufferLimitError):
                raise
            except nats.errors.Error:
                pass  # reconnecting: whatever was not sent is retried below
            if futures:
                await asyncio.wait(futures.values(), timeout=attempt_timeout)
            still: list[int] = []
            for i in pending:
                future = futures.get(i)
                if future is not None and future.done() and future.exception() is None:
                    ack = future.result()
                    acks[i] = PublishAck(ack.stream, ack.seq, bool(ack.duplicate))
                else:
                    if future is not None and not future.done():
                        future.cancel()
                    still.append(i)
            pending = still
            if pending and time.monotonic() > deadline:
                raise BusError(f"{len(pending)} of {len(events)} publishes not acknowledged")
            if pending:
                await asyncio.sleep(0.1)
        return [ack for ack in acks if ack is not None]

    async def consume(self, spec: ConsumerSpec, handler: EventHandler) -> Consumer:
        """Start a durable pull consumer that hands each event to ``handler``."""
        sub = await self.js.pull_subscribe_bind(
            durable=await self._ensure_consumer(spec), stream=spec.stream.name
        )
        consumer = Consumer(self, spec, handler, sub)
        self.consumers.append(consumer)
        return consumer

    def reader(
        self,
        stream: StreamSpec,
        durable: str,
        *,
        ack_wait: float = 300.0,
        inactive_threshold: float | None = None,
    ) -> StreamReader:
        """A `StreamReader` over ``stream`` through durable consumer ``durable``.

        ``inactive_threshold``: seconds without a reader after which the server removes
        the consumer (for a per-process reader whose process may die without cleaning up).
        """
        return StreamReader(
            self, stream, durable, ack_wait=ack_wait, inactive_threshold=inactive_threshold
        )

    async def _ensure_consumer(self, spec: ConsumerSpec) -> str:
        try:
            await self.js.consumer_info(spec.stream.name, spec.durable)
        except nats.js.errors.NotFoundError:
            await self.js.add_consumer(spec.stream.name, spec.config())
        return spec.durable

    # --- commands -------------------------------------------------------------------

    async def request(self, command: Command, expected: type[R], *, timeout: float = 10.0) -> R:
        """Send ``command`` to its owning service; return its reply or raise its error.

        For a partitioned service, nobody answering is retried for
        `NO_RESPONDERS_GRACE_S` (within ``timeout``): a partition being handed from one
        replica to another has no responder for about a lease tick, and the caller
        should not see that. Any other service is either there or not: that fails at once.
        """
        subject = subject_for_command(command)
        data = encode_command(command)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        grace = NO_RESPONDERS_GRACE_S if command.SERVICE in PARTITIONED_SERVICES else 0.0
        give_up = loop.time() + min(grace, timeout)
        while True:
            try:
                msg = await self.nc.request(
                    subject, data, timeout=max(deadline - loop.time(), 0.001)
                )
                break
            except nats.errors.NoRespondersError as exc:
                if loop.time() + NO_RESPONDERS_RETRY_S < give_up:
                    await asyncio.sleep(NO_RESPONDERS_RETRY_S)
                    continue
                raise ServiceUnavailable(
                    f"no {command.SERVICE} service is answering {command.VERB}"
                ) from exc
            except nats.errors.TimeoutError as exc:
                raise ServiceUnavailable(
                    f"{command.SERVICE} did not answer {command.VERB} within {timeout}s"
                ) from exc
        return parse_reply(msg.data, expected)

    async def serve(
        self,
        service: str,
        handlers: Mapping[str, CommandHandler],
        *,
        partition: int | None = None,
    ) -> list[Subscription]:
        """Answer ``senex.cmd.<service>.<verb>.<partition>.*`` for each verb in ``handlers``.

        ``partition`` None answers every partition. Replicas share a queue group, so each
        command is answered once. Returns the subscriptions (for `unserve`).
        """
        log = get_logger("bus.commands", service=service)
        added: list[Subscription] = []
        for verb, handler in handlers.items():
            command_for(service, verb)  # refuse a verb no contract defines

            async def answer(msg: Msg, handler: CommandHandler = handler) -> None:
                reply: Reply | ErrorReply
                try:
                    command = parse_command(msg.data)
                    with correlation(command.correlation_id, command=command.type):
                        reply = await handler(command)
                except SenexError as exc:
                    reply = exc.to_reply()
                except Exception as exc:
                    log.exception("command handler failed")
                    reply = InternalError(f"internal error: {type(exc).__name__}").to_reply()
                if self.metrics is not None and isinstance(reply, ErrorReply):
                    self.metrics.error(reply.kind.value)
                if msg.reply:
                    await msg.respond(encode_reply(reply))

            subject = command_filter(service, verb, partition=partition)
            added.append(await self.nc.subscribe(subject, queue=service, cb=answer))
        self.subscriptions.extend(added)
        return added

    async def unserve(self, subscriptions: Iterable[Subscription]) -> None:
        """Stop answering on ``subscriptions`` (a command being answered still finishes)."""
        for sub in subscriptions:
            with contextlib.suppress(ValueError):
                self.subscriptions.remove(sub)
            with contextlib.suppress(Exception):  # the connection may be closed or away
                await sub.unsubscribe()

    # --- plain subscriptions ------------------------------------------------------------

    async def subscribe(self, subject: str, handler: MessageHandler) -> Subscription:
        """Call ``handler(subject, data)`` for every message on ``subject`` from now on.

        Core NATS, at most once: for readers to whom only the newest message matters
        (a screen, a cached verdict). ``flush`` before promising the next message.
        """

        async def deliver(msg: Msg) -> None:
            await handler(msg.subject, msg.data)

        subscription = await self.nc.subscribe(subject, cb=deliver)
        self.subscriptions.append(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a `subscribe` (quietly when the connection is already closing)."""
        await self.unserve((subscription,))

    async def last_message(self, stream: StreamSpec, subject: str) -> bytes | None:
        """The data of the newest message on ``subject`` in ``stream``; None when none."""
        try:
            raw = await self.js.get_last_msg(stream.name, subject)
        except nats.js.errors.NotFoundError:
            return None
        return raw.data or b""

    # --- lifecycle ------------------------------------------------------------------

    async def close(self) -> None:
        """Stop consumers and command handlers, flush, and close the connection."""
        for consumer in self.consumers:
            await consumer.stop()
        for sub in self.subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if not self.nc.is_closed:
            with contextlib.suppress(nats.errors.ConnectionClosedError):
                await self.nc.drain()
