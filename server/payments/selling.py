"""Paid endpoints: one route answers both rails, runs the handler at most once per payment, settles on success.

The steps of a paid call:

1. no payment header: 402 with both challenges (``PAYMENT-REQUIRED`` and ``WWW-Authenticate: Payment``);
2. verify the payment (``PAYMENT-SIGNATURE`` or ``Authorization: Payment``) through the facilitator, not
   settling it; a bad one gets the challenges again with the reason;
3. claim it: insert its unique row (network:token:payer:nonce) in ``payments``; a second request carrying the
   same payment — concurrent or later — finds the row and gets 409 ``payment_replayed``;
4. run the handler: forward to the target URL, or make the governed model call of a ``model:`` target
   (``server.payments.model_target``); on an error answer release the claim, settle nothing;
5. settle, return the receipt headers, record revenue in the ledger against the endpoint and, when the paying
   request names its run (``Alephant-Run-Id``), a ``payment`` span in that run's trace.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from finance import payments as pay  # its names load the payment SDKs on first use
from finance.money import format_usd

from ..errors import GatewayError
from ..responses import openai_error_body
from ..stages.agent_context import agent_ids
from .endpoints import model_of
from .model_target import model_body, model_pipeline, run_model
from .service import PaidEndpoint, Payments
from .spans import payment_span

__all__ = ["PaidRoute", "paid_endpoint"]

_HOP_HEADERS = {
    "host",
    "content-length",
    "connection",
    "authorization",
    "payment-signature",
    "x-payment",
    "transfer-encoding",
}


class PaidRoute(Route):
    """Matches only the paths of the paid-endpoint snapshot, so it shadows no other route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        services = getattr(scope["app"].state, "services", None)
        if scope["type"] != "http" or services is None or scope["path"] not in services.payments.endpoints:
            return Match.NONE, {}
        return super().matches(scope)


def _error(message: str, *, status: int, code: str, headers: list[tuple[str, str]] | None = None) -> Response:
    response = Response(
        openai_error_body(GatewayError(message, status=status, code=code)),
        status_code=status,
        media_type="application/json",
    )
    for name, value in headers or []:
        response.headers.append(name, value)
    return response


async def _challenge(endpoint: PaidEndpoint, request: Request, message: str, code: str) -> Response:
    headers = await endpoint.offer.challenge(
        str(request.url), request.method, error=None if code == "payment_required" else message
    )
    return _error(message, status=402, code=code, headers=headers)


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    """What the handler answered: relayed to the payer, and settled only when ``status`` < 400."""

    status: int
    content: bytes
    media_type: str | None


async def _forward(target: str, request: Request) -> _Answer:
    headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_HEADERS}
    url = target + (f"?{request.url.query}" if request.url.query else "")
    async with httpx.AsyncClient(timeout=60) as client:
        answer = await client.request(request.method, url, headers=headers, content=await request.body())
    return _Answer(answer.status_code, answer.content, answer.headers.get("content-type"))


async def _call_model(payments: Payments, endpoint: PaidEndpoint, request: Request, body: bytes) -> _Answer:
    services = request.app.state.services
    if payments.model_pipeline is None:
        payments.model_pipeline = model_pipeline(services)
    try:
        _, reply = await run_model(
            payments.model_pipeline, request, endpoint_id=endpoint.id, workspace_id=endpoint.workspace_id, body=body
        )
    except GatewayError as exc:
        return _Answer(exc.status, openai_error_body(exc), "application/json")
    return _Answer(reply.status, reply.body, reply.media_type)


async def paid_endpoint(request: Request) -> Response:
    started = datetime.now(UTC)
    payments: Payments = request.app.state.services.payments
    endpoint = payments.endpoints[request.url.path]
    offer = endpoint.offer
    try:
        ids = agent_ids(request.headers)
        model = model_of(endpoint.target)
        body = model_body(await request.body(), model) if model is not None else b""
    except GatewayError as exc:  # checked before any payment is looked at: a bad request costs nothing
        return _error(exc.message, status=exc.status, code=exc.code)
    signature = request.headers.get("payment-signature")
    authorization = request.headers.get("authorization") or ""
    if not signature and not authorization.lower().startswith("payment ") and "x-payment" in request.headers:
        # The x402 SDK's resource server verifies v2 payloads only (its facilitator knows v1; its server does not).
        return await _challenge(
            endpoint,
            request,
            "x402 v1 payments (X-PAYMENT) are not accepted; pay the PAYMENT-REQUIRED offer with x402 v2 "
            "(PAYMENT-SIGNATURE) or the WWW-Authenticate offer with MPP.",
            "unsupported_version",
        )
    if not signature and not authorization.lower().startswith("payment "):
        price = offer.terms.display_amount
        return await _challenge(
            endpoint, request, f"Payment required: {price} USD per call (x402 or MPP).", "payment_required"
        )
    try:
        verified = await (offer.verify_x402(signature) if signature else offer.verify_mpp(authorization))
    except pay.PaymentRejected as exc:
        if exc.status == 402:
            return await _challenge(endpoint, request, str(exc), exc.reason)
        return _error(str(exc), status=exc.status, code="payment_rejected")
    payment_id = await payments.store.claim(
        claim=verified.claim,
        direction="in",
        rail=verified.rail,
        workspace_id=endpoint.workspace_id,
        endpoint_id=endpoint.id,
        payer=verified.payer,
        pay_to=offer.terms.pay_to,
        amount_nano=verified.amount_nano,
        url=str(request.url),
    )
    if payment_id is None:
        return _error(
            "This payment was already used for another request; sign a new payment for each call.",
            status=409,
            code="payment_replayed",
        )
    try:
        answer = await (
            _call_model(payments, endpoint, request, body) if model is not None else _forward(endpoint.target, request)
        )
    except httpx.HTTPError as exc:
        await payments.store.release(payment_id)
        return _error(
            f"The paid endpoint's target failed ({type(exc).__name__}); you were not charged.",
            status=502,
            code="upstream_unavailable",
        )
    if answer.status >= 400:
        await payments.store.release(payment_id)
        return Response(answer.content, status_code=answer.status, media_type=answer.media_type)
    response = await _settle(request, payments, endpoint, verified, payment_id, answer)
    if response.status_code < 400:
        await payment_span(
            payments.store.database,
            workspace_id=endpoint.workspace_id,
            run_id=ids.get("run_id"),
            session_id=ids.get("session_id"),
            name=f"{verified.rail} payment received for {endpoint.path}",
            started_at=started,
            status="ok",
            cost_nano=0,  # revenue, not a cost of the run
            attributes={
                "direction": "in",
                "rail": verified.rail,
                "amount_usd": format_usd(verified.amount_nano),
                "payer": verified.payer,
                "endpoint_id": endpoint.id,
                "payment_id": payment_id,
            },
        )
    return response


async def _settle(
    request: Request,
    payments: Payments,
    endpoint: PaidEndpoint,
    verified: pay.Verified,
    payment_id: str,
    answer: _Answer,
) -> Response:
    offer = endpoint.offer
    try:
        reference, headers = await (
            offer.settle_x402(verified) if verified.rail == "x402" else offer.settle_mpp(verified)
        )
    except pay.PaymentRejected as exc:
        await payments.store.finish(payment_id, status="failed")
        return _error(str(exc), status=402, code=exc.reason)
    await payments.store.finish(payment_id, status="settled", reference=reference)
    await request.app.state.services.ledger.record(
        workspace_id=endpoint.workspace_id,
        kind="revenue",
        amount_nano=verified.amount_nano,
        idempotency_key=f"payment:{verified.claim}",
        endpoint=endpoint.id,
        vendor=verified.payer,
        description=f"{verified.rail} payment for {endpoint.path}",
        metadata={"rail": verified.rail, "payer": verified.payer, "reference": reference, "payment_id": payment_id},
    )
    response = Response(answer.content, status_code=answer.status, media_type=answer.media_type)
    for name, value in headers:
        response.headers[name] = value
    return response
