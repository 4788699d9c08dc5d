"""`python -m services.position_monitor`: run the position monitor until SIGTERM."""

from libs.runtime.runner import run_service
from services.position_monitor.bootstrap import MonitorDependencies
from services.position_monitor.service import PositionMonitorService

raise SystemExit(run_service(PositionMonitorService(MonitorDependencies())))
