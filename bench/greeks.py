"""Greeks for a full chain through the strategy core's vollib path.

    .venv/bin/python bench/greeks.py [--repeat 3]

Both underlyings (QQQ, SPY), every expiration with 30-50 DTE, every strike of the chain
(the simulator's grid: $1 strikes 12 % either side of the last close), puts and calls.
Quotes come from the broker simulator's seeded surface (in-process, no sockets), at the
simulator's default start (Tuesday 2025-06-03 11:00 New York). Each option is priced as
a one-leg position through ``services.strategy.core.pricing.position_greeks`` (IV implied
from the mid, then delta, gamma, theta and vega from vollib; Decimal totals), exactly
what the strategy does per leg. Reports the time per option (p50/p99 over every option
of a pass) and per chain (one underlying, one expiration), and the whole set per pass.

Writes ``bench/results/greeks.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine  # after the path set-up
from libs.contracts.execution import OrderAction
from libs.contracts.symbols import OccSymbol, OptionType
from services.simulator import chains
from services.simulator.server import SimulatorServer
from services.strategy.core.pricing import PricedLeg, position_greeks

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "greeks.json"
START = datetime.fromisoformat("2025-06-03T11:00:00-04:00")
UNDERLYINGS = ("QQQ", "SPY")
MIN_DTE, MAX_DTE = 30, 50


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_chains(server: SimulatorServer) -> list[dict[str, Any]]:
    """Every (underlying, expiration) chain in the window with each option's quote."""
    broker = server.broker
    out = []
    for root in UNDERLYINGS:
        spot = broker.spot(root, START)
        strikes = chains.strike_grid(chains.reference_price(broker.settings.seed, root, START))
        for exp in chains.expirations(START):
            dte = chains.days_to_expiration(exp.day, START)
            if not MIN_DTE <= dte <= MAX_DTE:
                continue
            legs = []
            for strike in strikes:
                for is_call in (False, True):
                    quote = broker.option_quote(
                        chains.OptionSymbol(root, exp.day, is_call, strike), START
                    )
                    kind = OptionType.CALL if is_call else OptionType.PUT
                    legs.append(
                        PricedLeg(
                            symbol=OccSymbol.build(root, exp.day, kind, strike),
                            action=OrderAction.SELL_TO_OPEN,
                            quantity=1,
                            bid=Decimal(str(quote.bid)),
                            ask=Decimal(str(quote.ask)),
                        )
                    )
            out.append(
                {"underlying": root, "expiration": exp.day, "dte": dte, "spot": spot, "legs": legs}
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes over the whole set")
    args = parser.parse_args()
    rate = Decimal("0.045")
    with tempfile.TemporaryDirectory(prefix="senex-bench-greeks-") as tmp:
        server = SimulatorServer(Path(tmp), start=START, seed=7)  # not started: no sockets
        window = build_chains(server)
    per_option_us: list[float] = []
    per_chain_ms: list[float] = []
    per_pass_ms: list[float] = []
    failed = 0
    for _ in range(args.repeat):
        pass_start = time.perf_counter()
        for chain in window:
            chain_start = time.perf_counter()
            for leg in chain["legs"]:
                t0 = time.perf_counter()
                greeks = position_greeks([leg], chain["spot"], chain["dte"], rate)
                per_option_us.append((time.perf_counter() - t0) * 1e6)
                failed += greeks is None
            per_chain_ms.append((time.perf_counter() - chain_start) * 1e3)
        per_pass_ms.append((time.perf_counter() - pass_start) * 1e3)
    options = sum(len(c["legs"]) for c in window)
    result = {
        "benchmark": "greeks",
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "conditions": {
            "underlyings": list(UNDERLYINGS),
            "dte_window": [MIN_DTE, MAX_DTE],
            "chains": [
                {
                    "underlying": c["underlying"],
                    "expiration": c["expiration"].isoformat(),
                    "dte": c["dte"],
                    "options": len(c["legs"]),
                }
                for c in window
            ],
            "options_per_pass": options,
            "passes": args.repeat,
            "path": "services.strategy.core.pricing.position_greeks (one leg per call)",
        },
        "no_greeks": failed // args.repeat,
        "per_option_us_p50": round(statistics.median(per_option_us), 1),
        "per_option_us_p99": round(pct(per_option_us, 0.99), 1),
        "per_chain_ms_p50": round(statistics.median(per_chain_ms), 1),
        "per_chain_ms_max": round(max(per_chain_ms), 1),
        "full_window_ms_p50": round(statistics.median(per_pass_ms), 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "conditions"}, indent=2))


if __name__ == "__main__":
    main()
