"""E-mails of ``NotificationRequested`` over SMTP (aiosmtplib), never blocking the caller.

`EmailNotifier.submit` only queues (``put_nowait``); one worker task sends, retrying a
transient failure (connection refused or dropped, timeouts, 4xx replies) with
exponential backoff in real time, and giving up at once on a permanent one (5xx,
refused credentials). Every failed attempt is logged with its cause and counted. Banner
and dashboard flag are the gateway's channels; this sends only the EMAIL channel.

A redelivered notification (same ``notification_id``) is sent once: the ids of recent
e-mails are remembered, and the Message-ID derives from the id so a receiving server
can de-duplicate too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from uuid import UUID

import aiosmtplib
import structlog
from prometheus_client import CollectorRegistry, Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from libs.contracts.system import NotificationChannel, NotificationRequested
from libs.runtime.tasks import cancel_and_wait
from services.position_monitor import SERVICE
from services.position_monitor.settings import SmtpSecurity, SmtpSettings

#: Notification ids remembered to drop redeliveries.
_REMEMBERED = 10_000

#: Account id -> the user's e-mail address, or None when unknown.
RecipientLookup = Callable[[str], str | None]

FailureStage = Literal[
    "attempt", "gave_up", "permanent", "queue_full", "no_recipient", "disabled", "unsent_at_stop"
]


class NotifierError(Exception):
    """Base of the notifier's errors."""


class NotifierStopped(NotifierError):
    """``submit`` after ``stop``: nothing would ever send the e-mail."""


def is_transient(exc: BaseException) -> bool:
    """Whether sending again later may succeed.

    Replies are judged by their code (4xx temporary, 5xx permanent: a bad address or
    refused credentials will not fix themselves); connection-level failures are
    transient; anything else (STARTTLS unsupported, a malformed message) is permanent.
    """
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 400 <= exc.code < 500
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(400 <= r.code < 500 for r in exc.recipients)
    return isinstance(exc, OSError)


def subject_of(event: NotificationRequested) -> str:
    """Names the topic and the account: ``[Senex] STOP_LOSS - account 5WT01: title``."""
    return f"[Senex] {event.topic.value} - account {event.account_id}: {event.title}"


def message_of(event: NotificationRequested, sender: str, recipient: str) -> EmailMessage:
    """The e-mail for ``event``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject_of(event)
    message["Date"] = format_datetime(event.occurred_at)
    message["Message-ID"] = f"<{event.notification_id}@senex>"
    message["X-Senex-Account"] = event.account_id
    message["X-Senex-Topic"] = event.topic.value
    lines = [
        event.message,
        "",
        f"Account: {event.account_id}",
        f"Topic: {event.topic.value}",
        f"Severity: {event.severity.value}",
        f"At: {event.occurred_at.isoformat()}",
    ]
    if event.position_id is not None:
        lines.append(f"Position: {event.position_id}")
    if event.order_id is not None:
        lines.append(f"Order: {event.order_id}")
    lines.append(f"Notification: {event.notification_id}")
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailNotifier:
    """Queue + worker sending notification e-mails; `start`, `submit`, `stop`."""

    def __init__(
        self,
        settings: SmtpSettings,
        recipient_for: RecipientLookup,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._recipient_for = recipient_for
        self._queue: asyncio.Queue[tuple[NotificationRequested, EmailMessage]] = asyncio.Queue(
            maxsize=settings.queue_size
        )
        self._worker: asyncio.Task[None] | None = None
        self._stopped = False
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._log = structlog.get_logger("senex.notifier").bind(service=SERVICE)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sent = Counter(
            "senex_emails_sent_total",
            "Notification e-mails the SMTP server accepted.",
            ["service"],
            registry=self.registry,
        )
        self.failures = Counter(
            "senex_email_failures_total",
            "Notification e-mail failures by stage (attempt: retried; gave_up, permanent, "
            "queue_full, no_recipient, disabled, unsent_at_stop: not sent).",
            ["service", "stage"],
            registry=self.registry,
        )

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker (idempotent)."""
        if self._stopped:
            raise NotifierStopped("the notifier was stopped")
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="email-notifier")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let queued e-mails go out for up to ``grace_s``, then stop; the rest are logged
        and counted as unsent.
        """
        self._stopped = True
        worker, self._worker = self._worker, None
        if worker is not None:
            with contextlib.suppress(TimeoutError):
                # Best effort: whatever is still queued when time is up is reported below.
                await asyncio.wait_for(self._queue.join(), grace_s)
            await cancel_and_wait([worker])
        while not self._queue.empty():
            event, _ = self._queue.get_nowait()
            self._queue.task_done()
            self._fail("unsent_at_stop", event, "the notifier stopped before it was sent")

    @property
    def pending(self) -> int:
        """E-mails queued or being sent."""
        return self._queue.qsize()

    async def join(self) -> None:
        """Wait until every queued e-mail is sent or given up (tests, shutdown)."""
        await self._queue.join()

    # --- submitting ----------------------------------------------------------------------

    def submit(self, event: NotificationRequested) -> bool:
        """Queue the e-mail of ``event`` without waiting; True when queued.

        False (logged and counted, never raised: trading must not depend on e-mail) when
        the event has no EMAIL channel, is a duplicate, e-mail is disabled, the account
        has no address, or the queue is full.
        """
        if self._stopped:
            raise NotifierStopped("the notifier was stopped")
        if NotificationChannel.EMAIL not in event.channels:
            return False
        if event.notification_id in self._seen:
            self._log.info("duplicate notification ignored", **self._fields(event))
            return False
        if not self.settings.enabled:
            self._fail("disabled", event, "SMTP is disabled (SENEX_SMTP_ENABLED=false)")
            return False
        recipient = self._recipient_for(event.account_id) or self.settings.recipient
        if recipient is None:
            self._fail("no_recipient", event, "no e-mail address for the account")
            return False
        try:
            self._queue.put_nowait((event, message_of(event, self.settings.sender, recipient)))
        except asyncio.QueueFull:
            self._fail("queue_full", event, f"{self.settings.queue_size} e-mails already queued")
            return False
        self._remember(event.notification_id)
        return True

    def _remember(self, notification_id: UUID) -> None:
        self._seen[notification_id] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)

    # --- sending -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            event, message = await self._queue.get()
            try:
                await self._send_with_retry(event, message)
            except asyncio.CancelledError:
                self._fail("unsent_at_stop", event, "the notifier stopped while sending it")
                raise
            except Exception as exc:
                stage: FailureStage = "gave_up" if is_transient(exc) else "permanent"
                self._fail(stage, event, f"{type(exc).__name__}: {exc}", exc=exc)
            else:
                self.sent.labels(SERVICE).inc()
                self._log.info("notification e-mail sent", **self._fields(event))
            finally:
                self._queue.task_done()

    async def _send_with_retry(self, event: NotificationRequested, message: EmailMessage) -> None:
        settings = self.settings

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            self.failures.labels(SERVICE, "attempt").inc()
            self._log.warning(
                "notification e-mail failed; retrying",
                attempt=state.attempt_number,
                retry_in_s=round(wait, 3),
                cause=f"{type(exc).__name__}: {exc}",
                **self._fields(event),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.max_attempts),
            wait=wait_exponential(
                multiplier=settings.backoff_initial_s,
                min=settings.backoff_initial_s,
                max=settings.backoff_max_s,
            ),
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._deliver(message)

    async def _deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        await aiosmtplib.send(
            message,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=password,
            use_tls=settings.security is SmtpSecurity.SSL,
            start_tls=settings.security is SmtpSecurity.STARTTLS,
            validate_certs=settings.validate_certs,
            timeout=settings.timeout_s,
        )

    # --- reporting -----------------------------------------------------------------------

    @staticmethod
    def _fields(event: NotificationRequested) -> dict[str, str]:
        return {
            "account_id": event.account_id,
            "notification_id": str(event.notification_id),
            "topic": event.topic.value,
            "correlation_id": str(event.correlation_id),
        }

    def _fail(
        self,
        stage: FailureStage,
        event: NotificationRequested,
        cause: str,
        exc: BaseException | None = None,
    ) -> None:
        self.failures.labels(SERVICE, stage).inc()
        self._log.error(
            "notification e-mail not sent",
            stage=stage,
            cause=cause,
            exc_info=exc,
            **self._fields(event),
        )
