"""The handler behind a paid endpoint: answers JSON and counts its hits (to prove at-most-once execution)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._server import FakeServer

__all__ = ["PaidUpstream"]


class PaidUpstream(FakeServer[str]):
    delay = 0.3  # long enough that two concurrent paid requests overlap inside the handler

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self._requests.append(request.path)
        await asyncio.sleep(self.delay)
        return web.json_response({"weather": "sunny", "path": request.path})

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self._requests)
