"""Settings come from the environment; bad values are refused naming the variable."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from libs.runtime.settings import DEFAULT_METRICS_PORTS, Settings, TradingMode


def test_unprefixed_urls_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", "nats://10.0.0.1:4222")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/senex")
    settings = Settings()
    assert settings.nats_url == "nats://10.0.0.1:4222"
    assert settings.database_url == "postgresql://u@db/senex"


def test_defaults_are_paper_mode_and_the_domain_fallback_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SENEX_MODE", raising=False)
    settings = Settings()
    assert settings.mode is TradingMode.PAPER
    assert settings.risk_free_rate == Decimal("0.045")


def test_each_service_has_its_own_metrics_port() -> None:
    settings = Settings()
    ports = {settings.metrics_port_for(name) for name in DEFAULT_METRICS_PORTS}
    assert len(ports) == len(DEFAULT_METRICS_PORTS)


def test_explicit_metrics_port_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENEX_METRICS_PORT", "9999")
    assert Settings().metrics_port_for("risk") == 9999


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENEX_MODE", "yolo")
    with pytest.raises(ValidationError, match="mode"):
        Settings()
