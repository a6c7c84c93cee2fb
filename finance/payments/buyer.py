"""Buying: read a 402's offers on both rails, and sign the one chosen with the payer's key (x402 SDK, pympp).

``quotes`` turns a 402 response's headers into priced ``Quote``s (x402 ``PAYMENT-REQUIRED`` first, then MPP
``WWW-Authenticate: Payment`` challenges for ``evm/charge``; MPP first when the seller is an MPP server whose
x402 offer needs its own route binding), each in nano-USD so policy and budgets can judge
it before anything is signed; ``sign`` produces the header that pays one quote.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from mpp import Challenge
from mpp.methods.evm.client import charge as mpp_evm_client
from mpp.runtime import CredentialParams
from x402 import x402Client
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequired, PaymentRequirements

from .terms import Asset, TermsError, find_asset, units_to_nano

__all__ = ["Quote", "account_from_key", "new_account", "quotes", "sign"]

_MPPX = "mppx"  # the route-binding extension of MPP servers' x402 offers


@dataclasses.dataclass(frozen=True, slots=True)
class Quote:
    rail: str  # x402 | mpp
    asset: Asset
    pay_to: str
    units: int
    amount_nano: int
    offer: Any  # (PaymentRequired, PaymentRequirements) for x402, a Challenge for MPP


def _x402_quotes(header: str) -> list[Quote]:
    required = decode_payment_required_header(header)
    if not isinstance(required, PaymentRequired):
        return []
    found = []
    for accepted in required.accepts:
        if accepted.scheme != "exact":
            continue
        try:
            asset = find_asset(str(accepted.network), accepted.asset)
        except TermsError:
            continue
        units = int(accepted.amount)
        found.append(
            Quote("x402", asset, accepted.pay_to, units, units_to_nano(units, asset.decimals), (required, accepted))
        )
    return found


def _mpp_quotes(headers: Iterable[str]) -> list[Quote]:
    found = []
    for header in headers:
        if not header.lower().startswith("payment "):
            continue
        try:
            challenge = Challenge.from_www_authenticate(header)
            request = challenge.request
            details = request.get("methodDetails") or {}
            asset = find_asset(f"eip155:{details.get('chainId')}", str(request.get("currency")))
            units = int(request["amount"])
        except Exception:
            continue
        if challenge.method != "evm" or challenge.intent != "charge":
            continue
        found.append(
            Quote("mpp", asset, str(request.get("recipient")), units, units_to_nano(units, asset.decimals), challenge)
        )
    return found


def _mpp_native(header: str) -> bool:
    """Whether the x402 offer comes from an MPP server (pympp, mppx) that binds x402 payments to its route with
    its own ``mppx`` extension, which x402 clients cannot sign: such a server is paid over MPP first."""
    required = decode_payment_required_header(header)
    return isinstance(required, PaymentRequired) and _MPPX in (required.extensions or {})


def quotes(payment_required: str | None, www_authenticate: Iterable[str]) -> list[Quote]:
    """Every offer of a 402 this wallet could pay: x402 first, unless the seller is an MPP server."""
    found: list[Quote] = []
    native = False
    if payment_required:
        with contextlib.suppress(Exception):  # an unreadable x402 header leaves the MPP offers
            found += _x402_quotes(payment_required)
            native = _mpp_native(payment_required)
    mpp = _mpp_quotes(www_authenticate)
    return mpp + found if native else found + mpp


def new_account() -> LocalAccount:
    """A fresh EVM key: an agent's wallet."""
    account: LocalAccount = Account.create()
    return account


def account_from_key(key: str) -> LocalAccount:
    """The account of a stored (unsealed) private key."""
    account: LocalAccount = Account.from_key(key)
    return account


async def sign(quote: Quote, account: LocalAccount) -> tuple[str, str]:
    """The request header (name, value) that pays ``quote`` with ``account``'s EIP-3009 authorization."""
    if quote.rail == "x402":
        required, accepted = quote.offer
        assert isinstance(accepted, PaymentRequirements)
        client = register_exact_evm_client(x402Client(), EthAccountSigner(account), networks=quote.asset.network)
        chosen = required.model_copy(update={"accepts": [accepted]})
        payload = await client.create_payment_payload(chosen)
        return "PAYMENT-SIGNATURE", encode_payment_signature_header(payload)
    method = mpp_evm_client(
        currency=quote.asset.address,
        account=account,
        chain_id=quote.asset.chain_id,
        decimals=quote.asset.decimals,
        authorization={"name": quote.asset.name, "version": quote.asset.version},
    )
    return "Authorization", await method.create_credential(CredentialParams(challenge=quote.offer))
