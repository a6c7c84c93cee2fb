"""The part every fake upstream shares: an aiohttp app on 127.0.0.1, in a thread with its own event loop.

A fake subclasses ``FakeServer``, adds its routes in ``_routes`` and appends what it receives to
``self._requests`` under ``self._lock``; start/stop, the context manager and the recorded-request accessors
are here once. Sync and async tests alike can use a fake: its loop never shares the test's.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Generic, Self, TypeVar

from aiohttp import web

__all__ = ["FakeServer"]

R = TypeVar("R")


class FakeServer(Generic[R]):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self.port = 0
        self._requests: list[R] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not running; use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        name = f"{type(self).__name__}:{self.port}"
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._runner is None:
            self.stop()
            raise RuntimeError(f"{type(self).__name__} failed to start")
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if thread is None:
            return
        if loop is not None and runner is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = self._runner = None
        self.port = 0
        self._ready.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, sock: socket.socket) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self._routes(app)
            # handler_cancellation: a client that gives up (timeout tests) cancels its sleeping handler.
            runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
            self._runner = runner
        except BaseException:
            sock.close()
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def requests(self) -> list[R]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> R:
        with self._lock:
            if not self._requests:
                raise LookupError(f"{type(self).__name__} has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
