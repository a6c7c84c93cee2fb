"""Selling: one offer answers both rails — an x402 v2 challenge (x402 SDK) and an MPP challenge (pympp).

``Offer.challenge`` gives the 402 headers of both; ``Offer.verify`` checks a paid request's payment without
settling it and names the authorization it spends (``Verified.claim``: network, token, payer, nonce — the
same key on both rails, so one authorization can never pay twice, whichever header carries it);
``Offer.settle`` settles it and gives the receipt headers. The caller runs its handler between the two, after
claiming ``Verified.claim``: the SDKs verify and settle, but do not stop two requests carrying one payment
from both running the handler between those steps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mpp import Credential
from mpp.errors import PaymentError
from mpp.methods.evm.server import charge as mpp_evm_charge
from mpp.server.http import PaymentRequired
from mpp.server.http import Request as MppRequest
from mpp.server.mpp import Mpp
from x402 import x402ResourceServer
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.mechanisms.evm.exact.register import register_exact_evm_server
from x402.schemas import AssetAmount, PaymentPayload, PaymentRequirements, ResourceConfig, ResourceInfo

from .terms import Terms, units_to_nano

__all__ = ["Offer", "PaymentRejected", "Seller", "Verified"]

_TIMEOUT_SECONDS = 300


class PaymentRejected(Exception):
    """A payment that does not pay this offer; ``reason`` is a stable code, the message says what to do."""

    def __init__(self, message: str, *, reason: str, status: int = 402) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True)
class Verified:
    rail: str  # x402 | mpp
    payer: str
    amount_nano: int
    claim: str  # network:token:payer:nonce, lower case
    payload: Any  # the rail's own payment object, handed back to ``settle``


class Seller:
    """The x402 resource server and the MPP engine settings shared by every offer."""

    def __init__(self, facilitator: Any, mpp_facilitator: Any, *, realm: str, secret_key: str) -> None:
        self.x402 = register_exact_evm_server(x402ResourceServer(facilitator))
        self.mpp_facilitator = mpp_facilitator
        self.realm = realm
        self.secret_key = secret_key

    def initialize(self) -> None:
        """Ask the facilitator what it supports (a blocking call for an HTTP facilitator: run it off the loop)."""
        self.x402.initialize()

    def offer(self, terms: Terms, *, description: str = "") -> Offer:
        return Offer(self, terms, description)


class Offer:
    def __init__(self, seller: Seller, terms: Terms, description: str) -> None:
        self.seller = seller
        self.terms = terms
        self.description = description
        asset = terms.asset
        price = AssetAmount(
            amount=str(terms.units), asset=asset.address, extra={"name": asset.name, "version": asset.version}
        )
        config = ResourceConfig(
            scheme="exact",
            network=asset.network,
            pay_to=terms.pay_to,
            price=price,
            max_timeout_seconds=_TIMEOUT_SECONDS,
        )
        self.requirements: PaymentRequirements = seller.x402.build_payment_requirements(config)[0]
        method = mpp_evm_charge(
            currency=asset.address,
            recipient=terms.pay_to,
            chain_id=asset.chain_id,
            decimals=asset.decimals,
            authorization={"name": asset.name, "version": asset.version},
            facilitator=seller.mpp_facilitator,
            max_timeout_seconds=_TIMEOUT_SECONDS,
        )
        self.mpp = Mpp(methods=method, realm=seller.realm, secret_key=seller.secret_key)

    async def challenge(self, url: str, method: str, error: str | None = None) -> list[tuple[str, str]]:
        """The 402 headers: ``PAYMENT-REQUIRED`` (x402 v2) and ``WWW-Authenticate: Payment`` (MPP)."""
        required = await self.seller.x402.create_payment_required_response(
            [self.requirements],
            ResourceInfo(url=url, description=self.description or None, mime_type="application/json"),
            error,
        )
        headers = [("PAYMENT-REQUIRED", encode_payment_required_header(required))]
        result = await self.mpp.charge(amount=self.terms.display_amount, description=self.description or None)(
            MppRequest(method=method, url=url)
        )
        assert isinstance(result, PaymentRequired)
        headers += [(name, value) for name, value in result.challenge.headers.items() if name == "www-authenticate"]
        return headers

    async def verify_x402(self, header: str) -> Verified:
        try:
            payload = decode_payment_signature_header(header)
        except Exception:
            raise PaymentRejected(
                "The PAYMENT-SIGNATURE header is not a base64 x402 payment payload.", reason="malformed_payment"
            ) from None
        if not isinstance(payload, PaymentPayload):
            raise PaymentRejected(
                "x402 v1 payloads are not accepted here; pay with x402 v2 (PAYMENT-SIGNATURE).",
                reason="unsupported_version",
            )
        if self.seller.x402.find_matching_requirements([self.requirements], payload) is None:
            raise PaymentRejected(
                "The payment does not accept this endpoint's requirements (amount, asset, network or pay_to "
                "differ from the PAYMENT-REQUIRED challenge); sign the requirements as offered.",
                reason="requirements_mismatch",
            )
        result = await self.seller.x402.verify_payment(payload, self.requirements)
        if not result.is_valid:
            verify = result.verify
            raise PaymentRejected(
                f"The facilitator refused the payment: {verify.invalid_reason}"
                + (f" ({verify.invalid_message})" if verify.invalid_message else ""),
                reason=str(verify.invalid_reason or "invalid_payment"),
            )
        authorization = payload.payload.get("authorization") or {}
        payer = str(authorization.get("from", ""))
        return Verified(
            rail="x402",
            payer=payer,
            amount_nano=units_to_nano(int(self.requirements.amount), self.terms.asset.decimals),
            claim=self._claim(payer, str(authorization.get("nonce", ""))),
            payload=payload,
        )

    async def settle_x402(self, verified: Verified) -> tuple[str, list[tuple[str, str]]]:
        settled = await self.seller.x402.settle_payment(verified.payload, self.requirements)
        if not settled.success:
            raise PaymentRejected(
                f"Settlement failed: {settled.error_reason}"
                + (f" ({settled.error_message})" if settled.error_message else ""),
                reason=str(settled.error_reason or "settlement_failed"),
            )
        return settled.transaction, [("PAYMENT-RESPONSE", encode_payment_response_header(settled))]

    async def verify_mpp(self, authorization: str) -> Verified:
        try:
            validation = await self.mpp.validate_credential(authorization)
        except PaymentError as exc:
            raise PaymentRejected(
                f"The MPP credential was refused: {exc}", reason=type(exc).__name__, status=exc.status
            ) from None
        request = validation.request
        details = request.get("methodDetails") or {}
        asset = self.terms.asset
        if (
            str(request.get("amount")) != str(self.terms.units)
            or str(request.get("currency", "")).lower() != asset.address.lower()
            or str(request.get("recipient", "")).lower() != self.terms.pay_to.lower()
            or details.get("chainId") != asset.chain_id
        ):
            raise PaymentRejected(
                "The MPP credential answers a challenge for other terms than this endpoint's; pay this endpoint's "
                "own WWW-Authenticate challenge.",
                reason="requirements_mismatch",
            )
        payload = Credential.from_authorization(authorization).payload
        payer = str(validation.payer or payload.get("from", ""))
        return Verified(
            rail="mpp",
            payer=payer,
            amount_nano=self.terms.amount_nano,
            claim=self._claim(payer, str(payload.get("nonce", ""))),
            payload=authorization,
        )

    async def settle_mpp(self, verified: Verified) -> tuple[str, list[tuple[str, str]]]:
        try:
            receipt = await self.mpp.broadcast_credential(verified.payload)
        except PaymentError as exc:
            raise PaymentRejected(f"Settlement failed: {exc}", reason=type(exc).__name__, status=exc.status) from None
        return receipt.reference, [("Payment-Receipt", receipt.to_payment_receipt())]

    def _claim(self, payer: str, nonce: str) -> str:
        return f"{self.terms.asset.network}:{self.terms.asset.address}:{payer}:{nonce}".lower()
