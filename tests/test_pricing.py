"""The pricing engine: public list prices, every billed dimension, workspace overrides, and properties.

The public prices cited are the vendors' own pages (checked 2026-11-26) and agree with the pinned
genai-prices snapshot: a failure after upgrading genai-prices means a list price changed.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.pricing import CATALOG_SOURCE, GENAI_PRICES_SOURCE, Price, PriceBook
from providers.types import Usage

MTOK = 1_000_000
USD = 1_000_000_000  # nano-USD per USD


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook({"mock/mock-1": {"input_mtok": Decimal(1), "output_mtok": Decimal(2)}})


@pytest.mark.parametrize(
    ("provider", "model", "input_usd", "output_usd", "cache_read_usd"),
    [
        # https://openai.com/api/pricing: gpt-4o-mini $0.15 input, $0.60 output, $0.075 cached input per MTok
        ("openai", "gpt-4o-mini", "0.15", "0.60", "0.075"),
        # https://www.anthropic.com/pricing#api: Claude Haiku 4.5 $1 input, $5 output, $0.10 cache hits per MTok
        ("anthropic", "claude-haiku-4-5", "1", "5", "0.10"),
        # https://ai.google.dev/gemini-api/docs/pricing: Gemini 2.0 Flash $0.10 text input, $0.40 output,
        # $0.025 context caching per MTok
        ("gemini", "gemini-2.0-flash", "0.10", "0.40", "0.025"),
    ],
)
def test_public_list_prices(
    book: PriceBook, provider: str, model: str, input_usd: str, output_usd: str, cache_read_usd: str
) -> None:
    def usd(text: str) -> int:
        return int(Decimal(text) * USD)

    assert book.cost(provider, model, Usage(prompt_tokens=MTOK)).nano == usd(input_usd)
    assert book.cost(provider, model, Usage(completion_tokens=MTOK)).nano == usd(output_usd)
    cached = book.cost(provider, model, Usage(prompt_tokens=MTOK, cached_tokens=MTOK))
    assert cached.nano == usd(cache_read_usd)
    assert cached.source == GENAI_PRICES_SOURCE and GENAI_PRICES_SOURCE.startswith("genai-prices 0.")


def test_a_typical_call_worked_by_hand(book: PriceBook) -> None:
    # claude-haiku-4-5, 12,000 prompt tokens: 8,000 cache reads, 1,000 cache writes, 3,000 plain; 900 output.
    # Prices in nano-USD per MTok: input 1e9, cache read 1e8, cache write 1.25e9, output 5e9.
    #   3,000 x 1e9 + 8,000 x 1e8 + 1,000 x 1.25e9 + 900 x 5e9 = 3e12 + 0.8e12 + 1.25e12 + 4.5e12 = 9.55e12
    #   / 1e6 tokens per MTok = 9,550,000 nano-USD = $0.00955
    usage = Usage(prompt_tokens=12_000, completion_tokens=900, cached_tokens=8_000, cache_write_tokens=1_000)
    assert book.cost("anthropic", "claude-haiku-4-5", usage).nano == 9_550_000  # $0.00955


def test_reasoning_tokens_at_their_own_price(book: PriceBook) -> None:
    # Perplexity sonar-deep-research: $8/MTok output, $3/MTok reasoning (a subset of the output tokens).
    usage = Usage(completion_tokens=MTOK, reasoning_tokens=MTOK // 2)
    assert book.cost("perplexity", "sonar-deep-research", usage).nano == 4 * USD + USD + USD // 2  # 4 + 1.5
    # A model without a reasoning price bills reasoning tokens as output tokens.
    assert book.cost("openai", "gpt-4o-mini", usage).nano == book.cost("openai", "gpt-4o-mini", Usage(0, MTOK)).nano


def test_per_request_fee(book: PriceBook) -> None:
    # Perplexity sonar: $1/MTok in and out, plus $12 per 1,000 requests = $0.012 = 12,000,000 nano per call.
    assert book.cost("perplexity", "sonar", Usage()).nano == 12_000_000
    assert book.cost("perplexity", "sonar", Usage(prompt_tokens=MTOK)).nano == USD + 12_000_000


def test_embeddings_bill_input_tokens(book: PriceBook) -> None:
    # text-embedding-3-small: $0.02 per MTok (https://openai.com/api/pricing).
    assert book.cost("openai", "text-embedding-3-small", Usage(prompt_tokens=50_000)).nano == 1_000_000


def test_long_context_tiers(book: PriceBook) -> None:
    # gemini-2.5-pro: $1.25/MTok input up to 200k prompt tokens, $2.50 above; output $10, then $15.
    short = book.cost("gemini", "gemini-2.5-pro", Usage(prompt_tokens=100_000)).nano
    long = book.cost("gemini", "gemini-2.5-pro", Usage(prompt_tokens=300_000)).nano
    assert short == 125_000_000 and long == 750_000_000


def test_workspace_overrides_layer_above_everything(book: PriceBook) -> None:
    negotiated = Price(input=100_000_000, output=400_000_000, source="override:acme:v3")
    custom = Price(input=USD, output=USD, request=1_000, source="override:acme:v1")
    book.set_overrides({"acme": {("openai", "gpt-4o-mini"): negotiated, ("mock", "*"): custom}})
    try:
        usage = Usage(prompt_tokens=MTOK, completion_tokens=MTOK)
        acme = book.cost("openai", "gpt-4o-mini", usage, "acme")
        assert (acme.nano, acme.source) == (500_000_000, "override:acme:v3")
        others = book.cost("openai", "gpt-4o-mini", usage, "globex")
        assert (others.nano, others.source) == (750_000_000, GENAI_PRICES_SOURCE)
        # provider/* covers models the catalog prices too (mock/mock-1) and ones nothing knows
        assert book.cost("mock", "mock-1", usage, "acme").nano == 2 * USD + 1_000
        assert book.cost("mock", "mock-1", usage).source == CATALOG_SOURCE
        assert book.cost("mock", "custom-7", Usage(), "acme").nano == 1_000
    finally:
        book.set_overrides({})
    assert book.cost("openai", "gpt-4o-mini", Usage(prompt_tokens=MTOK), "acme").nano == 150_000_000


tokens = st.integers(min_value=0, max_value=10_000_000)
priced = st.sampled_from(
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.0-flash"), ("mock", "mock-1")]
)


@given(priced, tokens, tokens, tokens, tokens, st.integers(min_value=1, max_value=100_000))
def test_cost_is_monotonic_in_tokens(
    book: PriceBook, model: tuple[str, str], prompt: int, completion: int, cached: int, reasoning: int, more: int
) -> None:
    base = Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=min(cached, prompt))
    base.reasoning_tokens = min(reasoning, completion)
    cost = book.cost(*model, base).nano
    assert cost >= 0
    more_prompt = Usage(prompt + more, completion, base.cached_tokens, 0, base.reasoning_tokens)
    more_completion = Usage(prompt, completion + more, base.cached_tokens, 0, base.reasoning_tokens)
    assert book.cost(*model, more_prompt).nano >= cost
    assert book.cost(*model, more_completion).nano >= cost


@given(st.lists(st.tuples(tokens, tokens), min_size=1, max_size=50))
def test_split_calls_cost_what_one_call_costs_within_rounding(book: PriceBook, calls: list[tuple[int, int]]) -> None:
    # Each call is rounded once, half up, to whole nano-USD: n calls differ from one merged call by < n nano.
    merged = Usage(sum(p for p, _ in calls), sum(c for _, c in calls))
    separate = sum(book.cost("openai", "gpt-4o-mini", Usage(p, c)).nano for p, c in calls)
    assert abs(separate - book.cost("openai", "gpt-4o-mini", merged).nano) <= len(calls)
