"""`python -m services.execution`: run the execution service until SIGTERM."""

from libs.runtime.runner import run_service
from services.execution.bootstrap import ExecutionDependencies
from services.execution.service import ExecutionService

raise SystemExit(run_service(ExecutionService(ExecutionDependencies())))
