"""The trading system as real processes, for fault tests.

One NATS server and one PostgreSQL database of the test's own, the broker simulator
(in the test process, clock pinned at its start, QQQ pinned inside its bands), and each
service as ``python -m services.<name>`` in paper mode, each on its own metrics port.
A test drives the trade (generate -> approve at the natural credit -> reservation ->
opening order and fill -> position -> three profit-target exits) with bus commands,
injects its fault, and then checks the audit log and the broker with `check_invariants`.

Every wait is bounded; services' logs go to the test's directory and are printed in
failures.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx2
import nats
import psycopg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import SecretStr

from libs.broker.models import BrokerCredentials
from libs.broker.vault import CredentialsVault
from libs.contracts.base import Underlying
from libs.contracts.commands import (
    ApprovalReply,
    ApproveSuggestion,
    ChainSnapshotReply,
    GenerateSuggestion,
    GetChainSnapshot,
    GetMarketCondition,
    MarketConditionReply,
    SuggestionReply,
)
from libs.contracts.envelope import Event
from libs.contracts.errors import NotFound, SenexError
from libs.contracts.execution import OrderAccepted, OrderRejected, OrderSubmitted
from libs.contracts.positions import ExitOrderPlaced, PositionOpened
from libs.contracts.registry import parse_event
from libs.contracts.risk import (
    RiskCheckPassed,
    RiskReleased,
    RiskReservationFailed,
    RiskReserved,
    WarningLevel,
)
from libs.contracts.strategy import SuggestionApproved, SuggestionGenerated
from libs.eventlog.migrate import migrate
from libs.eventlog.reads import event_from_stored, is_marker
from libs.eventlog.records import StoredEvent
from libs.eventlog.verify import verify_chain
from libs.runtime.bus import BUSINESS_STREAM, Bus
from libs.runtime.servers import free_port
from libs.runtime.settings import TradingMode
from services.gateway.accounts import Accounts, SettingsStore
from services.gateway.db import Pool
from services.gateway.users import UserStore
from services.simulator.customers import (
    DEFAULT_ACCOUNT_NUMBER,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
)
from services.simulator.server import SimulatorServer
from tests.faults.report import FaultEntry
from tests.integration.execution.harness import broker_orders
from tests.integration.risk.harness import VAULT_KEY, broker_settings
from tests.simulator_fixtures import SIM_START

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = DEFAULT_ACCOUNT_NUMBER
USER = "alice"
#: Inside the seeded closes' Bollinger bands: a full 2:2:1:1 Trident.
PRICE = "589.00"
CENT = Decimal("0.01")
#: The services of the trade flow, in start order (the gateway is not part of it).
FLOW_SERVICES: tuple[str, ...] = (
    "audit",
    "market_data",
    "strategy",
    "risk",
    "execution",
    "position_monitor",
)
#: Real seconds any one step of the flow may take (a restart included).
STEP_S = 30.0
CREDENTIALS = BrokerCredentials(
    client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
    refresh_token=SecretStr(DEFAULT_REFRESH_TOKEN),
)
E = TypeVar("E", bound=Event)


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` (sync or async) until truthy; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except (OSError, psycopg.Error, SenexError, TimeoutError) as exc:
            last_error = exc  # a server that is restarting: try again
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} ({last_error!r})")
        await asyncio.sleep(0.1)


async def control(server: SimulatorServer, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's ``/sim/`` control API."""
    async with httpx2.AsyncClient(base_url=server.url, trust_env=False, timeout=10) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


class ServiceProcess:
    """One ``python -m services.<name>`` with the test's servers, restartable."""

    def __init__(
        self, name: str, env: dict[str, str], log: Path, *, module: str | None = None
    ) -> None:
        self.name = name
        self.module = module or name
        self.port = free_port()
        self.env = {**env, "SENEX_METRICS_PORT": str(self.port)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        if self._out is None:
            self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.module}"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        async def healthy() -> bool:
            assert self.proc is not None
            code = self.proc.poll()
            assert code is None, f"{self.name} exited with {code}:\n{self.tail()}"
            try:
                async with httpx2.AsyncClient(trust_env=False, timeout=2) as client:
                    reply = await client.get(f"http://127.0.0.1:{self.port}/health")
            except httpx2.HTTPError:
                return False
            return reply.status_code == 200

        await until(healthy, timeout, f"{self.name} healthy")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        assert self.proc.poll() is None, f"{self.name} not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._out is not None:
            self._out.close()
            self._out = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Collector:
    """Events published on ``senex.evt.>`` as seen live (core NATS; triggers only).

    Unparsable messages are counted, not raised: poison tests publish them.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.unparsable = 0
        self._nc: NatsClient | None = None

    async def start(self, url: str) -> None:
        self._nc = await nats.connect(
            url, name="faults-collector", max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        await self._nc.subscribe("senex.evt.>", cb=self._on_msg)
        await self._nc.flush()

    async def _on_msg(self, msg: Msg) -> None:
        try:
            self.events.append(parse_event(msg.data))
        except Exception:
            self.unparsable += 1

    def of(self, kind: type[E], **where: Any) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in where.items())
        ]

    async def wait(self, kind: type[E], count: int = 1, timeout: float = STEP_S, **where: Any) -> E:
        await until(lambda: len(self.of(kind, **where)) >= count, timeout, kind.__name__)
        return self.of(kind, **where)[count - 1]

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()


@dataclass
class Log:
    """The audit log as read back from PostgreSQL."""

    rows: list[StoredEvent]

    @property
    def events(self) -> list[Event]:
        out: list[Event] = []
        for row in self.rows:
            event = event_from_stored(row)
            if event is not None:
                out.append(event)
        return out

    def of(self, kind: type[E], **where: Any) -> list[E]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in where.items())
        ]

    def types(self) -> Counter[str]:
        return Counter(row.type for row in self.rows)


class FlowRefused(Exception):
    """The flow ended before a position: its reservation was released."""

    def __init__(self, log: Log) -> None:
        super().__init__("the reservation was released without a position")
        self.log = log


@dataclass
class Completed:
    """The flow's outcome as recorded in the audit log."""

    suggestion: SuggestionGenerated
    reserved: RiskReserved
    opened: PositionOpened
    exits: list[ExitOrderPlaced]
    submitted: list[OrderSubmitted]
    log: Log


@dataclass
class System:
    """The servers, the service processes and the test's own clients."""

    nats_url: str
    dsn: str
    simulator: SimulatorServer
    log_dir: Path
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    collector: Collector = field(default_factory=Collector)
    bus: Bus | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Services run as several replicas: service -> replica ids (processes "<service>-<id>").
    replicas: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Broker accounts linked to ``USER`` at start besides the default customer's.
    links: dict[str, BrokerCredentials] = field(default_factory=dict)

    # --- lifecycle -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NATS_URL": self.nats_url,
            "DATABASE_URL": self.dsn,
            "SENEX_MODE": "paper",
            "SENEX_SIMULATOR_URL": self.simulator.url,
            "SENEX_BROKER_SIMULATOR_URL": self.simulator.url,
            "SENEX_BROKER_VAULT_KEY": VAULT_KEY.decode(),
            "SENEX_BROKER_REQUEST_TIMEOUT_S": "5",
            "SENEX_EXECUTION_BACKOFF_SCALE": "0.05",
            "SENEX_EXECUTION_RECONCILE_INTERVAL_S": "0.5",
            "SENEX_MARKET_DATA_TICK_S": "0.05",
            "SENEX_MARKET_DATA_CREDENTIALS_RETRY_S": "0.5",
            "SENEX_RISK_MARKET_CONDITION_TIMEOUT_S": "0.5",
            "SENEX_SMTP_ENABLED": "false",
            "SENEX_LOG_FORMAT": "json",
            "SENEX_SHUTDOWN_GRACE_S": "5",
            **self.extra_env,
        }

    async def start(self, services: Iterable[str] = FLOW_SERVICES) -> None:
        await migrate(self.dsn)
        await control(
            self.simulator, "PUT", "/sim/clock", {"time": SIM_START.isoformat(), "speed": 0}
        )
        await control(self.simulator, "PUT", "/sim/prices/QQQ", {"price": PRICE})
        await self.collector.start(self.nats_url)
        self.bus = await Bus.connect(self.nats_url, "faults-test")
        await self._link_default_customer()
        for account_number, credentials in self.links.items():
            await self.link(account_number, credentials)
        env = self.env()
        for name in services:
            for replica in self.replicas.get(name, (None,)):
                key = name if replica is None else f"{name}-{replica}"
                # A restarted process keeps its id (the old one is dead by then), so it
                # takes its partition leases back at once.
                own = {**env, "SENEX_REPLICA_ID": replica or name}
                proc = ServiceProcess(key, own, self.log_dir / f"{key}.log", module=name)
                self.procs[key] = proc
                proc.start()
        await asyncio.gather(*(p.wait_healthy() for p in self.procs.values()))
        await self.warm()

    async def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        if self.bus is not None:
            await self.bus.close()
        await self.collector.close()

    async def restart(self, name: str) -> None:
        self.procs[name].start()
        await self.procs[name].wait_healthy()

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.tail()}" for n, p in self.procs.items())

    async def _link_default_customer(self) -> None:
        """Link the simulator's default customer to ``USER`` as the gateway does."""
        await self.link(ACCOUNT, CREDENTIALS)

    async def link(self, account_number: str, credentials: BrokerCredentials) -> None:
        """Link one broker account to ``USER`` as the gateway does."""
        assert self.bus is not None
        pool = Pool(self.dsn, 1)
        try:
            users = UserStore(pool)
            try:
                await users.get(USER)
            except NotFound:
                await users.create(USER, "correct horse battery")
            settings = broker_settings(self.simulator)
            accounts = Accounts(
                vault=await CredentialsVault.open(self.dsn, settings),
                settings_store=SettingsStore(pool),
                broker_settings=settings,
                publish=self.bus.publish,
                system_mode=TradingMode.PAPER,
            )
            await accounts.link(
                user_id=USER,
                credentials=credentials,
                account_number=account_number,
                nickname=None,
                now=SIM_START,
            )
        finally:
            await pool.close()

    async def warm(self, timeout: float = 60.0) -> None:
        """Market data has QQQ's bands and the chain window; strategy and risk the balance."""
        bus = self.require_bus()

        async def ready() -> bool:
            await bus.request(
                GetMarketCondition(account_id=ACCOUNT, underlying=Underlying.QQQ),
                MarketConditionReply,
                timeout=5,
            )
            chain = await bus.request(
                GetChainSnapshot(account_id=ACCOUNT, underlying=Underlying.QQQ, wait_seconds=5),
                ChainSnapshotReply,
                timeout=10,
            )
            return bool(chain.expirations) and not chain.missing

        await until(ready, timeout, "market data warm")

    def require_bus(self) -> Bus:
        assert self.bus is not None
        return self.bus

    # --- the flow --------------------------------------------------------------------

    async def generate(
        self, timeout: float = STEP_S, *, account: str = ACCOUNT
    ) -> tuple[SuggestionGenerated, WarningLevel]:
        """GenerateSuggestion (retried while strategy lacks the balance or is restarting)."""
        bus = self.require_bus()

        async def attempt() -> SuggestionReply:
            return await bus.request(
                GenerateSuggestion(
                    account_id=account, underlying=Underlying.QQQ, requested_by=USER
                ),
                SuggestionReply,
                timeout=10,
            )

        reply: SuggestionReply = await until(attempt, timeout, "a suggestion")
        sid = reply.suggestion.suggestion.suggestion_id
        await until(
            lambda: [
                g
                for g in self.collector.of(SuggestionGenerated)
                if g.suggestion.suggestion_id == sid
            ],
            timeout,
            "SuggestionGenerated",
        )
        (generated,) = (
            g for g in self.collector.of(SuggestionGenerated) if g.suggestion.suggestion_id == sid
        )
        check = await self.collector.wait(RiskCheckPassed, suggestion_id=sid, timeout=timeout)
        return generated, check.assessment.warning_level

    async def approve(
        self, generated: SuggestionGenerated, warning: WarningLevel, timeout: float = STEP_S
    ) -> SuggestionApproved:
        """Approve at the natural credit (marketable: the simulator fills it at once)."""
        bus = self.require_bus()
        suggestion = generated.suggestion
        natural = suggestion.total_natural_credit.quantize(CENT, rounding=ROUND_FLOOR)
        assert natural > 0

        async def attempt() -> ApprovalReply | bool:
            if self.collector.of(SuggestionApproved, suggestion_id=suggestion.suggestion_id):
                return True  # an earlier attempt went through, its reply was lost
            return await bus.request(
                ApproveSuggestion(
                    account_id=generated.account_id or ACCOUNT,
                    suggestion_id=suggestion.suggestion_id,
                    custom_credit=natural,
                    confirm_warning=warning is not WarningLevel.NONE,
                    requested_by=USER,
                ),
                ApprovalReply,
                timeout=10,
            )

        await until(attempt, timeout, "the approval")
        return await self.collector.wait(SuggestionApproved, suggestion_id=suggestion.suggestion_id)

    async def read_log(self) -> Log:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT position, event_id, type, account_id, occurred_at, recorded_at, "
                "payload, metadata, prev_hash, hash FROM events ORDER BY position"
            )
            rows = [StoredEvent(*row) for row in await cur.fetchall()]
        return Log(rows)

    async def completed(
        self,
        sid: Any,
        timeout: float = 60.0,
        refused: list[RiskReleased | RiskReservationFailed] | None = None,
    ) -> Completed:
        """Wait until the audit log holds the whole flow of suggestion ``sid``.

        With ``refused`` (a list), a reservation released without a position ends the
        wait with `FlowRefused` (the released events appended to the list).
        """

        async def done() -> Completed | None:
            log = await self.read_log()
            generated = log.of(SuggestionGenerated)
            reserved = log.of(RiskReserved, suggestion_id=sid)
            released = log.of(RiskReleased, suggestion_id=sid)
            failed = log.of(RiskReservationFailed, suggestion_id=sid)
            early = refused is not None and bool(released or failed)
            if early and not log.of(PositionOpened, suggestion_id=sid):
                assert refused is not None
                refused.extend(released)
                refused.extend(failed)
                raise FlowRefused(log)
            opened = log.of(PositionOpened, suggestion_id=sid)
            if not (generated and reserved and opened):
                return None
            exits = log.of(ExitOrderPlaced, position_id=opened[0].position_id)
            exit_ids = {e.order_id for e in exits}
            accepted = {e.order_id for e in log.of(OrderAccepted)}
            released = log.of(RiskReleased, reservation_id=reserved[0].reservation_id)
            if len(exit_ids) < 3 or not exit_ids <= accepted or not released:
                return None
            (suggestion,) = (g for g in generated if g.suggestion.suggestion_id == sid)
            return Completed(
                suggestion=suggestion,
                reserved=reserved[0],
                opened=opened[0],
                exits=exits,
                submitted=log.of(OrderSubmitted),
                log=log,
            )

        try:
            result: Completed = await until(done, timeout, "the flow in the audit log")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from exc
        return result

    # --- the checks ------------------------------------------------------------------

    async def recorded_everything(self, timeout: float = STEP_S) -> tuple[int, Log]:
        """The business stream's last sequence and the log, once the log holds exactly it.

        Services keep publishing (marks, balances) while the test checks, so the stream
        is read before and after the log: only a log whose head equals an unchanged
        stream end is compared with it.
        """
        bus = self.require_bus()

        async def caught_up() -> tuple[int, Log] | None:
            before = int((await bus.js.stream_info(BUSINESS_STREAM.name)).state.last_seq)
            log = await self.read_log()
            after = int((await bus.js.stream_info(BUSINESS_STREAM.name)).state.last_seq)
            head = log.rows[-1].position if log.rows else 0
            return (after, log) if before == after == head else None

        result: tuple[int, Log] = await until(
            caught_up, timeout, "the log to reach the stream's end"
        )
        return result

    async def check_invariants(
        self, done: Completed, fault: FaultEntry, *, allow_markers: bool = False
    ) -> Log:
        """Exactly once in the log, one order per client tag at the broker, flow complete."""
        log = await self.check_log_integrity(fault, allow_markers=allow_markers)
        await self.check_flow(done, fault, log)
        return log

    async def check_log_integrity(self, fault: FaultEntry, *, allow_markers: bool = False) -> Log:
        """The log is gapless to the stream's end, its event ids unique, its chain valid."""
        last, log = await self.recorded_everything()
        positions = [r.position for r in log.rows]
        assert positions == list(range(1, len(positions) + 1)), "positions are not gapless"
        assert len(positions) == last, f"log has {len(positions)} rows, stream {last}"
        fault.check(f"log gapless 1..{last} = the business stream's last sequence")
        ids = [r.event_id for r in log.rows]
        assert len(ids) == len(set(ids))
        fault.check("event_id unique in the log")
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            report = await verify_chain(conn)
        assert report.ok, report.summary()
        # Later events may have been recorded since: the chain is checked over them too.
        assert report.rows_checked >= last
        fault.check("verify_chain passes over every row")
        markers = [r for r in log.rows if is_marker(r)]
        if not allow_markers:
            assert not markers, f"marker rows (malformed/duplicate): {markers}"
            fault.check("no MalformedMessage or DuplicateMessage rows")
        return log

    async def check_flow(self, done: Completed, fault: FaultEntry, log: Log) -> None:
        """One trade's decisions exactly once, and the broker's orders match them."""
        # Business exactly-once: one of each decision, however often a service restarted.
        # Orders refused before reaching the broker (OrderRejected with its reason) are
        # the explained outcomes of earlier attempts; they must be absent at the broker.
        events = log.events
        refused = {e.order_id: e for e in events if isinstance(e, OrderRejected)}
        assert all(r.reason for r in refused.values())
        submitted = [e for e in events if isinstance(e, OrderSubmitted)]
        per_order = Counter(e.order_id for e in submitted)
        assert all(n == 1 for n in per_order.values()), per_order
        assert len(per_order) == 4 + len(refused), per_order  # the opening, 3 exits
        sid = done.suggestion.suggestion.suggestion_id
        assert len(log.of(SuggestionApproved, suggestion_id=sid)) == 1
        assert len(log.of(RiskReserved, suggestion_id=sid)) == 1
        assert len(log.of(PositionOpened)) == 1
        assert len(log.of(ExitOrderPlaced)) == 3
        assert len(log.of(RiskReleased, reservation_id=done.reserved.reservation_id)) == 1
        fault.check(
            "one SuggestionApproved, RiskReserved, PositionOpened, RiskReleased; "
            "3 ExitOrderPlaced; one OrderSubmitted per order"
        )

        orders = await broker_orders(self.simulator)
        tags = Counter(str(o.get("external-identifier")) for o in orders)
        assert all(n == 1 for n in tags.values()), tags
        by_id = {e.order_id: e.client_tag for e in submitted}
        refused_tags = {by_id[o] for o in refused}
        sent = {s.client_tag for s in submitted if s.order_id not in refused}
        standing = [o for o in orders if o["status"] != "Rejected"]
        assert {str(o.get("external-identifier")) for o in standing} == sent, (tags, sent)
        assert set(tags) - sent <= refused_tags  # the broker's own refusals
        assert sorted((o["status"], o["time-in-force"]) for o in standing) == [
            ("Filled", "Day"),
            ("Live", "GTC"),
            ("Live", "GTC"),
            ("Live", "GTC"),
        ]
        fault.check("broker: one order per client tag (opening filled, 3 GTC exits live)")
        fault.check("flow complete: position opened with its 3 profit-target exits accepted")


async def run_flow(
    system: System,
    *,
    after_generate: Callable[[], Awaitable[None]] | None = None,
    after_approve: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 60.0,
    refused: list[RiskReleased | RiskReservationFailed] | None = None,
) -> Completed:
    """Generate, (hook), approve, (hook), and wait for the whole flow in the log."""
    generated, warning = await system.generate()
    if after_generate is not None:
        await after_generate()
    await system.approve(generated, warning)
    if after_approve is not None:
        await after_approve()
    return await system.completed(
        generated.suggestion.suggestion_id, timeout=timeout, refused=refused
    )


def database_name(node_name: str) -> str:
    """A database name of the test's own (lower-case, at most 60 characters)."""
    import re
    import uuid

    return ("f_" + re.sub(r"[^a-z0-9_]", "_", node_name.lower()))[:48] + uuid.uuid4().hex[:8]
