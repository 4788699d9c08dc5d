"""Poison messages on a business subject: dead-lettered by each consumer, the rest flows.

Two messages are published straight to JetStream on the subject of a SuggestionApproved
(``senex.evt.<account>.strategy.SuggestionApproved``) before the trade: one that is not
JSON, one that is JSON but violates the contract (the type without its fields). Every
service's durable consumer (strategy, risk, execution, position_monitor) must park both
on its dead-letter subject (``senex.dlq.<consumer>``, after its redeliveries) and keep
handling what follows: the whole trade then completes. The audit recorder never
dead-letters: it stores both at their stream positions, flagged ``MalformedMessage``,
so the log stays gapless and its chain verifies.
"""

from __future__ import annotations

from collections.abc import Callable

import nats.js.errors
import pytest

from libs.contracts.partitions import partition_of
from libs.contracts.subjects import account_event_subject
from libs.eventlog.reads import is_marker
from libs.runtime.bus import (
    DEAD_LETTER_STREAM,
    DLQ_SEQUENCE_HEADER,
    DLQ_SUBJECT_HEADER,
    dead_letter_subject,
)
from libs.runtime.servers import PostgresProcess, ServerProcess
from tests.faults.conftest import MakeSystem
from tests.faults.report import FaultEntry
from tests.faults.system import ACCOUNT, System, database_name, run_flow, until

pytestmark = pytest.mark.fault

SUBJECT = account_event_subject(ACCOUNT, "strategy", "SuggestionApproved")
NOT_JSON = b"{this is not json"
VIOLATING = b'{"type": "SuggestionApproved", "schema_version": 1, "account_id": "5WT00001"}'
# Partitioned services react through one durable consumer per partition.
CONSUMERS = (
    *(f"{service}-p{partition_of(ACCOUNT)}" for service in ("strategy", "risk", "execution")),
    "position_monitor",
)


async def _dead_letters(system: System) -> dict[str, set[int]]:
    """Original stream sequences parked per dead-letter subject."""
    js = system.require_bus().js
    try:
        info = await js.stream_info(DEAD_LETTER_STREAM.name)
    except nats.js.errors.NotFoundError:
        return {}
    out: dict[str, set[int]] = {}
    if not info.state.messages:
        return out
    for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
        msg = await js.get_msg(DEAD_LETTER_STREAM.name, seq)
        headers = msg.headers or {}
        assert headers.get(DLQ_SUBJECT_HEADER) == SUBJECT
        out.setdefault(str(msg.subject), set()).add(int(headers[DLQ_SEQUENCE_HEADER]))
    return out


async def test_poison_messages_are_dead_lettered_and_the_flow_goes_on(
    fault: FaultEntry,
    nats_factory: Callable[[], ServerProcess],
    postgres_server: PostgresProcess,
    make_system: MakeSystem,
    request: pytest.FixtureRequest,
) -> None:
    fault.fault = "invalid JSON and a contract-violating event on a business subject"
    nats = nats_factory()
    system = await make_system(
        nats.url, postgres_server.create_database(database_name(request.node.name))
    )
    js = system.require_bus().js
    poison = {
        (await js.publish(SUBJECT, NOT_JSON)).seq,
        (await js.publish(SUBJECT, VIOLATING)).seq,
    }

    done = await run_flow(system)
    fault.check("the trade published after the poison completed")

    expected = {dead_letter_subject(c): poison for c in CONSUMERS}

    async def all_parked() -> bool:
        return await _dead_letters(system) == expected

    await until(all_parked, 30, "every consumer to dead-letter both messages")
    fault.check(
        "each consumer (strategy, risk and execution for the account's partition, "
        "position_monitor) dead-lettered both on senex.dlq.<consumer>, with the original "
        "subject and stream sequence"
    )

    log = await system.check_invariants(done, fault, allow_markers=True)
    markers = {r.position: r for r in log.rows if is_marker(r)}
    assert set(markers) == poison
    assert all(r.malformed and r.type == "MalformedMessage" for r in markers.values())
    raws = {str(r.metadata["raw"]) for r in markers.values()}
    assert raws == {NOT_JSON.decode(), VIOLATING.decode()}
    fault.check("audit stored both as-is at their stream positions, flagged MalformedMessage")
    for name, proc in system.procs.items():
        assert proc.alive, f"{name} died:\n{proc.tail()}"
        assert proc.starts == 1
    fault.check("no service died")
    fault.details = {"poison_positions": sorted(poison), "log_rows": len(log.rows)}
