"""The model routes answered before Starlette's router (``server.hot_routes``) answer as the router would.

One real gateway: the exact hot paths go through the fast dispatch, their neighbours (other methods, a trailing
slash, a router-scoped path, a query string) through Starlette, and every answer is the one the route list gives.
Paid endpoints, matched before the model routes in the list, may not take a path of the gateway's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml

from server.config import ConfigError, load_settings
from tests.conftest import MASTER_KEY, Gateway, running_gateway

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
PAY_TO = "0x" + "cd" * 20
CHAT = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {"routers": {"r1": {"models": {"m": [{"model": "mock/mock-1"}]}}}}
    with running_gateway(tmp_path_factory.mktemp("hot"), config=config) as gateway:
        yield gateway


def test_the_official_clients_on_every_hot_path(gw: Gateway) -> None:
    for prefix in ("/v1", "/ai"):
        client = openai.OpenAI(base_url=gw.base_url + prefix, api_key=MASTER_KEY, max_retries=0)
        reply = client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content == "Mock reply to: Hi"
        stream = client.chat.completions.create(
            model="mock/mock-1", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        answer = client.responses.create(model="mock/mock-1", input="Hi")
        assert answer.output_text
    embedded = openai.OpenAI(base_url=gw.api_url, api_key=MASTER_KEY, max_retries=0).embeddings.create(
        model="mock/mock-embed-1", input="Hi"
    )
    assert embedded.data[0].embedding
    claude = anthropic.Anthropic(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0)
    message = claude.messages.create(model="mock/mock-1", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].type == "text"
    counted = claude.messages.count_tokens(model="mock/mock-1", messages=[{"role": "user", "content": "Hi"}])
    assert counted.input_tokens > 0


def test_bad_input_on_a_hot_path_is_an_error_in_the_callers_dialect(gw: Gateway) -> None:
    broken = httpx.post(
        gw.api_url + "/chat/completions", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    anonymous = httpx.post(gw.api_url + "/chat/completions", json=CHAT)
    assert anonymous.status_code == 401 and "error" in anonymous.json()
    claude = httpx.post(gw.base_url + "/v1/messages", json={"model": "mock/mock-1"}, headers=AUTH)
    assert claude.status_code == 400 and claude.json()["type"] == "error"


def test_neighbours_of_the_hot_paths_go_through_the_router(gw: Gateway) -> None:
    wrong_method = httpx.get(gw.api_url + "/chat/completions", headers=AUTH)
    assert wrong_method.status_code == 405 and "not allowed" in wrong_method.json()["error"]["message"]
    assert httpx.post(gw.api_url + "/chat/completions/", json=CHAT, headers=AUTH).status_code in (307, 404)
    queried = httpx.post(gw.api_url + "/chat/completions?x=1", json=CHAT, headers=AUTH)
    assert queried.status_code == 200  # the query string is not part of the path: still the hot route
    routed = httpx.post(gw.base_url + "/router/r1/v1/chat/completions", json={**CHAT, "model": "m"}, headers=AUTH)
    assert routed.status_code == 200 and routed.headers["alephant-model"] == "mock/mock-1"


def test_a_paid_endpoint_may_not_take_a_route_of_the_gateway(gw: Gateway, tmp_path: Path) -> None:
    for path in ("/v1/chat/completions", "/ai/embeddings", "/router/r1/v1/chat/completions", "/admin/x", "/"):
        body = {"path": path, "target": "model:mock/mock-1", "price_usd": "0.01", "pay_to": PAY_TO}
        refused = httpx.post(gw.base_url + "/admin/paid-endpoints", json=body, headers=AUTH)
        assert refused.status_code == 400, (path, refused.text)
        assert "gateway's own routes" in refused.json()["error"]["message"] and "/paid/" in refused.text
    config = tmp_path / "alephant.yaml"
    config.write_text(yaml.safe_dump({"paid_endpoints": {"p": {**body, "path": "/v1/embeddings"}}}))
    with pytest.raises(ConfigError, match="gateway's own routes"):
        load_settings(config)
