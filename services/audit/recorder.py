"""The audit recorder: the business stream, in order, into the Postgres event log.

One reader, one batch in flight: take a gapless batch, turn every message into a record
at its stream position, append the batch in one transaction, then acknowledge it. The
log's head is the cursor: after a crash the recorder resumes at head + 1, and a batch
stored but not acknowledged is a no-op when it comes again (positions are the
sequence). When PostgreSQL is unreachable it waits and retries the same batch: it
never skips, never dead-letters.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import psycopg
from prometheus_client import Counter, Gauge

from libs.eventlog.errors import EventLogUnavailable, InvalidRecord, PositionGap
from libs.eventlog.records import EventRecord, malformed_record
from libs.eventlog.store import EventLog, check_record
from libs.runtime.bus import BUSINESS_STREAM, Bus, StreamMessage, StreamReader
from libs.runtime.log import get_logger
from libs.runtime.metrics import ServiceMetrics
from services.audit.conversion import record_for_message

RECORDER_DURABLE = "audit-recorder"
#: Retry delays while PostgreSQL is away (the last one repeats).
DB_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Stopping(Exception):
    """Stop was requested while waiting for PostgreSQL; the batch stays unacknowledged."""


@dataclass
class RecorderMetrics:
    """Recorder-specific metrics on the service's registry."""

    recorded: Counter
    malformed: Counter
    head: Gauge

    @classmethod
    def on(cls, metrics: ServiceMetrics) -> RecorderMetrics:
        return cls(
            recorded=Counter(
                "senex_audit_recorded_total",
                "Bus messages recorded into the event log.",
                registry=metrics.registry,
            ),
            malformed=Counter(
                "senex_audit_malformed_total",
                "Bus messages recorded as-is and flagged because they did not parse.",
                registry=metrics.registry,
            ),
            head=Gauge(
                "senex_audit_log_head_position",
                "Position of the last event committed to the event log.",
                registry=metrics.registry,
            ),
        )


class Recorder:
    """Copies the business stream into the event log until stopped."""

    def __init__(
        self,
        bus: Bus,
        database_url: str,
        metrics: ServiceMetrics,
        *,
        batch_size: int = 1000,
    ) -> None:
        self._bus = bus
        self._dsn = database_url
        self._metrics = metrics
        self._own = RecorderMetrics.on(metrics)
        self._batch_size = batch_size
        self._reader: StreamReader = bus.reader(BUSINESS_STREAM, RECORDER_DURABLE)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("audit.recorder")
        self.head_position = 0

    async def start(self) -> None:
        """Resume after the log's head and begin recording in the background."""
        log = await self._event_log()
        head = await log.head()
        self.head_position = head.position
        self._own.head.set(head.position)
        await self._reader.start_after(head.position)
        self._log.info("recorder resuming", after_position=head.position)
        self._task = asyncio.create_task(self._guarded_run(), name="audit-recorder")

    async def stop(self) -> None:
        """Finish the batch in hand (commit and ack), then stop."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._reader.close()
        if self._conn is not None:
            await self._conn.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _event_log(self) -> EventLog:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=5
            )
        return EventLog(self._conn)

    async def _guarded_run(self) -> None:
        try:
            await self._run()
        except Exception:
            # A conflict at a stored position (the log and the stream disagree) needs an
            # operator: stop recording, which /health reports, rather than guess.
            self._log.exception("recorder stopped")
            self._metrics.error("INTERNAL_ERROR")
            raise

    async def _run(self) -> None:
        # While one batch is being committed the next is fetched and converted: the
        # CPU work overlaps the database round trip. Appends stay one at a time, in
        # order, and each batch is acknowledged only after its own commit.
        committing: asyncio.Task[bool] | None = None
        while not self._stopping.is_set():
            try:
                batch = await self._reader.next_batch(self._batch_size, timeout=0.5)
            except Exception as exc:  # NATS reconnecting: the reader re-reads from head
                self._log.warning("stream read failed; resuming after head", error=repr(exc))
                if committing is not None:
                    await committing
                    committing = None
                await asyncio.sleep(0.5)
                await self._resume_after_head()
                continue
            if not batch:
                if committing is not None:
                    await committing
                    committing = None
                continue
            records, malformed = self._records(batch)
            if committing is not None and not await committing:
                committing = None
                continue  # the previous batch was re-read; this one is stale
            committing = asyncio.create_task(self._commit(batch, records, malformed))
        if committing is not None:
            await committing

    async def _commit(
        self, batch: list[StreamMessage], records: list[EventRecord], malformed: int
    ) -> bool:
        """Append one batch and acknowledge it; False when the reader had to re-read."""
        try:
            try:
                await self._append(records)
            except InvalidRecord:
                # A message that parsed but cannot be stored as data (a NUL character,
                # an integer beyond 64 bits): keep it as-is and flagged, like any
                # malformed message, rather than stop recording.
                records, flagged = _storable(batch, records)
                malformed += flagged
                await self._append(records)
        except _Stopping:
            return False
        except PositionGap as exc:
            # Someone else moved the head (or it moved back after a restore): re-read.
            self._log.error("batch does not continue the log; re-reading", error=str(exc))
            await self._resume_after_head(from_log=True)
            return False
        with contextlib.suppress(Exception):
            # A lost ack only means a redelivery, which the log ignores.
            await batch[-1].ack()
        self.head_position = batch[-1].sequence
        self._own.head.set(self.head_position)
        self._own.recorded.inc(len(batch))
        if malformed:
            self._own.malformed.inc(malformed)
        self._metrics.consumer_lag.labels(self._metrics.service, RECORDER_DURABLE).set(
            batch[-1].pending
        )
        return True

    async def _resume_after_head(self, *, from_log: bool = False) -> None:
        with contextlib.suppress(Exception):
            if from_log:
                self.head_position = (await (await self._event_log()).head()).position
            await self._reader.start_after(self.head_position)

    @staticmethod
    def _records(batch: list[StreamMessage]) -> tuple[list[EventRecord], int]:
        records: list[EventRecord] = []
        malformed = 0
        for message in batch:
            record, parsed = record_for_message(
                message.data,
                sequence=message.sequence,
                stored_at=message.stored_at,
                subject=message.subject,
                msg_id=message.msg_id,
            )
            records.append(record)
            malformed += not parsed
        return records, malformed

    async def _append(self, records: list[EventRecord]) -> None:
        attempt = 0
        while True:
            if self._stopping.is_set() and attempt:
                raise _Stopping
            try:
                await (await self._event_log()).append(records)
                return
            except (EventLogUnavailable, psycopg.OperationalError) as exc:
                delay = DB_RETRY_DELAYS[min(attempt, len(DB_RETRY_DELAYS) - 1)]
                attempt += 1
                self._log.warning(
                    "event log unavailable; retrying the batch",
                    first_position=records[0].position,
                    attempt=attempt,
                    retry_in_s=delay,
                    error=str(exc),
                )
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None
                await asyncio.sleep(delay)


def _storable(
    batch: list[StreamMessage], records: list[EventRecord]
) -> tuple[list[EventRecord], int]:
    """``records`` with each one the log refuses replaced by its flagged raw message."""
    out: list[EventRecord] = []
    flagged = 0
    for message, record in zip(batch, records, strict=True):
        try:
            check_record(record)
        except InvalidRecord as exc:
            record = malformed_record(
                message.data,
                reason=f"not storable: {exc}",
                occurred_at=message.stored_at,
                position=message.sequence,
                event_id=record.event_id,
                account_id=record.account_id,
                subject=message.subject,
            )
            flagged += 1
        out.append(record)
    return out, flagged
