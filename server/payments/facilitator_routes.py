"""The local facilitator over HTTP, at ``/v1/payments/facilitator/{supported,verify,settle}``.

The x402 facilitator protocol (what the SDKs' HTTP facilitator clients speak: ``GET /supported``, ``POST /verify``
and ``POST /settle`` with ``{"x402Version", "paymentPayload", "paymentRequirements"}``), answered by this
gateway's local facilitator and its in-memory chain. Other services in development (a seller built with the
x402 or pympp SDK's own middleware, say) then settle on the same chain the gateway's agents pay on, offline.
Served only with ``payments.serve_local_facilitator`` and no ``facilitator_url``: it moves no real money.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance import payments as pay  # its names load the payment SDKs on first use

from ..admin.common import json_response

__all__ = ["routes"]

_PREFIX = "/v1/payments/facilitator"


def _local(request: Request) -> pay.LocalFacilitator | None:
    payments = request.app.state.services.payments
    served = payments.settings.payments.serve_local_facilitator
    return payments.facilitator if served and isinstance(payments.facilitator, pay.LocalFacilitator) else None


def _problem(message: str, status: int) -> Response:
    return json_response({"error": message}, status=status)


def _dump(result: Any) -> Response:
    return json_response(result.model_dump(mode="json", by_alias=True, exclude_none=True))


async def supported(request: Request) -> Response:
    facilitator = _local(request)
    if facilitator is None:
        return _problem("This gateway serves no facilitator (payments.serve_local_facilitator is off).", 404)
    return _dump(facilitator.get_supported())


async def _operate(request: Request, operation: str) -> Response:
    facilitator = _local(request)
    if facilitator is None:
        return _problem("This gateway serves no facilitator (payments.serve_local_facilitator is off).", 404)
    from x402.schemas import PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV1

    try:
        body = orjson.loads(await request.body())
        v1 = body.get("x402Version") == 1
        payload = (PaymentPayloadV1 if v1 else PaymentPayload).model_validate(body["paymentPayload"])
        requirements = (PaymentRequirementsV1 if v1 else PaymentRequirements).model_validate(
            body["paymentRequirements"]
        )
    except (orjson.JSONDecodeError, AttributeError, KeyError, ValidationError) as exc:
        return _problem(
            f"Expected JSON {{x402Version, paymentPayload, paymentRequirements}}: {type(exc).__name__}.", 400
        )
    if operation == "verify":
        return _dump(await facilitator.verify(payload, requirements))
    return _dump(await facilitator.settle(payload, requirements))


async def verify(request: Request) -> Response:
    return await _operate(request, "verify")


async def settle(request: Request) -> Response:
    return await _operate(request, "settle")


routes: list[BaseRoute] = [
    Route(f"{_PREFIX}/supported", supported, methods=["GET"]),
    Route(f"{_PREFIX}/verify", verify, methods=["POST"]),
    Route(f"{_PREFIX}/settle", settle, methods=["POST"]),
]
