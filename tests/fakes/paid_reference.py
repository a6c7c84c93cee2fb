"""A reference paid server built only with the SDKs' own seller code, to prove the gateway's buyer against it.

- ``GET /x402/report``: behind the x402 SDK's ``PaymentMiddlewareASGI`` (its Starlette/FastAPI middleware) with
  an ``x402ResourceServer`` over the SDK's ``HTTPFacilitatorClient``;
- ``GET /mpp/report``: behind pympp's ``@pay`` decorator with its ``evm`` charge method, whose facilitator is a URL.

Both settle through an x402 facilitator over HTTP — the gateway's local facilitator
(``/v1/payments/facilitator``), so the payment lands on the same in-memory chain the gateway's agents pay on, offline.
Handlers record the payer they were told about and count their runs. Served by uvicorn in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn
from mpp.methods.evm.server import charge as mpp_evm_charge
from mpp.server.decorator import pay
from mpp.server.mpp import Mpp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.middleware.fastapi import PaymentMiddlewareASGI
from x402.mechanisms.evm.default_assets import DEFAULT_ASSETS
from x402.mechanisms.evm.exact.register import register_exact_evm_server

__all__ = ["NETWORK", "PaidReference"]

NETWORK = "eip155:84532"


class PaidReference:
    """Sells ``/x402/report`` and ``/mpp/report`` at ``price`` (dollars text) to ``pay_to`` on Base Sepolia USDC."""

    def __init__(self, *, facilitator_url: str, pay_to: str, price: str = "0.02") -> None:
        self.facilitator_url = facilitator_url
        self.pay_to = pay_to
        self.price = price
        self.port = 0
        self.paid: list[dict[str, Any]] = []  # one entry per handler run: rail and payer as the SDK reported them
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> Starlette:
        usdc = DEFAULT_ASSETS[NETWORK][0]
        server = register_exact_evm_server(
            x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=self.facilitator_url)))
        )
        routes_config = {
            "GET /x402/report": {
                "accepts": {"scheme": "exact", "payTo": self.pay_to, "price": f"${self.price}", "network": NETWORK},
                "description": "A paid report (x402 reference server)",
            }
        }
        mpp = Mpp(
            methods=mpp_evm_charge(
                currency=usdc["asset"],
                recipient=self.pay_to,
                chain_id=int(NETWORK.split(":")[1]),
                decimals=usdc["decimals"],
                authorization={"name": usdc["name"], "version": usdc["version"]},
                facilitator=self.facilitator_url,
            ),
            realm="paid-reference",
            secret_key="reference-server-secret",
        )

        async def x402_report(request: Request) -> JSONResponse:
            payload = request.state.payment_payload
            payer = (payload.payload.get("authorization") or {}).get("from", "")
            with self._lock:
                self.paid.append({"rail": "x402", "payer": payer})
            return JSONResponse({"report": "x402 paid", "payer": payer})

        @pay(mpp.charge(amount=self.price, description="A paid report (MPP reference server)"))
        async def mpp_report(request: Request, credential: Any, receipt: Any) -> JSONResponse:
            with self._lock:
                self.paid.append({"rail": "mpp", "payer": receipt.payer or credential.payload.get("from", "")})
            return JSONResponse({"report": "mpp paid"})

        return Starlette(
            routes=[Route("/x402/report", x402_report), Route("/mpp/report", mpp_report)],
            middleware=[Middleware(PaymentMiddlewareASGI, routes=routes_config, server=server)],
        )

    def start(self) -> Self:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"PaidReference:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("PaidReference failed to start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
