"""`python -m services.risk`: run the risk service until SIGTERM."""

from libs.runtime.runner import run_service
from services.risk.bootstrap import RiskDependencies
from services.risk.service import RiskService

raise SystemExit(run_service(RiskService(RiskDependencies())))
