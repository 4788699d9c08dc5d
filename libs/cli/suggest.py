"""`senex suggest`: the strategy's pure core on a snapshot, offline or from the live system.

``--snapshot FILE`` decides from a saved snapshot (for "what would it do now?" and for
audits); exit status 2 when it cannot be read or is malformed, with one line naming the
bad field. ``--account A --underlying QQQ`` asks the running strategy service for the
snapshot a generation would use now (GetDecisionSnapshot over NATS_URL), optionally
saves it with ``--save FILE``, and decides from it with the same core, so any live
decision can be re-run offline. Errors are one line and a non-zero status.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from libs.contracts.base import Underlying
from libs.contracts.commands import DecisionSnapshotReply, GetDecisionSnapshot
from libs.contracts.errors import SenexError, ServiceUnavailable
from libs.indicators.bands import bollinger, price_at_or_below_lower_band
from libs.runtime.settings import Settings
from services.risk.core import risk_json
from services.strategy.core import Snapshot, SnapshotError, decide, load_snapshot
from services.strategy.core.decide import Decision
from services.strategy.core.render import decision_json, decision_text

#: Exit status for an unreadable or malformed snapshot, or bad options.
EXIT_BAD_SNAPSHOT = 2
#: Exit status when the live system could not give a snapshot.
EXIT_UNAVAILABLE = 1
#: Seconds to connect to NATS and to wait for the strategy service's answer.
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 15.0


async def _live_snapshot(nats_url: str, account: str, underlying: Underlying) -> dict[str, Any]:
    # Imported here: the offline path must not need the bus client.
    from libs.runtime.bus import Bus

    try:
        bus = await asyncio.wait_for(
            Bus.connect(nats_url, "senex-cli", connect_timeout=CONNECT_TIMEOUT_S),
            timeout=CONNECT_TIMEOUT_S,
        )
    except (TimeoutError, OSError) as exc:
        # Bus.connect retries forever; the command waits only CONNECT_TIMEOUT_S.
        reason = str(exc) or f"no answer within {CONNECT_TIMEOUT_S:g} s"
        raise ServiceUnavailable(f"cannot reach NATS at {nats_url}: {reason}") from None
    try:
        reply = await bus.request(
            GetDecisionSnapshot(account_id=account, underlying=underlying),
            DecisionSnapshotReply,
            timeout=REQUEST_TIMEOUT_S,
        )
    finally:
        await bus.close()
    return reply.snapshot


def _risk(snapshot: Snapshot, decision: Decision) -> dict[str, Any]:
    """The risk budget the risk service's core computes for this snapshot and decision."""
    proposal = decision.proposal
    if proposal is not None:
        stressed = proposal.stressed
    else:
        bands = bollinger(snapshot.daily_closes, snapshot.price)
        stressed = price_at_or_below_lower_band(snapshot.price, bands)
    return risk_json(
        buying_power=snapshot.account.buying_power,
        positions_max_risk=[p.max_risk for p in snapshot.account.positions],
        template=snapshot.settings.risk_template,
        stressed=stressed,
        trade_max_risk=None if proposal is None else proposal.max_risk,
    )


def _risk_text(risk: dict[str, Any]) -> str:
    passed = {True: "passes", False: "FAILS", None: "no trade to check"}[risk["passed"]]
    return (
        f"Risk budget: tradeable capital {risk['tradeable_capital']}, tolerance "
        f"{risk['tolerance']}, available {risk['available']}, used {risk['used']}, "
        f"remaining {risk['remaining']}, utilisation {risk['utilisation']}, "
        f"warning {risk['warning']}: {passed}"
    )


def _fail(message: str, status: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(status)


def suggest(
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="JSON snapshot of market and account.")
    ] = None,
    account: Annotated[
        str | None,
        typer.Option("--account", help="Build the snapshot from the running system."),
    ] = None,
    underlying: Annotated[
        Underlying, typer.Option("--underlying", help="With --account: the underlying.")
    ] = Underlying.QQQ,
    save: Annotated[
        Path | None, typer.Option("--save", help="With --account: write the snapshot here.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the decision as JSON.")
    ] = False,
) -> None:
    """What the strategy would suggest, from SNAPSHOT or from the live system."""
    if (snapshot is None) == (account is None):
        raise _fail("suggest: give exactly one of --snapshot FILE or --account A", 2)
    if account is not None:
        try:
            # The bus client's transport log lines (disconnected on close...) would mix
            # with the decision on stdout; what matters reaches the user as one error line.
            with contextlib.redirect_stdout(io.StringIO()):
                live = asyncio.run(_live_snapshot(Settings().nats_url, account, underlying))
        except SenexError as exc:
            raise _fail(f"suggest: {exc.kind.value}: {exc.message}", EXIT_UNAVAILABLE) from None
        data = json.dumps(live, indent=2).encode()
        if save is not None:
            try:
                save.write_bytes(data + b"\n")
            except OSError as exc:
                raise _fail(f"suggest: cannot write {save}: {exc.strerror}", 1) from None
    else:
        assert snapshot is not None
        try:
            data = snapshot.read_bytes()
        except OSError as exc:
            raise _fail(
                f"snapshot: cannot read {snapshot}: {exc.strerror}", EXIT_BAD_SNAPSHOT
            ) from None
    try:
        parsed = load_snapshot(data)
    except SnapshotError as exc:
        raise _fail(f"invalid snapshot: {exc}", EXIT_BAD_SNAPSHOT) from None
    decision = decide(parsed)
    risk = _risk(parsed, decision)
    if json_output:
        typer.echo(json.dumps({**decision_json(decision), "risk": risk}, indent=2))
    else:
        typer.echo(decision_text(decision))
        typer.echo(_risk_text(risk))
