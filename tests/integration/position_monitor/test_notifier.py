"""The notifier against a real local SMTP server (aiosmtpd): delivery, retry, never blocking."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from email.message import Message
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiosmtpd.controller import Controller

from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    Severity,
)
from services.position_monitor.notifier import EmailNotifier, NotifierStopped
from services.position_monitor.settings import SmtpSecurity, SmtpSettings

ACCOUNT = "5WT00001"
ADDRESS = "trader@example.com"


class Inbox:
    """aiosmtpd handler keeping what it receives; can refuse recipients."""

    def __init__(self, refuse_with: str | None = None) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.refuse_with = refuse_with

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.refuse_with is not None:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(port: int, inbox: Inbox) -> Iterator[Controller]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": SmtpSecurity.NONE,
        "sender": "senex@localhost",
        "timeout_s": 2.0,
        "max_attempts": 40,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
    }
    values.update(overrides)
    return SmtpSettings(**values)


def notification(
    topic: NotificationTopic = NotificationTopic.POSITION_CLOSED_EXTERNALLY,
    notification_id: UUID | None = None,
) -> NotificationRequested:
    return NotificationRequested(
        occurred_at=datetime(2026, 1, 5, 16, 0, tzinfo=UTC),
        producer="position_monitor",
        account_id=ACCOUNT,
        correlation_id=uuid4(),
        notification_id=notification_id or uuid4(),
        topic=topic,
        channels=(NotificationChannel.EMAIL, NotificationChannel.BANNER),
        severity=Severity.WARNING,
        title="QQQ: position closed outside the app",
        message="QQQ position is no longer held at the broker (closed outside the app)",
        position_id=uuid4(),
    )


@asynccontextmanager
async def running(notifier: EmailNotifier) -> AsyncIterator[EmailNotifier]:
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop(grace_s=1.0)


def counted(notifier: EmailNotifier, stage: str) -> float:
    value = notifier.registry.get_sample_value(
        "senex_email_failures_total", {"service": "position_monitor", "stage": stage}
    )
    return value or 0.0


def sent(notifier: EmailNotifier) -> float:
    value = notifier.registry.get_sample_value(
        "senex_emails_sent_total", {"service": "position_monitor"}
    )
    return value or 0.0


async def test_the_local_server_receives_the_email_with_subject_and_account() -> None:
    port, inbox = free_port(), Inbox()
    with smtp_server(port, inbox):
        notifier = EmailNotifier(settings(port), {ACCOUNT: ADDRESS}.get)
        async with running(notifier):
            event = notification()
            assert notifier.submit(event)
            await asyncio.wait_for(notifier.join(), 10)
    ((mail_from, rcpt_tos, message),) = inbox.messages
    assert mail_from == "senex@localhost"
    assert rcpt_tos == [ADDRESS]
    assert message["Subject"] == (
        f"[Senex] POSITION_CLOSED_EXTERNALLY - account {ACCOUNT}: "
        "QQQ: position closed outside the app"
    )
    assert message["X-Senex-Account"] == ACCOUNT
    assert message["Message-ID"] == f"<{event.notification_id}@senex>"
    assert ACCOUNT in str(message.get_payload())
    assert sent(notifier) == 1


async def test_a_server_down_at_first_still_receives_it_later() -> None:
    port, inbox = free_port(), Inbox()
    notifier = EmailNotifier(settings(port), {ACCOUNT: ADDRESS}.get)
    async with running(notifier):
        started = time.perf_counter()
        assert notifier.submit(notification())
        assert time.perf_counter() - started < 0.05  # queued, not sent
        deadline = time.monotonic() + 10
        while counted(notifier, "attempt") < 2:  # at least two refused connections
            assert time.monotonic() < deadline, "no retry happened"
            await asyncio.sleep(0.02)
        assert inbox.messages == []
        with smtp_server(port, inbox):
            await asyncio.wait_for(notifier.join(), 10)
    assert len(inbox.messages) == 1
    assert sent(notifier) == 1
    assert counted(notifier, "gave_up") == 0


async def test_the_caller_never_blocks_while_the_server_is_down() -> None:
    port = free_port()  # nothing listens
    notifier = EmailNotifier(settings(port, queue_size=50), {ACCOUNT: ADDRESS}.get)
    # Submitting is a plain call: it cannot wait on the SMTP server by construction.
    assert not asyncio.iscoroutinefunction(notifier.submit)
    async with running(notifier):
        accepted = [notifier.submit(notification()) for _ in range(60)]
        assert accepted.count(True) == 50
        assert counted(notifier, "queue_full") == 10
        # Other work goes on while the worker retries in the background.
        ticks = 0
        while counted(notifier, "attempt") < 1:
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 1
    assert counted(notifier, "unsent_at_stop") == 50


async def test_gives_up_after_the_attempts_and_counts_it() -> None:
    port = free_port()
    notifier = EmailNotifier(settings(port, max_attempts=3), {ACCOUNT: ADDRESS}.get)
    async with running(notifier):
        notifier.submit(notification())
        await asyncio.wait_for(notifier.join(), 10)
    assert counted(notifier, "attempt") == 2
    assert counted(notifier, "gave_up") == 1
    assert sent(notifier) == 0


async def test_a_permanent_refusal_is_not_retried() -> None:
    port, inbox = free_port(), Inbox(refuse_with="550 5.1.1 no such user")
    with smtp_server(port, inbox):
        notifier = EmailNotifier(settings(port), {ACCOUNT: ADDRESS}.get)
        async with running(notifier):
            notifier.submit(notification())
            await asyncio.wait_for(notifier.join(), 10)
    assert counted(notifier, "attempt") == 0
    assert counted(notifier, "permanent") == 1
    assert inbox.messages == []


async def test_redelivered_and_non_email_notifications_are_not_sent_twice() -> None:
    port, inbox = free_port(), Inbox()
    with smtp_server(port, inbox):
        notifier = EmailNotifier(settings(port, recipient="ops@example.com"), lambda _: None)
        async with running(notifier):
            same = uuid4()
            assert notifier.submit(notification(notification_id=same))
            assert not notifier.submit(notification(notification_id=same))
            banner_only = notification().model_copy(
                update={"channels": (NotificationChannel.BANNER,)}
            )
            assert not notifier.submit(banner_only)
            await asyncio.wait_for(notifier.join(), 10)
    assert [rcpt for _, rcpt, _ in inbox.messages] == [["ops@example.com"]]


async def test_no_address_and_disabled_are_counted_not_raised() -> None:
    notifier = EmailNotifier(settings(free_port()), lambda _: None)
    assert not notifier.submit(notification())
    assert counted(notifier, "no_recipient") == 1
    disabled = EmailNotifier(settings(free_port(), enabled=False), {ACCOUNT: ADDRESS}.get)
    assert not disabled.submit(notification())
    assert counted(disabled, "disabled") == 1


async def test_submit_after_stop_is_an_error() -> None:
    notifier = EmailNotifier(settings(free_port()), {ACCOUNT: ADDRESS}.get)
    await notifier.start()
    await notifier.stop()
    with pytest.raises(NotifierStopped):
        notifier.submit(notification())


async def test_queued_before_start_is_sent_after_start_and_unsent_is_counted() -> None:
    port, inbox = free_port(), Inbox()
    with smtp_server(port, inbox):
        notifier = EmailNotifier(settings(port), {ACCOUNT: ADDRESS}.get)
        assert notifier.submit(notification())
        assert notifier.pending == 1
        async with running(notifier):
            await asyncio.wait_for(notifier.join(), 10)
    assert len(inbox.messages) == 1
    never_started = EmailNotifier(settings(free_port()), {ACCOUNT: ADDRESS}.get)
    assert never_started.submit(notification())
    await never_started.stop()
    assert counted(never_started, "unsent_at_stop") == 1
