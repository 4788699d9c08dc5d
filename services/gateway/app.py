"""The gateway's FastAPI application: routers, the one error shape, request metrics.

`build_app` takes a ready `Gateway`, so tests and the service build the same app,
REST routers and the WebSocket (``/ws``, see `services.gateway.ws`) alike.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

from libs.runtime.metrics import LATENCY_BUCKETS
from services.gateway.context import Gateway, refuse_nul
from services.gateway.errors import install_error_handlers
from services.gateway.routes import account, audit, auth, trading
from services.gateway.web import WEB_ROOT, mount_web
from services.gateway.ws import route as ws_route
from services.gateway.ws.hub import Hub

TITLE = "Senex Trader gateway"
DESCRIPTION = """\
REST API of Senex Trader over the event bus. Log in with `POST /api/auth/login`; the
session is an HttpOnly cookie. Every state-changing request must carry the CSRF token
from the login answer as the `X-CSRF-Token` header. Errors are always
`{"error": {"kind", "message", "field", "details"}}`.

Live updates: the WebSocket `/ws` (session cookie; messages are JSON objects with a
`type`, described in `services/gateway/ws/protocol.py`).
"""


class HttpMetrics:
    """Requests by route template and status, and their latency."""

    def __init__(self, registry: CollectorRegistry, service: str = "gateway") -> None:
        self.service = service
        self.requests = Counter(
            "senex_http_requests_total",
            "HTTP requests answered by the gateway, by method, route and status.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "senex_http_request_seconds",
            "Time to answer one HTTP request, by method and route.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def build_app(
    gateway: Gateway, *, metrics: HttpMetrics | None = None, hub: Hub | None = None
) -> FastAPI:
    """The application serving ``gateway``; ``hub`` fans bus messages out to ``/ws``."""
    app = FastAPI(title=TITLE, description=DESCRIPTION, version="1.0.0")
    app.state.gateway = gateway
    app.state.hub = hub or Hub(gateway.bus_of, lease_s=gateway.settings.quote_lease_s)
    install_error_handlers(app)
    for module in (auth, account, trading, audit):
        app.include_router(module.router, dependencies=[Depends(refuse_nul)])
    app.include_router(ws_route.router)

    if metrics is not None:

        @app.middleware("http")
        async def count(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.requests.labels(
                metrics.service, request.method, route, str(response.status_code)
            ).inc()
            metrics.latency.labels(metrics.service, request.method, route).observe(
                time.perf_counter() - started
            )
            return response

    mount_web(app, WEB_ROOT)  # the trading screen and its companion pages
    return app
