"""`python -m services.market_data`: run the market_data service until SIGTERM."""

from libs.runtime.connected import ConnectedService
from libs.runtime.runner import run_service

raise SystemExit(run_service(ConnectedService("market_data")))
