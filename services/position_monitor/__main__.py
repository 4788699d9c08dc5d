"""`python -m services.position_monitor`: run the position_monitor service until SIGTERM."""

from libs.runtime.connected import ConnectedService
from libs.runtime.runner import run_service

raise SystemExit(run_service(ConnectedService("position_monitor")))
