"""The provider/model catalog as data: its size, the completeness of each row, and the prices it resolves to.

Other files in ``providers/data`` come and go as adapters land, so counts are taken over whatever is loaded,
and the OpenAI-compatible rows (``core.yaml`` + ``openai_compatible.yaml``) must reach them on their own.
Exact prices are the pinned genai-prices snapshot's: a failure after upgrading it means a price changed.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from genai_prices import data_snapshot
from genai_prices.data_snapshot import find_provider_by_id

from finance.price_ids import GATEWAYS, HF_ROUTER, PROVIDERS, VENDORS, price_refs
from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.registry import ADAPTERS
from providers.types import Usage

DATA = Path(__file__).resolve().parent.parent / "providers" / "data"
OWN_FILES = ("core.yaml", "openai_compatible.yaml")
CAPABILITIES = {"tools", "vision", "reasoning", "embeddings"}
PRICE_UNITS = {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"}
MTOK = Usage(prompt_tokens=1_000_000)
# Our rows whose base URL needs a value only the operator has; the row's comment says how to set it. (Other
# adapters fill `{region}`-style placeholders from options themselves.)
PLACEHOLDER_URLS = {"cloudflare": "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1"}


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _file(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    return loaded


def _rows(names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    files = sorted(DATA.glob("*.yaml")) if names is None else [DATA / name for name in names]
    return [row for path in files for row in _file(path).get("providers") or []]


def _model_ids(row: dict[str, Any]) -> list[str]:
    entries = [*(row.get("models") or ()), *(row.get("embedding_models") or ())]
    return [entry if isinstance(entry, str) else str(entry["id"]) for entry in entries]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(env={})


# Prices can depend on the time of day (DeepSeek's off-peak hours, 16:30-00:30 UTC, cost half): the table below
# is the off-peak one, so the book's clock is pinned inside that window.
OFF_PEAK = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def book(catalog: Catalog) -> PriceBook:
    return PriceBook(catalog.prices, clock=lambda: OFF_PEAK)


def _priced(catalog: Catalog, book: PriceBook, provider_ids: set[str]) -> list[str]:
    return [
        f"{spec.id}/{model}"
        for spec in catalog.providers
        if spec.id in provider_ids
        for model in (*spec.models, *spec.embedding_models)
        if book.cost(spec.id, model, MTOK).nano > 0
    ]


def test_catalog_size(catalog: Catalog, book: PriceBook) -> None:
    everything = {spec.id for spec in catalog.providers}
    own = {row["id"] for row in _rows(OWN_FILES)} - {"mock"}
    assert len(everything) >= 50 and len(own) >= 50, (len(everything), len(own))
    assert len(_priced(catalog, book, everything)) >= 320
    own_priced = _priced(catalog, book, own)
    assert len(own_priced) >= 320, len(own_priced)
    assert len({name.split("/", 1)[0] for name in own_priced}) >= 35


def test_provider_rows_are_complete(catalog: Catalog) -> None:
    for spec in catalog.providers:
        assert spec.adapter in ADAPTERS, spec.id
        if spec.transport == "mock":
            continue
        assert spec.transport == "http", spec.id
        if spec.base_url:
            assert re.fullmatch(r"https?://[^\s{}]*(\{\w+\}[^\s{}]*)*", spec.base_url), spec.id
        else:  # config-supplied endpoints (an Azure resource) carry the options that locate them
            assert spec.options or not spec.requires_key, spec.id
        assert spec.api_key_env or not spec.requires_key, f"{spec.id} needs api_key_env or requires_key: false"
    for row in _rows(OWN_FILES):
        provider_id = row["id"]
        assert row.get("name") and row.get("adapter", "openai") in ADAPTERS, provider_id
        if provider_id == "mock":
            continue
        if provider_id in PLACEHOLDER_URLS:
            assert row["base_url"] == PLACEHOLDER_URLS[provider_id]
        elif row.get("requires_key") is False:
            assert re.fullmatch(r"http://localhost:\d+/v1", row["base_url"]), provider_id
        else:
            assert re.fullmatch(r"https://[^\s{}]+", row["base_url"]) and row["api_key_env"], provider_id


def test_no_duplicates() -> None:
    rows = _rows()
    ids = Counter(row["id"] for row in rows)
    assert not [provider for provider, n in ids.items() if n > 1]
    pairs = Counter((row["id"], model) for row in rows for model in _model_ids(row))
    assert not [pair for pair, n in pairs.items() if n > 1]


def test_model_entries_are_well_formed() -> None:
    for row in _rows(OWN_FILES):
        for field in ("models", "embedding_models"):
            for entry in row.get(field) or ():
                if isinstance(entry, str):
                    continue
                assert set(entry) <= {"id", "context", "max_output", "capabilities", "endpoint"}, entry
                caps = set(entry.get("capabilities") or ())
                assert caps <= CAPABILITIES, entry
                assert ("embeddings" in caps) == (field == "embedding_models"), entry
                for limit in ("context", "max_output"):
                    assert entry.get(limit) is None or (isinstance(entry[limit], int) and entry[limit] > 0), entry


def test_price_rows_have_provenance(catalog: Catalog) -> None:
    for path in sorted(DATA.glob("*.yaml")):
        prices = _file(path).get("prices") or {}
        for name, row in prices.items():
            provider_id, _, model = name.partition("/")
            assert catalog.provider(provider_id) is not None and model, f"{path.name}: {name}"
            assert isinstance(row.get("source"), str) and row["source"], f"{path.name}: {name} has no source"
            assert isinstance(row.get("date"), str) and re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", row["date"]), name
            units = set(row) - {"source", "date"}
            assert units and units <= PRICE_UNITS, name
            assert all(Decimal(str(row[unit])) >= 0 for unit in units), name


def test_mapping_targets_exist(catalog: Catalog) -> None:
    snapshot_ids = {provider.id for provider in data_snapshot.get_snapshot().providers}
    assert set(PROVIDERS.values()) <= snapshot_ids
    assert set(VENDORS.values()) <= snapshot_ids
    for gateway in (*GATEWAYS, *HF_ROUTER):
        spec = catalog.provider(gateway)
        assert spec is not None, gateway
        for model in (*spec.models, *spec.embedding_models):
            refs = price_refs(gateway, model)
            assert refs and refs[0].provider in snapshot_ids, f"{gateway}/{model}"


def test_no_provider_is_priced_as_another_by_accident(catalog: Catalog) -> None:
    # genai-prices matches unknown provider ids loosely ("openai-eu" -> openai); every catalog id must either
    # be mapped on purpose or be (or match nothing but) the same id in genai-prices.
    providers = data_snapshot.get_snapshot().providers
    for spec in catalog.providers:
        if spec.id in PROVIDERS or spec.id in GATEWAYS or spec.id in HF_ROUTER:
            continue
        found = find_provider_by_id(providers, spec.id)
        assert found is None or found.id == spec.id, f"{spec.id} would be priced as {found.id}"


@pytest.mark.parametrize(
    ("provider", "model", "input_nano", "output_nano"),
    [
        ("openai", "gpt-4o-mini", 150_000_000, 600_000_000),
        ("openai", "text-embedding-3-small", 20_000_000, 0),
        ("groq", "llama-3.3-70b-versatile", 590_000_000, 790_000_000),
        ("groq", "openai/gpt-oss-120b", 150_000_000, 600_000_000),
        ("deepseek", "deepseek-flash", 150_000_000, 600_000_000),
        ("deepseek", "deepseek-chat", 135_000_000, 550_000_000),
        ("mistral", "mistral-small-2603", 150_000_000, 600_000_000),
        ("mistral", "codestral-2508", 300_000_000, 900_000_000),
        ("xai", "grok-4", 3_000_000_000, 15_000_000_000),  # catalog "xai" is genai-prices "x-ai"
        ("moonshot", "kimi-k3", 3_000_000_000, 15_000_000_000),  # "moonshot" -> "moonshotai"
        ("nebius", "NousResearch/Hermes-4-70B", 130_000_000, 400_000_000),  # via the HF router's Nebius row
        ("huggingface", "openai/gpt-oss-120b:cerebras", 350_000_000, 750_000_000),
        ("vercel", "openai/gpt-4o-mini", 150_000_000, 600_000_000),  # OpenAI list price, no markup
        ("requesty", "openai/gpt-4o-mini", 157_500_000, 630_000_000),  # + 5%
        ("github", "openai/gpt-4o", 2_500_000_000, 10_000_000_000),  # prices.yaml
        ("sambanova", "MiniMax-M3", 600_000_000, 2_400_000_000),  # prices.yaml
    ],
)
def test_exact_prices(book: PriceBook, provider: str, model: str, input_nano: int, output_nano: int) -> None:
    assert book.cost(provider, model, Usage(prompt_tokens=1_000_000)).nano == input_nano
    assert book.cost(provider, model, Usage(completion_tokens=1_000_000)).nano == output_nano


def test_cache_reads_and_markup_sources(book: PriceBook) -> None:
    cached = Usage(prompt_tokens=1_000_000, cached_tokens=1_000_000)
    assert book.cost("mistral", "mistral-small-2603", cached).nano == 15_000_000
    assert book.cost("github", "openai/gpt-4o-mini", cached).nano == 75_000_000
    with_fee = book.cost("requesty", "openai/gpt-4o-mini", MTOK).source
    assert with_fee != book.cost("vercel", "openai/gpt-4o-mini", MTOK).source


def test_tiered_prices_keep_the_markup(book: PriceBook) -> None:
    small = Usage(prompt_tokens=1_000, completion_tokens=1_000)  # below every long-context tier
    direct = book.cost("openai", "gpt-6-sol", small).nano
    assert direct == 12_000_000  # $2 in + $10 out per MTok
    assert book.cost("vercel", "openai/gpt-6-sol", small).nano == direct
    assert book.cost("requesty", "openai/gpt-6-sol", small).nano == 12_600_000


def test_unpriced_and_free(book: PriceBook) -> None:
    assert book.cost("vllm", "any/model", MTOK).nano == 0
    assert book.cost("vllm", "any/model", MTOK).source is not None  # known to be free, not unknown
    assert book.cost("huggingface", "openai/gpt-oss-120b", MTOK).source is None  # router picks the backend
    assert book.cost("huggingface", "openai/gpt-oss-120b:fastest", MTOK).source is None
    assert book.cost("dashscope", "qwen3-max", MTOK).source is None  # tiered by context: no flat row
    assert book.cost("nobody", "nothing", MTOK).source is None


def test_dated_snapshots_fall_back_to_their_alias(book: PriceBook) -> None:
    alias = book.cost("xai", "grok-code-fast-1", MTOK).nano
    assert alias > 0
    assert book.cost("xai", "grok-code-fast-1-2099-01-01", MTOK).nano == alias
    assert book.cost("xai", "grok-code-fast-1-20990101", MTOK).nano == alias


def test_lookups_are_cached(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    book = PriceBook(catalog.prices)
    first = book.price("groq", "llama-3.1-8b-instant")
    monkeypatch.setattr(data_snapshot, "get_snapshot", lambda: pytest.fail("looked up twice"))
    assert book.price("groq", "llama-3.1-8b-instant") is first


def test_a_time_of_day_price_holds_until_its_window_ends(catalog: Catalog) -> None:
    now = [datetime(2026, 11, 27, 0, 29, 59, tzinfo=UTC)]
    book = PriceBook(catalog.prices, clock=lambda: now[0])
    assert book.cost("deepseek", "deepseek-chat", MTOK).nano == 135_000_000  # off-peak, cached until 00:30
    now[0] += timedelta(seconds=2)
    assert book.cost("deepseek", "deepseek-chat", MTOK).nano == 270_000_000  # the standard price from 00:30
    now[0] = datetime(2026, 11, 27, 16, 29, 59, tzinfo=UTC)
    assert book.cost("deepseek", "deepseek-chat", MTOK).nano == 270_000_000
    now[0] += timedelta(seconds=2)
    assert book.cost("deepseek", "deepseek-chat", MTOK).nano == 135_000_000


def test_bare_names_prefer_openai(catalog: Catalog) -> None:
    assert catalog.resolve("gpt-4o-mini").qualified == "openai/gpt-4o-mini"
    with_keys = Catalog.load(env={"OPENAI_API_KEY": "sk-test", "GROQ_API_KEY": "gsk-test"})
    assert with_keys.resolve("gpt-4o-mini").qualified == "openai/gpt-4o-mini"
