"""The fault tests' report entries and their JSON file (``bench/results/faults.json``)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"


@dataclass
class FaultEntry:
    """What one test injected and what it verified afterwards."""

    test: str
    fault: str = ""
    checks: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "not run"
    duration_s: float = 0.0

    def check(self, what: str) -> None:
        """Record a property that was asserted (call it after the assertion passed)."""
        self.checks.append(what)


@dataclass
class FaultReport:
    entries: list[FaultEntry] = field(default_factory=list)

    def write(self) -> None:
        if not self.entries:
            return
        previous: dict[str, Any] = {}
        if RESULTS.exists():
            try:
                previous = {e["test"]: e for e in json.loads(RESULTS.read_text())["faults"]}
            except (ValueError, KeyError, TypeError):
                previous = {}
        for entry in self.entries:
            previous[entry.test] = {
                "test": entry.test,
                "fault": entry.fault,
                "checked": entry.checks,
                "details": entry.details,
                "outcome": entry.outcome,
                "duration_s": round(entry.duration_s, 1),
            }
        faults = sorted(previous.values(), key=lambda e: str(e["test"]))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": {"cpus": _cpus(), "python": platform.python_version()},
                    "total_duration_s": round(sum(float(e["duration_s"]) for e in faults), 1),
                    "faults": faults,
                },
                indent=2,
            )
            + "\n"
        )


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
