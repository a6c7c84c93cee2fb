"""The limiter's own Redis client (``server.limits.resp``) against the real Redis on 127.0.0.1:6379.

What the limiter relies on: replies in order under concurrency, Lua errors as ``ReplyError``, a forgotten script
sent again, a killed connection failing only the calls in flight and the next call reconnecting, a hung Redis
failing a call after the timeout, and the parser taking replies split at any byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis_py
from hypothesis import given
from hypothesis import strategies as st

from server.config import ConfigError, load_settings
from server.limits.resp import Parser, RedisUnavailable, ReplyError, RespClient, encode, parse_url
from tests.conftest import BOTH_LOOPS

URL = "redis://127.0.0.1:6379/0"
ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) * 2}"

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture
async def client() -> AsyncIterator[RespClient]:
    made = RespClient.from_url(URL, timeout=1.0, connect_timeout=1.0)
    yield made
    await made.aclose()


@contextlib.asynccontextmanager
async def admin() -> AsyncIterator[redis_py.Redis]:
    connection = redis_py.Redis.from_url(URL)
    try:
        yield connection
    finally:
        await connection.aclose()


async def test_concurrent_calls_get_their_own_replies(client: RespClient) -> None:
    echo = client.register_script(ECHO)
    replies = await asyncio.gather(*(echo(keys=[f"k{n}"], args=[f"v{n}", n]) for n in range(500)))
    assert replies == [[f"k{n}".encode(), f"v{n}".encode(), 2 * n] for n in range(500)]


async def test_a_lua_error_is_a_reply_error_and_the_connection_stays(client: RespClient) -> None:
    broken = client.register_script("return redis.call('INCR', KEYS[1], 'extra')")
    with pytest.raises(ReplyError, match="ERR"):
        await broken(keys=["resp-test"], args=[])
    assert await client.execute("PING") == b"PONG"


async def test_a_forgotten_script_is_sent_again(client: RespClient) -> None:
    echo = client.register_script(ECHO + " -- forgotten")
    assert await echo(keys=["a"], args=["b", 1]) == [b"a", b"b", 2]
    async with admin() as connection:
        await connection.script_flush()
    assert await echo(keys=["a"], args=["b", 2]) == [b"a", b"b", 4]


async def test_a_killed_connection_fails_what_was_in_flight_and_the_next_call_reconnects(client: RespClient) -> None:
    name = f"resp-test-{os.getpid()}"
    assert await client.execute("CLIENT", "SETNAME", name) == b"OK"
    in_flight = asyncio.ensure_future(client.execute("BLPOP", f"{name}-nothing", 5))
    await asyncio.sleep(0.1)
    async with admin() as connection:
        (mine,) = [c for c in await connection.client_list() if c["name"] == name]
        await connection.execute_command("CLIENT", "KILL", "ID", mine["id"])
    with pytest.raises(RedisUnavailable, match="lost"):
        await in_flight
    assert await client.execute("PING") == b"PONG"


async def test_a_hung_redis_fails_the_call_after_the_timeout(client: RespClient) -> None:
    echo = client.register_script(ECHO)
    assert await echo(keys=["a"], args=["b", 1]) == [b"a", b"b", 2]
    async with admin() as connection:
        await connection.execute_command("CLIENT", "PAUSE", 2500, "WRITE")  # scripts wait; other clients' reads go on
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(RedisUnavailable, match="did not answer within 1 s"):
                await echo(keys=["a"], args=["b", 1])
            assert asyncio.get_running_loop().time() - started < 2.0
        finally:
            await connection.execute_command("CLIENT", "UNPAUSE")
    assert await echo(keys=["a"], args=["b", 3]) == [b"a", b"b", 6]


async def test_nothing_listening_is_unavailable() -> None:
    nobody = RespClient.from_url("redis://127.0.0.1:1/0", timeout=1, connect_timeout=0.5)
    with pytest.raises(RedisUnavailable, match="cannot connect"):
        await nobody.execute("PING")
    await nobody.aclose()


def test_urls() -> None:
    assert parse_url("redis://:s3cr%40t@cache:6380/2") == {
        "username": None,
        "password": "s3cr@t",
        "db": 2,
        "host": "cache",
        "port": 6380,
        "path": None,
        "tls": False,
    }
    assert parse_url("rediss://user:pw@cache")["tls"] and parse_url("rediss://user:pw@cache")["username"] == "user"
    assert parse_url("unix:///run/redis.sock?db=3")["path"] == "/run/redis.sock"
    assert parse_url("unix:///run/redis.sock?db=3")["db"] == 3
    with pytest.raises(ValueError, match="scheme"):
        parse_url("http://cache:6379")
    with pytest.raises(ValueError, match="ssl_cert_reqs are not supported"):
        parse_url("rediss://cache?ssl_cert_reqs=none")


def test_a_redis_url_the_client_cannot_use_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "alephant.yaml"
    config.write_text("redis_url: redis+sentinel://:hunter2@cache:26379\ndatabase_url: mysql://me:hunter3@db/x\n")
    with pytest.raises(ConfigError, match="scheme") as refused:
        load_settings(config)
    assert "hunter2" not in str(refused.value) and "hunter3" not in str(refused.value), "passwords are never quoted"
    assert "redis+sentinel://***@cache:26379" in str(refused.value)


_VALUES = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.binary(max_size=40) | st.none(),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


def _wire(value: object) -> bytes:
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    assert isinstance(value, list)
    return b"*%d\r\n" % len(value) + b"".join(_wire(item) for item in value)


@given(st.lists(_VALUES, min_size=1, max_size=5), st.integers(min_value=1, max_value=7))
def test_the_parser_takes_replies_split_anywhere(values: list[object], step: int) -> None:
    wire = b"".join(_wire(value) for value in values) + b"-ERR boom\r\n+OK\r\n"
    parser, got = Parser(), []
    for start in range(0, len(wire), step):
        parser.feed(wire[start : start + step])
        while (reply := parser.pop()) is not None:
            got.append(reply[0])
    assert got[:-2] == values
    assert isinstance(got[-2], ReplyError) and str(got[-2]) == "ERR boom"
    assert got[-1] == b"OK"


def test_encode() -> None:
    assert encode("SET", b"k", 5) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"
