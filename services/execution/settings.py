"""Execution settings from the environment (``SENEX_EXECUTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExecutionSettings(BaseSettings):
    """Transport timers of the execution service (real time, DOMAIN.md 8)."""

    model_config = SettingsConfigDict(env_prefix="SENEX_EXECUTION_", extra="ignore", frozen=True)

    #: Multiplies the retry waits (1, 2, 4, 8 s); tests shorten them, never production.
    backoff_scale: float = Field(default=1.0, gt=0, le=1.0)
    #: Seconds between reconciliation polls (stream reconnects, unknown outcomes, probes
    #: of a suspended broker).
    reconcile_interval_s: float = Field(default=15.0, gt=0)
    #: Seconds a replica handing a partition over waits for its orders in flight (sending
    #: with retries) before it cuts them short; the next owner reconciles what is left.
    handover_grace_s: float = Field(default=30.0, gt=0)
