"""The notifier's pure parts: settings, subject, message, which failures are retried."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import aiosmtplib
import pytest
from pydantic import ValidationError

from libs.contracts.system import (
    NotificationChannel,
    NotificationRequested,
    NotificationTopic,
    Severity,
)
from services.position_monitor.notifier import is_transient, message_of, subject_of
from services.position_monitor.settings import SmtpSecurity, SmtpSettings


def event() -> NotificationRequested:
    return NotificationRequested(
        occurred_at=datetime(2026, 1, 5, 16, 0, tzinfo=UTC),
        producer="position_monitor",
        account_id="5WT00001",
        correlation_id=UUID(int=1),
        notification_id=UUID(int=2),
        topic=NotificationTopic.POSITION_CLOSED_EXTERNALLY,
        channels=(NotificationChannel.EMAIL, NotificationChannel.BANNER),
        severity=Severity.WARNING,
        title="QQQ: position closed outside the app",
        message="QQQ position is no longer held at the broker",
        position_id=UUID(int=3),
    )


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENEX_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SENEX_SMTP_PORT", "465")
    monkeypatch.setenv("SENEX_SMTP_SECURITY", "ssl")
    monkeypatch.setenv("SENEX_SMTP_USERNAME", "senex")
    monkeypatch.setenv("SENEX_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("SENEX_SMTP_SENDER", "alerts@example.com")
    settings = SmtpSettings()
    assert (settings.host, settings.port, settings.security) == (
        "smtp.example.com",
        465,
        SmtpSecurity.SSL,
    )
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)


def test_username_without_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="go together"):
        SmtpSettings(username="senex")


def test_subject_names_topic_and_account() -> None:
    assert subject_of(event()) == (
        "[Senex] POSITION_CLOSED_EXTERNALLY - account 5WT00001: "
        "QQQ: position closed outside the app"
    )


def test_message_headers_and_body() -> None:
    message = message_of(event(), "senex@localhost", "user@example.com")
    assert message["To"] == "user@example.com"
    assert message["Message-ID"] == f"<{UUID(int=2)}@senex>"
    assert message["X-Senex-Account"] == "5WT00001"
    body = message.get_content()
    assert "no longer held at the broker" in body
    assert f"Position: {UUID(int=3)}" in body


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (aiosmtplib.SMTPConnectError("refused"), True),
        (aiosmtplib.SMTPServerDisconnected("gone"), True),
        (aiosmtplib.SMTPTimeoutError("slow"), True),
        (ConnectionRefusedError(), True),
        (aiosmtplib.SMTPResponseException(421, "try later"), True),
        (aiosmtplib.SMTPResponseException(554, "no"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@b")]),
            True,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b")]
            ),
            False,
        ),
        (aiosmtplib.SMTPNotSupported("no STARTTLS"), False),
        (ValueError("bad message"), False),
    ],
)
def test_which_failures_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
