"""`senex sim ...`: run the broker simulator and drive its control API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from services.simulator.clock import START_EXAMPLE, parse_instant
from services.simulator.server import SimulatorServer
from services.simulator.settings import DEFAULT_PORT, SimSettings

app = typer.Typer(help="broker simulator (plain `senex sim` serves it)")
customer_app = typer.Typer(help="simulated customers", no_args_is_help=True)
fault_app = typer.Typer(help="arrange failures for upcoming requests", no_args_is_help=True)
app.add_typer(customer_app, name="customer")
app.add_typer(fault_app, name="fault")

PortOption = Annotated[int, typer.Option("--port", help="Simulator port.")]


def _call(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the control API of a running simulator and print its answer."""
    raw = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=raw, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        typer.echo(exc.read().decode(), err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"simulator not reachable on port {port}: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(answer, indent=2))
    return answer


def _aware_start(value: str) -> datetime:
    """``--start`` as an aware instant; a usage error (exit 2) when it is naive or bad."""
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--start'") from exc


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    port: PortOption = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(help="Interface to listen on (0.0.0.0 in a container: no authentication)."),
    ] = "127.0.0.1",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="State directory (default $SENEX_SIM_DATA_DIR or .senex/sim)."),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            parser=_aware_start,
            metavar="<instant>",
            help="Simulated start instant with a UTC offset, e.g. "
            f"{START_EXAMPLE} (default: resume or now).",
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 1.0,
) -> None:
    """Serve the simulator on HOST:PORT (127.0.0.1 by default) until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    settings = SimSettings.from_env(data_dir)
    server = SimulatorServer(
        settings.data_dir,
        port=port,
        host=host,
        seed=settings.seed,
        start=start,
        speed=speed,
        settings=settings,
    )
    server.run_forever()


@customer_app.command("create")
def customer_create(
    name: Annotated[str, typer.Argument(help="Customer name.")],
    port: PortOption = DEFAULT_PORT,
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 1,
    cash: Annotated[str, typer.Option(help="Starting cash per account.")] = "100000",
) -> None:
    """Create a customer; prints its credentials and account numbers."""
    _call(
        port, "POST", "/sim/customers", {"name": name, "accounts": accounts, "starting-cash": cash}
    )


@customer_app.command("list")
def customer_list(port: PortOption = DEFAULT_PORT) -> None:
    """List customers and their accounts."""
    _call(port, "GET", "/sim/customers")


@app.command("clock")
def clock_command(
    port: PortOption = DEFAULT_PORT,
    time: Annotated[str | None, typer.Option(help="Jump to this ISO-8601 instant.")] = None,
    speed: Annotated[float | None, typer.Option(help="New speed factor.")] = None,
) -> None:
    """Show, or set, the simulated time and speed."""
    if time is None and speed is None:
        _call(port, "GET", "/sim/clock")
        return
    body: dict[str, Any] = {}
    if time is not None:
        body["time"] = time
    if speed is not None:
        body["speed"] = speed
    _call(port, "PUT", "/sim/clock", body)


@app.command("price")
def price_command(
    symbol: Annotated[str, typer.Argument(help="QQQ or SPY.")],
    port: PortOption = DEFAULT_PORT,
    set_to: Annotated[str | None, typer.Option("--set", help="Hold the price here.")] = None,
    reset: Annotated[bool, typer.Option(help="Back to the seeded model.")] = False,
) -> None:
    """Show, set or reset an underlying's price."""
    path = f"/sim/prices/{symbol.upper()}"
    if reset:
        _call(port, "DELETE", path)
    elif set_to is not None:
        _call(port, "PUT", path, {"price": set_to})
    else:
        _call(port, "GET", path)


@fault_app.command("add")
def fault_add(
    kind: Annotated[
        str, typer.Argument(help="partial|reject|timeout|unauthorized|rate-limit|server-error")
    ],
    port: PortOption = DEFAULT_PORT,
    reason: Annotated[str, typer.Option(help="Reject reason.")] = "Rejected by simulator",
    seconds: Annotated[float | None, typer.Option(help="Timeout hold in seconds.")] = None,
    count: Annotated[int, typer.Option(help="How many requests it hits.")] = 1,
) -> None:
    """Make the next order(s) or request(s) fail in the chosen way."""
    body: dict[str, Any] = {"kind": kind, "reason": reason, "count": count}
    if seconds is not None:
        body["seconds"] = seconds
    _call(port, "POST", "/sim/faults", body)


@fault_app.command("clear")
def fault_clear(port: PortOption = DEFAULT_PORT) -> None:
    """Drop all pending faults."""
    _call(port, "DELETE", "/sim/faults")


@app.command("close-position")
def close_position(
    account: Annotated[str, typer.Argument(help="Account number.")],
    symbol: Annotated[str, typer.Argument(help="OCC option symbol.")],
    port: PortOption = DEFAULT_PORT,
) -> None:
    """Close a position as if it had been closed outside Senex."""
    _call(port, "POST", f"/sim/accounts/{account}/positions/close", {"symbol": symbol})


@app.command("expire-tokens")
def expire_tokens(port: PortOption = DEFAULT_PORT) -> None:
    """Invalidate every access token now."""
    _call(port, "POST", "/sim/tokens/expire", {})


@app.command("drop-sockets")
def drop_sockets(
    kind: Annotated[str, typer.Argument(help="dxlink|account|all")] = "all",
    port: PortOption = DEFAULT_PORT,
) -> None:
    """Close the open streamer websockets of one kind (clients must reconnect)."""
    _call(port, "POST", "/sim/sockets/drop", {"kind": kind})
