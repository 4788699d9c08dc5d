"""`python -m services.strategy`: run the strategy service until SIGTERM."""

from libs.runtime.connected import ConnectedService
from libs.runtime.runner import run_service

raise SystemExit(run_service(ConnectedService("strategy")))
