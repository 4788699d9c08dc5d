"""The browser pages: the trading screen and its companions, served by the gateway.

`mount_web` adds to an existing app (it may already be serving):

- the HTML pages: ``/trading/`` (the trading screen), ``/trading/positions/``,
  ``/trading/orders/``, ``/trading/settings/``, ``/trading/audit/`` and ``/login/``
  (``/`` redirects to ``/trading/``). They are static shells: every figure on them comes
  from the REST API and ``/ws`` after the page's script has checked the session, so a
  page served to a stranger shows nothing but the login redirect;
- the page's own code, ``web/src`` (plain ES modules), under ``/static/app/``;
- an allow-list of files from ``web/node_modules`` (``npm ci --prefix web``) under
  ``/static/vendor/``: only the built files the pages load, never the whole folder.

Every response carries a Content-Security-Policy allowing only this origin (scripts,
styles, the WebSocket), so an injected string can neither run script nor load one from
elsewhere, and ``no-cache`` (revalidate with the ETag), so a new deployment's code is
picked up without a stale mix of modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from libs.contracts.errors import ErrorKind
from libs.runtime.log import get_logger
from services.gateway.errors import error_response

#: URL path -> page file in ``web/src``.
PAGES: Mapping[str, str] = MappingProxyType(
    {
        "/trading/": "index.html",
        "/trading/positions/": "positions.html",
        "/trading/orders/": "orders.html",
        "/trading/settings/": "settings.html",
        "/trading/audit/": "audit.html",
        "/login/": "login.html",
    }
)
#: ``/static/vendor/<name>`` -> file under ``web/node_modules`` (the allow-list).
VENDOR: Mapping[str, str] = MappingProxyType(
    {
        "bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
        "uPlot.esm.js": "uplot/dist/uPlot.esm.js",
        "uPlot.min.css": "uplot/dist/uPlot.min.css",
    }
)
#: The repository's ``web/`` folder (the default ``web_root``).
WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
APP_PREFIX = "/static/app"
VENDOR_PREFIX = "/static/vendor"

#: Same-origin only; ``'unsafe-inline'`` for styles because the chart library positions
#: its elements with style attributes. ``connect-src 'self'`` covers ws(s):// of this host.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }
)

_log = get_logger("gateway.web")


def _with_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


class _AppFiles(StaticFiles):
    """``web/src`` with the security and caching headers on every file."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        return _with_headers(await super().get_response(path, scope))


def _missing_vendor(name: str) -> Response:
    return _with_headers(
        error_response(
            503,
            ErrorKind.SERVICE_UNAVAILABLE,
            f"front-end dependency {name} is not installed: run `make install` "
            "(npm ci --prefix web)",
        )
    )


def mount_web(app: FastAPI, web_root: Path) -> None:
    """Serve the pages of ``web_root`` (the repository's ``web/``) from ``app``.

    Idempotent: a second call on the same app does nothing. A missing
    ``web_root/node_modules`` is logged, and its files answer 503 until installed.
    """
    if getattr(app.state, "web_mounted", False):
        return
    app.state.web_mounted = True
    src = (web_root / "src").resolve()
    modules = (web_root / "node_modules").resolve()
    if not (src / "index.html").is_file():
        raise FileNotFoundError(f"no web pages under {src}")
    missing = [rel for rel in VENDOR.values() if not (modules / rel).is_file()]
    if missing:
        _log.error("front-end dependencies missing: run make install", missing=missing)

    for url, filename in PAGES.items():
        _add_page(app, url, src / filename)

    async def root() -> Response:
        return _with_headers(RedirectResponse("/trading/", status_code=307))

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)

    for name, rel in VENDOR.items():
        _add_vendor(app, name, modules / rel)

    app.mount(APP_PREFIX, _AppFiles(directory=src), name="web-app")


def _add_page(app: FastAPI, url: str, file: Path) -> None:
    async def page() -> Response:
        return _with_headers(FileResponse(file, media_type="text/html; charset=utf-8"))

    app.add_api_route(url, page, methods=["GET"], include_in_schema=False, name=f"page:{url}")


def _add_vendor(app: FastAPI, name: str, file: Path) -> None:
    media = "text/javascript" if name.endswith(".js") else "text/css"

    # A plain def: FastAPI runs it in its thread pool, so the file check does not block.
    def vendor() -> Response:
        if not file.is_file():
            return _missing_vendor(name)
        return _with_headers(FileResponse(file, media_type=f"{media}; charset=utf-8"))

    app.add_api_route(
        f"{VENDOR_PREFIX}/{name}",
        vendor,
        methods=["GET"],
        include_in_schema=False,
        name=f"vendor:{name}",
    )
