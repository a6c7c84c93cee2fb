"""Agent payments over x402 and MPP: terms and units, the local facilitator and its fake chain, selling, buying.

Protocol handling is the SDKs' (``x402`` 2.x with its EVM mechanism, ``pympp``); this package decides what to
offer and accept, and converts between token units and nano-USD. The server's paid routes and
``POST /v1/payments/fetch`` (``server.payments``) use it; nothing here touches storage.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .buyer import Quote, account_from_key, new_account, quotes, sign
    from .chain import FakeChain, FakeChainSigner, TokenInfo
    from .facilitator import LocalFacilitator, MppFacilitator, http_facilitator
    from .seller import Offer, PaymentRejected, Seller, Verified
    from .terms import Asset, Terms, TermsError, find_asset, nano_to_units, units_to_nano

# Names load their module on first use (PEP 562): the protocol SDKs pull in web3 and eth-account, which cost a
# gateway that neither sells nor buys ~0.8 s of start-up and ~40 MB, so nothing imports them until it pays.
_MODULE_OF = {
    **dict.fromkeys(("Quote", "account_from_key", "new_account", "quotes", "sign"), "buyer"),
    **dict.fromkeys(("FakeChain", "FakeChainSigner", "TokenInfo"), "chain"),
    **dict.fromkeys(("LocalFacilitator", "MppFacilitator", "http_facilitator"), "facilitator"),
    **dict.fromkeys(("Offer", "PaymentRejected", "Seller", "Verified"), "seller"),
    **dict.fromkeys(("Asset", "Terms", "TermsError", "find_asset", "nano_to_units", "units_to_nano"), "terms"),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "Asset",
    "FakeChain",
    "FakeChainSigner",
    "LocalFacilitator",
    "MppFacilitator",
    "Offer",
    "PaymentRejected",
    "Quote",
    "Seller",
    "Terms",
    "TermsError",
    "TokenInfo",
    "Verified",
    "account_from_key",
    "find_asset",
    "http_facilitator",
    "nano_to_units",
    "new_account",
    "quotes",
    "sign",
    "units_to_nano",
]
