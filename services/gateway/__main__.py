"""`python -m services.gateway`: run the gateway service until SIGTERM."""

from libs.runtime.runner import run_service
from services.gateway.bootstrap import GatewayDependencies
from services.gateway.service import GatewayService

raise SystemExit(run_service(GatewayService(GatewayDependencies())))
