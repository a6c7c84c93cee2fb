"""Token prices and the cost of a call, in integer nano-USD.

Prices come from ``genai-prices`` (its offline snapshot; the run-time updater stays off) with the catalog's
own rows layered on top for models it lacks, and workspace overrides (negotiated rates, custom models) above
both. ``genai_prices.calc_price`` costs ~110 µs a call on this project's machines — too much for the hot path —
so a model's flat prices are looked up once, converted to integers and cached; only tiered (long-context)
prices go through the library per call.

A price is found, in order:
  1. the caller's workspace override ``provider/model``, then ``provider/*`` (``set_overrides``: a snapshot
     the gateway refreshes in the background, so this stays two dict lookups);
  2. the catalog row ``provider/model``;
  3. the catalog row ``provider/*`` (a whole provider at one price: self-hosted servers cost nothing);
  4. genai-prices, under the names ``price_ids.price_refs`` translates the catalog's into.

What a call is billed for, all subsets in the canonical (OpenAI) sense: prompt tokens at the input price, of
which cache reads and cache writes at theirs (when the model has one); completion tokens at the output price,
of which reasoning tokens at the reasoning price (when the model bills them apart); plus a per-request fee.
The products are summed and rounded to whole nano-USD once per call. Embeddings are input tokens only.
Every ``Cost`` names its source and version: ``genai-prices 0.2.3``, ``alephant catalog``,
``override:<workspace>:v<n>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from genai_prices import Usage as PriceUsage
from genai_prices import __version__ as genai_prices_version
from genai_prices import data_snapshot
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

from providers.types import Usage

from .money import Nano, per_mtok, to_nano
from .price_ids import PriceRef, price_refs

__all__ = ["CATALOG_SOURCE", "GENAI_PRICES_SOURCE", "Cost", "Overrides", "Price", "PriceBook"]

# A resolved price is kept until the model's next conditional-price boundary (a start date, or the edge of a
# time-of-day window such as DeepSeek's off-peak hours), and at most an hour.
_CACHE_FOR = timedelta(hours=1)
GENAI_PRICES_SOURCE = f"genai-prices {genai_prices_version}"
CATALOG_SOURCE = "alephant catalog"


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """Flat prices of one model: nano-USD per million tokens, and a fee in nano-USD per request."""

    input: Nano = 0
    output: Nano = 0
    cache_read: Nano | None = None
    cache_write: Nano | None = None
    reasoning: Nano | None = None  # when reasoning tokens are billed apart from the other output tokens
    request: Nano = 0
    source: str = GENAI_PRICES_SOURCE

    def cost(self, usage: Usage) -> Nano:
        prompt, completion = max(usage.prompt_tokens, 0), max(usage.completion_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt) if self.cache_read is not None else 0
        written = min(max(usage.cache_write_tokens, 0), prompt - cached) if self.cache_write is not None else 0
        reasoned = min(max(usage.reasoning_tokens, 0), completion) if self.reasoning is not None else 0
        return self.request + per_mtok(
            (prompt - cached - written) * self.input
            + cached * (self.cache_read or 0)
            + written * (self.cache_write or 0)
            + (completion - reasoned) * self.output
            + reasoned * (self.reasoning or 0)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Cost:
    nano: Nano
    source: str | None  # None when the model has no known price


_UNPRICED = Cost(0, None)

# workspace id -> (provider id, model or "*") -> price
Overrides = Mapping[str, Mapping[tuple[str, str], Price]]


class _Tiered:
    """A model whose price depends on the size of the call: priced by the library, converted once."""

    __slots__ = ("markup", "model", "provider", "source")

    def __init__(self, provider: Any, model: Any, markup: Decimal, source: str) -> None:
        self.provider = provider
        self.model = model
        self.markup = markup
        self.source = source

    def cost(self, usage: Usage) -> Nano:
        result = self.model.calc_price(
            PriceUsage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cache_read_tokens=usage.cached_tokens or None,
                cache_write_tokens=usage.cache_write_tokens or None,
                output_reasoning_tokens=usage.reasoning_tokens or None,
            ),
            self.provider,
        )
        return to_nano(result.total_price * self.markup)


class PriceBook:
    """Answers "what did this call cost?" for (provider, model, usage), optionally as a workspace sees it."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Decimal]] | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = {name: _catalog_price(row) for name, row in (overrides or {}).items()}
        self._clock = clock  # aware UTC datetimes; tests pin it
        self._cache: dict[tuple[str, str], tuple[datetime, Price | _Tiered | None]] = {}
        self._workspaces: Overrides = {}

    def set_overrides(self, overrides: Overrides) -> None:
        """Replace every workspace's overrides at once (the gateway's background refresh calls this)."""
        self._workspaces = overrides

    def price(self, provider_id: str, model: str, workspace_id: str | None = None) -> Price | _Tiered | None:
        if workspace_id is not None and self._workspaces:
            own = self._workspaces.get(workspace_id)
            if own is not None:
                found = own.get((provider_id, model)) or own.get((provider_id, "*"))
                if found is not None:
                    return found
        key = (provider_id, model)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        listed = self._catalog.get(f"{provider_id}/{model}") or self._catalog.get(f"{provider_id}/*")
        resolved, until = (listed, now + _CACHE_FOR) if listed is not None else self._lookup(provider_id, model, now)
        self._cache[key] = (until, resolved)
        return resolved

    def cost(self, provider_id: str, model: str, usage: Usage, workspace_id: str | None = None) -> Cost:
        price = self.price(provider_id, model, workspace_id)
        if price is None:
            return _UNPRICED
        return Cost(price.cost(usage), price.source)

    @staticmethod
    def _lookup(provider_id: str, model: str, now: datetime) -> tuple[Price | _Tiered | None, datetime]:
        """genai-prices' price of the model at ``now``, and until when it holds."""
        snapshot = data_snapshot.get_snapshot()
        for ref in price_refs(provider_id, model):
            try:
                provider, info = snapshot.find_provider_model(ref.model, None, ref.provider, None)
            except (LookupError, ValueError):
                continue
            return _convert(provider, info, ref, now), _next_change(info, now)
        return None, now + _CACHE_FOR


def _next_change(info: Any, now: datetime) -> datetime:
    """The first moment after ``now`` at which another of the model's conditional prices may apply."""
    until = now + _CACHE_FOR
    for conditional in info.prices if isinstance(info.prices, list) else ():
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            starts = datetime.combine(constraint.start_date, time(0), tzinfo=UTC)
            if starts > now:
                until = min(until, starts)
        elif isinstance(constraint, TimeOfDateConstraint):
            opens, closes = constraint.start_time, constraint.end_time
            until = min(until, _next_time_of_day(now, opens), _next_time_of_day(now, closes))
    return until


def _next_time_of_day(now: datetime, at: time) -> datetime:
    """The next moment after ``now`` whose UTC time of day is ``at`` (a naive ``at`` is UTC)."""
    moment = datetime.combine(now.astimezone(UTC).date(), at.replace(tzinfo=at.tzinfo or UTC)).astimezone(UTC)
    return moment if moment > now else moment + timedelta(days=1)


def _optional(value: Decimal | None) -> Nano | None:
    return None if value is None else to_nano(value)


def _catalog_price(row: Mapping[str, Decimal]) -> Price:
    return Price(
        input=to_nano(row.get("input_mtok", Decimal(0))),
        output=to_nano(row.get("output_mtok", Decimal(0))),
        cache_read=_optional(row.get("cache_read_mtok")),
        cache_write=_optional(row.get("cache_write_mtok")),
        reasoning=_optional(row.get("output_reasoning_mtok")),
        request=to_nano(row.get("requests_kcount", Decimal(0)).scaleb(-3)),
        source=CATALOG_SOURCE,
    )


_UNITS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok")


def _convert(provider: Any, info: Any, ref: PriceRef, now: datetime) -> Price | _Tiered:
    """genai-prices' current prices of one model as integers, with the catalog provider's markup applied."""
    source = GENAI_PRICES_SOURCE
    if ref.markup != 1:
        source = f"{GENAI_PRICES_SOURCE} x{ref.markup} ({ref.provider} list price + fee)"
    prices = info.get_prices(now)
    values = {unit: getattr(prices, unit, None) for unit in (*_UNITS, "requests_kcount")}
    if any(value is not None and not isinstance(value, Decimal) for value in values.values()):
        return _Tiered(provider, info, ref.markup, source)
    scaled = {unit: value * ref.markup if value is not None else None for unit, value in values.items()}
    return Price(
        input=to_nano(scaled["input_mtok"] or Decimal(0)),
        output=to_nano(scaled["output_mtok"] or Decimal(0)),
        cache_read=_optional(scaled["cache_read_mtok"]),
        cache_write=_optional(scaled["cache_write_mtok"]),
        reasoning=_optional(scaled["output_reasoning_mtok"]),
        request=to_nano((scaled["requests_kcount"] or Decimal(0)).scaleb(-3)),
        source=source,
    )
