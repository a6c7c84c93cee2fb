"""Facilitators: who verifies and settles a payment for a seller.

- ``LocalFacilitator``: the x402 SDK's own ``x402Facilitator`` with its EVM ``exact`` scheme, over a
  ``FakeChain`` per network (``finance.payments.chain``). Signatures, amounts, windows, nonces and balances are
  checked by the SDK and by the fake token contract; nothing leaves the process.
- ``http_facilitator(url)``: the x402 SDK's HTTP facilitator client, for a real facilitator service.

Both satisfy the x402 SDK's ``FacilitatorClient`` (async ``verify``/``settle``, sync ``get_supported``).
``MppFacilitator`` adapts one to pympp's ``Facilitator`` protocol (JSON dicts), so the MPP rail settles
through the same facilitator and the same chain as the x402 rail.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from x402 import x402Facilitator
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mechanisms.evm.default_assets import DEFAULT_ASSETS
from x402.mechanisms.evm.exact.register import register_exact_evm_facilitator
from x402.schemas import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    PaymentRequirementsV1,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)

from .chain import FakeChain, FakeChainSigner, TokenInfo

__all__ = ["LocalFacilitator", "MppFacilitator", "http_facilitator"]


class LocalFacilitator:
    """Verify and settle on in-memory chains, one per network, each holding the network's known stablecoins.

    Usage::

        facilitator = LocalFacilitator(networks=["eip155:84532"], initial_balance=100_000_000)
        server = x402ResourceServer(facilitator)
    """

    def __init__(self, *, networks: list[str], initial_balance: int) -> None:
        self._facilitator = x402Facilitator()
        self.chains: dict[str, FakeChain] = {}
        gas_payer = Account.create().address  # the facilitator's own account; the fake chain charges no gas
        for network in networks:
            tokens = [TokenInfo(row["asset"], row["name"], row["version"]) for row in DEFAULT_ASSETS.get(network, [])]
            chain = FakeChain(chain_id=int(network.split(":", 1)[1]), tokens=tokens, initial_balance=initial_balance)
            self.chains[network] = chain
            register_exact_evm_facilitator(self._facilitator, FakeChainSigner(chain, gas_payer), networks=network)

    async def verify(
        self, payload: PaymentPayload | PaymentPayloadV1, requirements: PaymentRequirements | PaymentRequirementsV1
    ) -> VerifyResponse:
        result: VerifyResponse = await self._facilitator.verify(payload, requirements)
        return result

    async def settle(
        self, payload: PaymentPayload | PaymentPayloadV1, requirements: PaymentRequirements | PaymentRequirementsV1
    ) -> SettleResponse:
        result: SettleResponse = await self._facilitator.settle(payload, requirements)
        return result

    def get_supported(self) -> SupportedResponse:
        supported: SupportedResponse = self._facilitator.get_supported()
        return supported


def http_facilitator(url: str) -> HTTPFacilitatorClient:
    return HTTPFacilitatorClient(FacilitatorConfig(url=url))


class MppFacilitator:
    """pympp's ``Facilitator`` (dict in, dict out) over an x402 SDK facilitator client."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def verify(self, payment_payload: Any, payment_requirements: Any) -> Any:
        result = await self._inner.verify(
            PaymentPayload.model_validate(payment_payload), PaymentRequirements.model_validate(payment_requirements)
        )
        return result.model_dump(by_alias=True, exclude_none=True)

    async def settle(self, payment_payload: Any, payment_requirements: Any) -> Any:
        result = await self._inner.settle(
            PaymentPayload.model_validate(payment_payload), PaymentRequirements.model_validate(payment_requirements)
        )
        return result.model_dump(by_alias=True, exclude_none=True)
