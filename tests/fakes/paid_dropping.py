"""A seller that drops the connection once paid: it answers 402 with the challenge headers it was given, and
closes the socket without answering a request that carries a payment (the buyer's transport failure after
signing, when the seller may or may not settle)."""

from __future__ import annotations

from aiohttp import web

from ._server import FakeServer

__all__ = ["DroppingSeller"]

_PAYMENT_HEADERS = ("payment-signature", "x-payment")


class DroppingSeller(FakeServer[str]):
    challenge: list[tuple[str, str]] = []  # set by the test: the 402 headers to offer

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        paid = any(name in request.headers for name in _PAYMENT_HEADERS) or request.headers.get(
            "authorization", ""
        ).lower().startswith("payment ")
        with self._lock:
            self._requests.append("paid" if paid else "unpaid")
        if not paid:
            response = web.json_response({"error": "payment required"}, status=402)
            for name, value in self.challenge:
                response.headers.add(name, value)
            return response
        assert request.transport is not None
        request.transport.close()
        raise web.HTTPInternalServerError  # never sent: the connection is gone

    @property
    def paid_requests(self) -> int:
        with self._lock:
            return self._requests.count("paid")
