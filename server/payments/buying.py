"""``POST /v1/payments/fetch``: pay an x402 or MPP endpoint on behalf of the calling agent.

Steps: authenticate the key and name the agent (its bound agent, or ``Alephant-Agent-Id``); check the origin
against policy; fetch the URL; on a 402, price its offers in nano-USD and keep those policy allows (network,
asset, recipient, at most ``max_price``); check the agent's budgets for that amount BEFORE signing; sign with
the agent's wallet (its key opened only here); retry; when the seller's receipt comes back, record
``payment_spend`` in the ledger and count it against the budgets, and (when the call names its run) add a
``payment`` span to the run's trace. A refused payment records nothing. A transport failure after signing keeps
the price counted against the budgets: the seller may still settle the authorization it may have received.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from finance import payments as pay  # its names load the payment SDKs on first use
from finance.money import format_usd, to_nano
from providers.ingress import dialect

from ..admin.common import json_response, read_body
from ..call import AgentContext, Call, Principal
from ..errors import BudgetExceeded, GatewayError, InvalidRequest, NotFound, PolicyDenied, UpstreamUnavailable
from ..limits import Limiter, LimitsUnavailable
from ..limits.limiter import BudgetRefused
from ..limits.types import Admission
from ..responses import error_response
from ..services import Services
from ..stages import authenticate_request
from ..stages.agent_context import agent_ids
from .service import Payments
from .spans import payment_span
from .wallets import wallet_context

__all__ = ["FetchIn", "fetch", "pay_and_fetch"]


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    max_price: Decimal | None = Field(default=None, gt=0, description="decimal USD; at most the configured ceiling")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed(value: str, allowed: list[str]) -> bool:
    return not allowed or value.lower() in {item.lower() for item in allowed}


def _policy(payments: Payments, wallet: dict[str, Any], name: str) -> list[str]:
    return list(getattr(payments.settings.payments, name)) + list(wallet["policy"].get(name, []))


def _choose(offers: list[pay.Quote], payments: Payments, wallet: dict[str, Any], max_nano: int) -> pay.Quote:
    refusals = []
    for quote in offers:
        if not _allowed(quote.asset.network, _policy(payments, wallet, "allowed_networks")):
            refusals.append(f"network {quote.asset.network} is not allowed")
        elif not _allowed(quote.asset.address, _policy(payments, wallet, "allowed_assets")):
            refusals.append(f"asset {quote.asset.address} is not allowed")
        elif not _allowed(quote.pay_to, _policy(payments, wallet, "allowed_recipients")):
            refusals.append(f"recipient {quote.pay_to} is not allowed")
        elif quote.amount_nano > max_nano:
            refusals.append(f"price {format_usd(quote.amount_nano)} USD is above max_price {format_usd(max_nano)} USD")
        else:
            return quote
    if not offers:
        raise PolicyDenied(
            "The endpoint answered 402 without an x402 or MPP offer this gateway can pay (EVM stablecoin).",
            code="no_payable_offer",
        )
    raise PolicyDenied(
        "No offer of this endpoint may be paid: " + "; ".join(refusals) + ".", code="payment_not_allowed"
    )


async def _reserve(limiter: Limiter, principal: Principal, context: AgentContext, amount: int) -> Admission:
    """Hold the price against every applicable budget before signing: a signed authorization is spent money
    until it is known to have failed."""
    try:
        return await limiter.reserve(principal, context, amount)
    except BudgetRefused as exc:
        raise BudgetExceeded(f"{exc} Nothing was signed.") from None
    except LimitsUnavailable:
        raise GatewayError(
            "Budgets are unavailable (the limits backend cannot be reached and limits fail closed); nothing was "
            "signed. Retry shortly.",
            status=503,
            code="limits_unavailable",
            headers={"retry-after": "1"},
        ) from None


async def fetch(request: Request) -> Response:
    call = Call(request=request, endpoint="chat", dialect=dialect("openai"))
    try:
        return await _fetch(request)
    except GatewayError as exc:
        return error_response(call, exc)


async def _fetch(request: Request) -> Response:
    services: Services = request.app.state.services
    principal = authenticate_request(services.keyring, request.headers.get("authorization"))
    ids = agent_ids(request.headers)
    claimed = ids.get("agent_id")
    if principal.agent_id is not None and claimed not in (None, principal.agent_id):
        raise PolicyDenied(
            f"This key is bound to agent '{principal.agent_id}' and may not pay as '{claimed}'.",
            param="Alephant-Agent-Id",
        )
    context = AgentContext(
        agent_id=principal.agent_id or claimed, run_id=ids.get("run_id"), session_id=ids.get("session_id")
    )
    body = await read_body(request, FetchIn)
    answer, payment = await pay_and_fetch(services, principal, context, body)
    return _relay(answer, payment)


async def pay_and_fetch(
    services: Services, principal: Principal, context: AgentContext, body: FetchIn
) -> tuple[httpx.Response, dict[str, Any] | None]:
    """Fetch ``body.url`` as the context's agent, paying its 402 (x402 or MPP) from the agent's wallet within
    policy and budgets; the answer, and the payment made (None when none was asked for)."""
    payments: Payments = services.payments
    agent_id = context.agent_id
    if not agent_id:
        raise InvalidRequest(
            "Name the paying agent with the Alephant-Agent-Id header (its wallet pays).", param="Alephant-Agent-Id"
        )
    wallet = await payments.store.wallet(principal.workspace_id, agent_id)
    if wallet is None:
        raise NotFound(
            f"Agent '{agent_id}' has no wallet; create one with `alephant wallets create --agent {agent_id}`.",
            code="wallet_not_found",
        )
    if not _allowed(_origin(body.url), _policy(payments, wallet, "allowed_origins")):
        raise PolicyDenied(
            f"Payments to {_origin(body.url)} are not allowed (payments.allowed_origins).", code="origin_not_allowed"
        )
    ceiling = to_nano(wallet["policy"].get("max_price_usd") or payments.settings.payments.max_price_usd)
    max_nano = min(ceiling, to_nano(body.max_price)) if body.max_price is not None else ceiling
    content = body.body.encode() if body.body is not None else None
    started = datetime.now(UTC)
    payment_id: str | None = None
    async with httpx.AsyncClient(timeout=60) as client:
        try:
            first = await client.request(body.method, body.url, headers=body.headers, content=content)
            if first.status_code != 402:
                return first, None
            quote = _choose(
                pay.quotes(first.headers.get("payment-required"), first.headers.get_list("www-authenticate")),
                payments,
                wallet,
                max_nano,
            )
            hold = await _reserve(services.limiter, principal, context, quote.amount_nano)
            spent = 0  # what the hold commits: the price once a signature exists, until a refusal says otherwise
            try:
                account = pay.account_from_key(payments.box.open(wallet["ciphertext"], context=wallet_context(wallet)))
                name, value = await pay.sign(quote, account)
                spent = quote.amount_nano
                payment_id = await payments.store.claim(
                    claim="out:" + hashlib.sha256(value.encode()).hexdigest(),
                    direction="out",
                    rail=quote.rail,
                    workspace_id=principal.workspace_id,
                    agent_id=agent_id,
                    payer=account.address,
                    pay_to=quote.pay_to,
                    amount_nano=quote.amount_nano,
                    url=body.url,
                )
                assert payment_id is not None  # a fresh signature's hash
                paid = await client.request(
                    body.method, body.url, headers={**body.headers, name: value}, content=content
                )
                receipt = paid.headers.get("payment-response") or paid.headers.get("payment-receipt")
                settled = paid.status_code < 400 and receipt is not None
                if not settled:
                    spent = 0  # the seller answered and did not settle: the authorization was not used
            finally:
                # A transport failure after signing leaves ``spent`` at the price: the seller may still settle.
                await services.limiter.settle(hold, spent)
        except httpx.HTTPError as exc:
            if payment_id is not None:
                await _span(services, principal, context, body.url, quote, payment_id, started, status="unknown")
            raise UpstreamUnavailable(
                f"Fetching {body.url} failed: {type(exc).__name__}."
                + (
                    " A payment was signed and may still settle; it stays counted against budgets."
                    if payment_id
                    else ""
                ),
                provider="payments",
            ) from None
    await payments.store.finish(
        payment_id, status="settled" if settled else "failed", reference=receipt and receipt[:64]
    )
    if settled:
        await services.ledger.record(
            workspace_id=principal.workspace_id,
            kind="payment_spend",
            amount_nano=quote.amount_nano,
            idempotency_key=f"payment:{payment_id}",
            attribution={
                "key_id": principal.key_id,
                "department_id": principal.department_id,
                "agent_id": agent_id,
                "run_id": context.run_id,
                "session_id": context.session_id,
            },
            vendor=_origin(body.url),
            description=f"{quote.rail} payment to {body.url}",
            metadata={
                "rail": quote.rail,
                "pay_to": quote.pay_to,
                "network": quote.asset.network,
                "payment_id": payment_id,
            },
        )
    await _span(services, principal, context, body.url, quote, payment_id, started, status="ok" if settled else "error")
    return paid, {
        "id": payment_id,
        "rail": quote.rail,
        "amount_usd": format_usd(quote.amount_nano),
        "amount_nano": quote.amount_nano,
        "pay_to": quote.pay_to,
        "network": quote.asset.network,
        "settled": settled,
    }


async def _span(
    services: Services,
    principal: Principal,
    context: AgentContext,
    url: str,
    quote: pay.Quote,
    payment_id: str,
    started: datetime,
    *,
    status: str,
) -> None:
    """The run's ``payment`` span: costed at the price unless the seller refused (then nothing was spent)."""
    await payment_span(
        services.database,
        workspace_id=principal.workspace_id,
        run_id=context.run_id,
        session_id=context.session_id,
        name=f"{quote.rail} payment to {_origin(url)}",
        started_at=started,
        status=status,
        cost_nano=0 if status == "error" else quote.amount_nano,
        attributes={
            "direction": "out",
            "rail": quote.rail,
            "url": url,
            "amount_usd": format_usd(quote.amount_nano),
            "pay_to": quote.pay_to,
            "network": quote.asset.network,
            "payment_id": payment_id,
            "settled": status == "ok",
        },
    )


def _relay(response: httpx.Response, payment: dict[str, Any] | None) -> Response:
    return json_response(
        {"status": response.status_code, "headers": dict(response.headers), "body": response.text, "payment": payment}
    )
