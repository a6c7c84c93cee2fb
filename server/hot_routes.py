"""The model routes, dispatched by exact path before Starlette's router.

Every model call is a ``POST`` to one of a handful of fixed paths (``/v1/chat/completions``, ``/ai/messages``,
...). Starlette reaches them through its error and exception middleware and a regex match per route, in
order, past the run, finance and payment routes: ~15-25 µs a request, about a tenth of the governed path's
CPU (``bench/RESULTS.md``). ``GatewayApp`` answers those paths with one dict lookup and hands everything
else, lifespan included, to Starlette unchanged. The endpoints are the same functions Starlette would call,
so both ways give the same answers; ``tests/test_hot_routes.py`` holds them to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import InternalError
from .responses import openai_error_body

__all__ = ["GatewayApp", "HotEndpoint"]

HotEndpoint = Callable[[Request], Awaitable[Any]]

_log = logging.getLogger("alephant.gateway")


class GatewayApp(Starlette):
    """Starlette, with ``hot`` (exact path → endpoint of a ``POST``) answered before the router.

    Nothing else can claim those paths: paid endpoints, the one route kind matched before them in the list, are
    refused under ``/v1`` and ``/ai`` (``config.PaidPath``).
    """

    def __init__(self, *, hot: Mapping[str, HotEndpoint], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot = dict(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.hot.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await _serve(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _serve(endpoint: HotEndpoint, scope: Scope, receive: Receive, send: Send) -> None:
    try:
        response = await endpoint(Request(scope, receive, send))
    except Exception:  # a bug: the pipeline answers every failure it knows in the caller's dialect
        _log.exception("internal error on %s", scope["path"])
        error = InternalError("Internal error. The gateway's log has the details.")
        response = Response(openai_error_body(error), status_code=500, media_type="application/json")
    await response(scope, receive, send)
