"""The `senex up` supervisor alone: backoff, reset, giving up (no servers needed)."""

from __future__ import annotations

import time
from pathlib import Path

from libs.runtime.local_system import LocalSystem, RestartPolicy


def test_backoff_doubles_from_one_second_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_keeps_crashing_is_restarted_with_backoff_then_given_up(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    policy = RestartPolicy(initial_backoff_s=0.1, max_backoff_s=0.4, max_quick_crashes=3)
    system = LocalSystem(root=tmp_path, say=lines.append, policy=policy)
    child = system._add(
        "crasher", ["-c", "print('about to fail'); raise SystemExit(3)"], "http://127.0.0.1:9/"
    )
    started = time.monotonic()
    assert system.supervise(lambda: time.monotonic() - started > 30) == 1
    system.shutdown()
    assert child.restarts == 3
    waits = [line for line in lines if "restarting in" in line]
    assert [w.rsplit("restarting in ", 1)[1] for w in waits] == ["0.1 s", "0.2 s", "0.4 s"]
    assert "crasher crashed 4 times in a row" in lines[-1]
    assert "crasher         | about to fail" in lines
    assert (tmp_path / ".senex" / "logs" / "crasher.log").read_text().count("about to fail") == 4
    assert not (tmp_path / ".senex" / "state.json").exists()


def test_a_child_that_ran_long_enough_starts_the_backoff_afresh(tmp_path: Path) -> None:
    lines: list[str] = []
    policy = RestartPolicy(initial_backoff_s=0.1, stable_after_s=0.5, max_quick_crashes=1)
    system = LocalSystem(root=tmp_path, say=lines.append, policy=policy, echo_logs=False)
    # Runs longer than `stable_after_s` each time: never two quick crashes in a row.
    system._add("slow", ["-c", "import time; time.sleep(0.7); raise SystemExit(1)"], "http://x/")
    started = time.monotonic()
    assert system.supervise(lambda: time.monotonic() - started > 3.5) == 0
    system.shutdown()
    waits = [line for line in lines if "restarting in" in line]
    assert len(waits) >= 3
    assert all(w.endswith("restarting in 0.1 s") for w in waits)
