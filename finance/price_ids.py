"""Where the catalog and genai-prices name things differently: the one table ``PriceBook`` reads.

genai-prices finds a price by (its provider id, a model reference its rules match). The catalog names a
provider by how it is reached and a model by the id its API accepts, so a lookup is translated first,
in this order (``price_refs`` returns the candidates, best first):

1. ``HF_ROUTER``: Hugging Face's router takes ``model:backend`` and bills that backend's list price (no
   markup, https://huggingface.co/docs/inference-providers/pricing); genai-prices lists those rows as
   ``huggingface_<backend>``. A bare id or a policy suffix (``:fastest``, ``:cheapest``) names no backend,
   so it stays unpriced.
2. ``GATEWAYS``: gateways whose model ids are ``vendor/model`` and that bill the vendor's list price, times
   their markup, are priced under the vendor (``VENDORS`` maps the prefix to a genai-prices provider).
3. ``PROVIDERS``: catalog provider id -> genai-prices provider id; ids not listed are passed unchanged.
4. A dated snapshot genai-prices does not list (``-2026-03-05``, ``-20260305``) is tried as its undated
   alias, after the exact id.

Rows here change which price a model gets: each one states why the two names are the same thing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal

__all__ = ["GATEWAYS", "HF_ROUTER", "PROVIDERS", "VENDORS", "PriceRef", "price_refs"]

PROVIDERS: Mapping[str, str] = {
    # Google AI Studio and Vertex AI: one price list.
    "gemini": "google",
    "vertex": "google",
    # Bedrock: genai-prices' rules already tell us./eu./apac./global. profiles apart (regional ones cost
    # more), so the model id is passed unchanged.
    "bedrock": "aws",
    "xai": "x-ai",
    "moonshot": "moonshotai",  # api.moonshot.ai (genai-prices: api.moonshot.*)
    "zhipu": "zhipuai",  # open.bigmodel.cn; Z.AI (api.z.ai) is the separate "zai" row
    # Providers priced through their Hugging Face router rows: the router passes their list price through
    # without markup (see HF_ROUTER) and both take the same Hub ids (meta-llama/Llama-3.3-70B-Instruct).
    "nebius": "huggingface_nebius",
    "hyperbolic": "huggingface_hyperbolic",
    "nscale": "huggingface_nscale",
}

HF_ROUTER: Mapping[str, str] = {"huggingface": "huggingface_"}  # catalog id -> genai-prices id prefix

GATEWAYS: Mapping[str, Decimal] = {
    # vendor list price, times (https://vercel.com/docs/ai-gateway/pricing: zero markup)
    "vercel": Decimal(1),
    # https://www.requesty.ai/pricing: 5% on top of the routed model's base rate
    "requesty": Decimal("1.05"),
}

VENDORS: Mapping[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "mistral": "mistral",
    "mistralai": "mistral",
    "deepseek": "deepseek",
    "moonshotai": "moonshotai",
    "zai": "zai",
    "z-ai": "zai",
    "minimax": "minimax",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "meta": "meta",
    "amazon": "aws",
}

_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclasses.dataclass(frozen=True, slots=True)
class PriceRef:
    """A key genai-prices understands, and the factor the catalog's provider adds to that price."""

    provider: str
    model: str
    markup: Decimal = Decimal(1)


def price_refs(provider_id: str, model: str) -> tuple[PriceRef, ...]:
    """Candidate genai-prices keys for a catalog (provider, model), best first; empty when none applies."""
    if provider_id in HF_ROUTER:
        hub_id, sep, backend = model.rpartition(":")
        if not sep or backend in {"fastest", "cheapest", "preferred"}:
            return ()
        refs = [PriceRef(HF_ROUTER[provider_id] + backend, hub_id)]
    elif provider_id in GATEWAYS:
        vendor, sep, vendor_model = model.partition("/")
        if not sep or vendor not in VENDORS:
            return ()
        refs = [PriceRef(VENDORS[vendor], vendor_model, GATEWAYS[provider_id])]
    else:
        refs = [PriceRef(PROVIDERS.get(provider_id, provider_id), model)]
    undated = [dataclasses.replace(ref, model=_DATED.sub("", ref.model)) for ref in refs]
    return (*refs, *(ref for ref in undated if ref not in refs))
