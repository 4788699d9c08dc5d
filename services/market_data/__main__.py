"""`python -m services.market_data`: quotes, chains, bands, staleness and balances."""

from libs.runtime.runner import run_service
from services.market_data.bootstrap import MarketDataDependencies
from services.market_data.service import MarketDataService

raise SystemExit(run_service(MarketDataService(MarketDataDependencies())))
