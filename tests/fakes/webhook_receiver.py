"""A webhook receiver for log sinks: records each JSON batch it accepts, answers a settable status.

Stop it to play a sink that is down (connections refused), start it again on the same ``port`` to bring it back.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ._server import FakeServer

__all__ = ["WebhookReceiver"]


class WebhookReceiver(FakeServer[list[dict[str, Any]]]):
    status = 200  # what it answers; a batch is recorded only when this is a 2xx

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/ingest", self._ingest)

    async def _ingest(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.raw.append(body)
            self.headers.append(dict(request.headers))
            if 200 <= self.status < 300:
                self._requests.append(json.loads(body))
        return web.json_response({"ok": 200 <= self.status < 300}, status=self.status)

    @property
    def url(self) -> str:
        return self.root_url + "/ingest"

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.requests for event in batch]
