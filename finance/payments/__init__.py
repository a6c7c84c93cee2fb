"""Agent payments over x402 and MPP: terms and units, the local facilitator and its fake chain, selling, buying.

Protocol handling is the SDKs' (``x402`` 2.x with its EVM mechanism, ``pympp``); this package decides what to
offer and accept, and converts between token units and nano-USD. The server's paid routes and
``POST /v1/payments/fetch`` (``server.payments``) use it; nothing here touches storage.
"""

from .buyer import Quote, quotes, sign
from .chain import FakeChain, FakeChainSigner, TokenInfo
from .facilitator import LocalFacilitator, MppFacilitator, http_facilitator
from .seller import Offer, PaymentRejected, Seller, Verified
from .terms import Asset, Terms, TermsError, find_asset, nano_to_units, units_to_nano

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
    "find_asset",
    "http_facilitator",
    "nano_to_units",
    "quotes",
    "sign",
    "units_to_nano",
]
