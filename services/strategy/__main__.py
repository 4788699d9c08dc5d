"""`python -m services.strategy`: run the strategy service until SIGTERM."""

from libs.runtime.runner import run_service
from services.strategy.bootstrap import StrategyDependencies
from services.strategy.service import StrategyService

raise SystemExit(run_service(StrategyService(StrategyDependencies())))
