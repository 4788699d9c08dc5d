"""Run the simulator: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import uvicorn

from services.simulator.api import create_app
from services.simulator.broker import Broker
from services.simulator.clock import SimClock
from services.simulator.settings import SimSettings
from services.simulator.store import Store

log = logging.getLogger(__name__)


class SimulatorServer:
    """One simulator over ``data_dir`` (state in ``data_dir/sim.sqlite3``).

    ``start`` is None: resume the persisted clock, or real time on first start.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 7,
        start: datetime | None = None,
        speed: float = 1.0,
        settings: SimSettings | None = None,
    ) -> None:
        self.settings = settings or SimSettings(data_dir=data_dir, seed=seed)
        self.host = host
        self._requested_port = port
        self.store = Store(Path(data_dir) / "sim.sqlite3")
        saved = self.store.get_meta("clock")
        if start is None and saved is not None:
            start = datetime.fromisoformat(saved["now"])
            speed = float(saved["speed"]) if speed == 1.0 else speed
        self.clock = SimClock(start or datetime.now(UTC), speed)
        self.broker = Broker(self.store, self.clock, self.settings)
        self.broker.save_clock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._socket is None:
            return self._requested_port
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            create_app(self.broker),
            log_level="warning",
            access_log=False,
            lifespan="on",
            # Held "timeout after accept" responses must not delay a shutdown.
            timeout_graceful_shutdown=1,
        )

    def start(self) -> None:
        """Serve in a background thread; return once it accepts connections."""
        self._socket = self._bind()
        self._server = uvicorn.Server(self._config())
        server, sock = self._server, self._socket
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name="senex-simulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and close the state."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self.store.close()

    def run_forever(self) -> None:
        """Serve in the foreground until SIGTERM or Ctrl-C (uvicorn handles both)."""
        self._socket = self._bind()
        server = uvicorn.Server(self._config())
        print(f"Senex simulator listening on {self.url}", flush=True)
        print(
            f"  client secret: {self.settings.client_secret}\n"
            f"  refresh token: {self.settings.refresh_token}\n"
            f"  data dir:      {self.settings.data_dir}\n"
            f"  simulated now: {self.clock.now().isoformat()} (speed {self.clock.speed})",
            flush=True,
        )
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            previous = signal.signal(signal.SIGTERM, _clean_exit_on_sigterm(server))
        try:
            asyncio.run(server.serve(sockets=[self._socket]))
        finally:
            if on_main_thread and previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self._socket.close()
            self.store.close()


def _clean_exit_on_sigterm(server: uvicorn.Server) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM handler making SIGTERM a clean stop (exit status 0).

    uvicorn shuts down gracefully on SIGTERM and then re-raises the signal to the handler
    installed before it started, which by default kills the process (status 143). This
    handler ignores that re-raise once uvicorn is stopping, and exits 0 when SIGTERM
    arrives before uvicorn installed its own handlers.
    """

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if not server.should_exit:
            raise SystemExit(0)

    return on_sigterm
