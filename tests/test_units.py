"""In-process unit tests of pure pieces: money, prices, the OpenAI stream relay, catalog resolution."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from finance.money import format_usd, mtok_cost, to_nano, to_usd
from finance.pricing import PriceBook
from providers.catalog import Catalog
from providers.openai import OpenAIStreamTranslator, read_usage
from providers.types import Usage

ROOT = Path(__file__).resolve().parent.parent


def test_money_is_exact() -> None:
    assert to_nano("0.15") == 150_000_000
    assert to_nano(Decimal("0.0000000005")) == 1  # half up
    assert to_usd(1_500_000_001) == Decimal("1.500000001")
    assert format_usd(18_000) == "0.000018000" and format_usd(-1) == "-0.000000001"
    assert mtok_cost(1_000, 150_000_000) == 150_000
    assert sum(mtok_cost(1, 37_500_000) for _ in range(1000)) == 38_000  # rounded per call, documented
    with pytest.raises(TypeError):
        to_nano(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an amount"):
        to_nano("ten dollars")


def test_no_float_in_finance() -> None:
    for path in (ROOT / "finance").glob("*.py"):
        tree = ast.parse(path.read_text())
        floats = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
        calls = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "float"
        ]
        assert not floats and not calls, f"float in {path.name}: lines {floats + calls}"


def test_prices_from_genai_prices_and_catalog() -> None:
    book = PriceBook({"mock/mock-1": {"input_mtok": Decimal("1"), "output_mtok": Decimal("2")}})
    cost = book.cost("openai", "gpt-4o-mini", Usage(prompt_tokens=1000, completion_tokens=100))
    assert cost.nano == 210_000 and cost.source is not None and cost.source.startswith("genai-prices")
    cached = book.cost("openai", "gpt-4o-mini", Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=1000))
    assert cached.nano == 75_000  # cache reads at half price
    assert book.cost("mock", "mock-1", Usage(6, 6)).nano == 18_000
    assert book.cost("nobody", "nothing", Usage(10, 10)).nano == 0


@pytest.mark.parametrize("padding", [10, 100_000], ids=["parsed", "scanned"])
def test_read_usage(padding: int) -> None:
    trap = 'a "usage": {"prompt_tokens": 999} trap' + "x" * padding
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}}
    body = orjson.dumps({"choices": [{"message": {"content": trap}}], "usage": usage})
    assert read_usage(body) == Usage(prompt_tokens=5, completion_tokens=7, cached_tokens=2)
    assert read_usage(b'{"data": []}') is None
    assert read_usage(body.replace(b'"usage":{', b'"usage":null,"u":{')) is None


def _event(data: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def test_stream_translator_strips_requested_usage_and_handles_split_chunks() -> None:
    chunks = [
        _event({"choices": [{"delta": {"content": "Hi"}}], "usage": None}),
        _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
        b"data: [DONE]\n\n",
    ]
    wire = b"".join(chunks)
    translator = OpenAIStreamTranslator(client_wants_usage=False)
    out: list[bytes] = []
    for i in range(0, len(wire), 7):  # arbitrary network splits
        out.extend(translator.feed(wire[i : i + 7]))
    out.extend(translator.finish())
    assert out == [_event({"choices": [{"delta": {"content": "Hi"}}]}), b"data: [DONE]\n\n"]
    assert translator.usage == Usage(prompt_tokens=3, completion_tokens=1)

    keep = OpenAIStreamTranslator(client_wants_usage=True)
    assert keep.feed(wire.replace(b"\n\n", b"\r\n\r\n")) == chunks


def test_catalog_resolution() -> None:
    catalog = Catalog.load(env={"OPENAI_API_KEY": "sk-x"}, aliases={"fast": "mock/mock-1"})
    assert catalog.resolve("fast").qualified == "mock/mock-1"
    assert catalog.resolve("gpt-4o-mini").qualified == "openai/gpt-4o-mini"
    assert catalog.resolve("openrouter/meta/llama").model == "meta/llama"
    with pytest.raises(LookupError):
        catalog.resolve("nowhere/x")
    assert "sk-x" not in repr(catalog.provider("openai"))


def test_stream_translator_handles_crlf_split_across_reads() -> None:
    wire = b'data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\ndata: [DONE]\r\n\r\n'
    for cut in range(1, len(wire)):
        translator = OpenAIStreamTranslator(client_wants_usage=True)
        out = translator.feed(wire[:cut]) + translator.feed(wire[cut:]) + translator.finish()
        assert out == [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b"data: [DONE]\n\n"], cut


def test_openai_adapter_renames_max_tokens_where_the_row_says() -> None:
    from providers.openai import OpenAIAdapter
    from providers.types import ProviderSpec, UpstreamCall

    openai_row = Catalog.load(env={"OPENAI_API_KEY": "k"}).provider("openai")
    assert openai_row is not None
    body = {"model": "gpt-4.1", "messages": [], "max_tokens": 9}
    call = UpstreamCall(endpoint="chat", provider=openai_row, model="gpt-4.1", body=dict(body), raw=orjson.dumps(body))
    sent = orjson.loads(OpenAIAdapter().build_request(call).body)
    assert sent["max_completion_tokens"] == 9 and "max_tokens" not in sent
    plain = ProviderSpec(id="vllm", base_url="http://x/v1", requires_key=False)
    call = UpstreamCall(endpoint="chat", provider=plain, model="gpt-4.1", body=dict(body), raw=orjson.dumps(body))
    assert OpenAIAdapter().build_request(call).body == orjson.dumps(body), "others: the client's bytes, untouched"
