"""Token prices and the cost of a call, in integer nano-USD.

Prices come from ``genai-prices`` (its offline snapshot; the run-time updater stays off) with the catalog's
own rows layered on top for models it lacks. ``genai_prices.calc_price`` costs ~110 µs a call on this
project's machines — too much for the hot path — so a model's flat prices are looked up once, converted to
integers and cached; only tiered (long-context) prices go through the library per call.

A price is found, in order:
  1. the catalog row ``provider/model``;
  2. the catalog row ``provider/*`` (a whole provider at one price: self-hosted servers cost nothing);
  3. genai-prices, under the names ``price_ids.price_refs`` translates the catalog's into.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage as PriceUsage
from genai_prices import __version__ as genai_prices_version
from genai_prices import data_snapshot

from providers.types import Usage

from .money import Nano, mtok_cost, to_nano
from .price_ids import PriceRef, price_refs

__all__ = ["Cost", "Price", "PriceBook"]

_CACHE_SECONDS = 3600  # prices can change on a date (conditional prices); re-resolve hourly
_SOURCE = f"genai-prices {genai_prices_version}"


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """Flat prices of one model in nano-USD per million tokens."""

    input: Nano = 0
    output: Nano = 0
    cache_read: Nano | None = None
    cache_write: Nano | None = None
    source: str = _SOURCE


@dataclasses.dataclass(frozen=True, slots=True)
class Cost:
    nano: Nano
    source: str | None  # None when the model has no known price


_UNPRICED = Cost(0, None)


class _Tiered:
    """A model whose price depends on the size of the call: priced by the library, converted once."""

    __slots__ = ("markup", "model", "provider", "source")

    def __init__(self, provider: Any, model: Any, markup: Decimal, source: str) -> None:
        self.provider = provider
        self.model = model
        self.markup = markup
        self.source = source


class PriceBook:
    """Answers "what did this call cost?" for (provider, model, usage)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Decimal]] | None = None) -> None:
        self._overrides = {
            name: Price(
                input=to_nano(row.get("input_mtok", Decimal(0))),
                output=to_nano(row.get("output_mtok", Decimal(0))),
                cache_read=to_nano(row["cache_read_mtok"]) if "cache_read_mtok" in row else None,
                cache_write=to_nano(row["cache_write_mtok"]) if "cache_write_mtok" in row else None,
                source="alephant catalog",
            )
            for name, row in (overrides or {}).items()
        }
        self._cache: dict[tuple[str, str], tuple[float, Price | _Tiered | None]] = {}

    def price(self, provider_id: str, model: str) -> Price | _Tiered | None:
        key = (provider_id, model)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = (
            self._overrides.get(f"{provider_id}/{model}")
            or self._overrides.get(f"{provider_id}/*")
            or self._lookup(provider_id, model)
        )
        self._cache[key] = (now + _CACHE_SECONDS, found)
        return found

    def cost(self, provider_id: str, model: str, usage: Usage) -> Cost:
        price = self.price(provider_id, model)
        if price is None:
            return _UNPRICED
        if isinstance(price, _Tiered):
            return self._tiered_cost(price, usage)
        cached = min(usage.cached_tokens, usage.prompt_tokens) if price.cache_read is not None else 0
        written = min(usage.cache_write_tokens, usage.prompt_tokens - cached) if price.cache_write is not None else 0
        nano = (
            mtok_cost(usage.prompt_tokens - cached - written, price.input)
            + mtok_cost(cached, price.cache_read or 0)
            + mtok_cost(written, price.cache_write or 0)
            + mtok_cost(usage.completion_tokens, price.output)
        )
        return Cost(nano, price.source)

    @staticmethod
    def _lookup(provider_id: str, model: str) -> Price | _Tiered | None:
        snapshot = data_snapshot.get_snapshot()
        for ref in price_refs(provider_id, model):
            try:
                provider, info = snapshot.find_provider_model(ref.model, None, ref.provider, None)
            except (LookupError, ValueError):
                continue
            return _convert(provider, info, ref)
        return None

    @staticmethod
    def _tiered_cost(price: _Tiered, usage: Usage) -> Cost:
        result = price.model.calc_price(
            PriceUsage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cache_read_tokens=usage.cached_tokens or None,
                cache_write_tokens=usage.cache_write_tokens or None,
            ),
            price.provider,
        )
        return Cost(to_nano(result.total_price * price.markup), price.source)


def _convert(provider: Any, info: Any, ref: PriceRef) -> Price | _Tiered:
    """genai-prices' current prices of one model as integers, with the catalog provider's markup applied."""
    source = _SOURCE if ref.markup == 1 else f"{_SOURCE} x{ref.markup} ({ref.provider} list price + fee)"
    prices = info.get_prices(datetime.now(tz=UTC))
    units = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    values = {unit: getattr(prices, unit, None) for unit in units}
    if any(value is not None and not isinstance(value, Decimal) for value in values.values()):
        return _Tiered(provider, info, ref.markup, source)
    scaled = {unit: value * ref.markup if value is not None else None for unit, value in values.items()}
    return Price(
        input=to_nano(scaled["input_mtok"] or Decimal(0)),
        output=to_nano(scaled["output_mtok"] or Decimal(0)),
        cache_read=to_nano(scaled["cache_read_mtok"]) if scaled["cache_read_mtok"] is not None else None,
        cache_write=to_nano(scaled["cache_write_mtok"]) if scaled["cache_write_mtok"] is not None else None,
        source=source,
    )
