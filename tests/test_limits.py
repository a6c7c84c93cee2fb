"""Limits, in-process: calendar windows in a time zone (DST included), and both backends' admission semantics.

The backend tests run the same scenarios against the in-process backend and the real Redis on 127.0.0.1
(each test under its own key prefix), so the Lua scripts and the dicts are held to one behaviour.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.budgets import PERIODS, WindowCache, fits, remaining, window
from server.limits.backend import LimitBackend
from server.limits.memory import MemoryBackend
from server.limits.redis_backend import RedisBackend
from server.limits.types import Admission, BudgetCharge, BudgetRule, LeaseCharge, LimitRule, RateCharge

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.anyio


# --- calendar windows ---------------------------------------------------------------------------------------


def test_daily_window_follows_the_budget_time_zone() -> None:
    now = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 00:30 on June 11 in Paris (UTC+2)
    paris = window("daily", "Europe/Paris", now)
    assert paris.start == datetime(2026, 6, 10, 22, 0, tzinfo=UTC)
    assert paris.end == datetime(2026, 6, 11, 22, 0, tzinfo=UTC)
    utc = window("daily", "UTC", now)
    assert utc.start == datetime(2026, 6, 10, tzinfo=UTC)


def test_dst_days_are_23_and_25_hours_long() -> None:
    spring = window("daily", "America/New_York", datetime(2026, 3, 8, 15, tzinfo=UTC))
    assert spring.end is not None and spring.end - spring.start == timedelta(hours=23)
    autumn = window("daily", "America/New_York", datetime(2026, 11, 1, 15, tzinfo=UTC))
    assert autumn.end is not None and autumn.end - autumn.start == timedelta(hours=25)
    assert autumn.start == datetime(2026, 11, 1, 4, tzinfo=UTC)  # midnight EDT
    assert autumn.end == datetime(2026, 11, 2, 5, tzinfo=UTC)  # midnight EST


def test_hourly_weekly_monthly_and_total_windows() -> None:
    now = datetime(2026, 12, 31, 23, 10, tzinfo=UTC)  # Friday; 04:40 on Jan 1 in Kolkata (UTC+5:30)
    hourly = window("hourly", "Asia/Kolkata", now)
    assert (hourly.start, hourly.end) == (
        datetime(2026, 12, 31, 22, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    )
    weekly = window("weekly", "UTC", now)
    assert weekly.start == datetime(2026, 12, 28, tzinfo=UTC)  # Monday
    assert weekly.end == datetime(2027, 1, 4, tzinfo=UTC)
    monthly = window("monthly", "Asia/Kolkata", now)  # already January there
    assert monthly.start == datetime(2026, 12, 31, 18, 30, tzinfo=UTC)
    assert monthly.end == datetime(2027, 1, 31, 18, 30, tzinfo=UTC)
    total = window("total", "UTC", now)
    assert total.end is None and total.id == 0


def test_weekly_window_across_the_autumn_dst_change() -> None:
    week = window("weekly", "Europe/Berlin", datetime(2026, 10, 22, 12, tzinfo=UTC))  # clocks go back on the 25th
    assert week.start == datetime(2026, 10, 18, 22, tzinfo=UTC)  # Monday 19th, 00:00 CEST
    assert week.end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # Monday 26th, 00:00 CET
    assert week.end - week.start == timedelta(days=7, hours=1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(2026, 3, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)),
        min_size=1,
        max_size=40,
    )
)
def test_the_window_cache_answers_as_window_does_for_any_sequence_of_times(times: list[datetime]) -> None:
    # In order, out of order (a clock stepping back), across hours, days, DST changes and months.
    cache = WindowCache()
    for now in [*sorted(times), *times]:
        for period in PERIODS:
            for zone in ("UTC", "Europe/Paris", "Asia/Kolkata"):
                assert cache(period, zone, now) == window(period, zone, now)


def test_fits_and_remaining_are_exact() -> None:
    assert fits(100, 60, 30, 10) and not fits(100, 60, 30, 11)
    assert remaining(100, 60, 30) == 10 and remaining(100, 90, 30) == 0


# --- backends -----------------------------------------------------------------------------------------------

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)


def _budget(limit: int, mode: str = "hard") -> BudgetRule:
    return BudgetRule(
        id="bud_" + secrets.token_hex(4),
        workspace_id="default",
        scope="key",
        scope_id="key_1",
        period="daily",
        limit_nano=limit,
        mode=mode,  # type: ignore[arg-type]
        time_zone="UTC",
        created_at=NOW,
    )


def _limit(kind: str, limit: int) -> LimitRule:
    return LimitRule(
        id="lim_" + secrets.token_hex(4),
        workspace_id="default",
        scope="key",
        scope_id="key_1",
        kind=kind,  # type: ignore[arg-type]
        limit=limit,
        created_at=NOW,
    )


def _charge(rule: BudgetRule, amount: int) -> BudgetCharge:
    current = window(rule.period, rule.time_zone, NOW)
    return BudgetCharge(rule, "key_1", current, f"b:{rule.id}:key_1:{current.id}", amount)


def _admission(**parts: tuple[object, ...]) -> Admission:
    return Admission(ticket=secrets.token_hex(6), **parts)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[LimitBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    prefix = f"alephant-test:{secrets.token_hex(6)}:"
    made = RedisBackend(REDIS_URL, prefix=prefix)
    yield made
    await made.aclose()
    client = redis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_missing_budget_counters_are_reported_then_seeded(backend: LimitBackend) -> None:
    rule = _budget(1_000)
    charge = _charge(rule, 100)
    outcome = await backend.admit(_admission(budgets=(charge,)), now_ms=1_000, lease_ttl_ms=10_000)
    assert outcome.missing == (0,) and outcome.refused is None
    await backend.seed(charge.key, 850, ttl_seconds=60)
    await backend.seed(charge.key, 0, ttl_seconds=60)  # a second seed (another replica) changes nothing
    counters, missing = await backend.peek([charge], now_ms=1_000)
    assert missing == [] and (counters[0].spent, counters[0].reserved) == (850, 0)


async def test_hard_budget_reserves_refuses_and_commits_the_actual_cost(backend: LimitBackend) -> None:
    rule = _budget(1_000)
    first = _admission(budgets=(_charge(rule, 600),))
    await backend.seed(first.budgets[0].key, 0, ttl_seconds=60)
    ok = await backend.admit(first, now_ms=1_000, lease_ttl_ms=10_000)
    assert ok.refused is None and (ok.budgets[0].spent, ok.budgets[0].reserved) == (0, 600)
    second = _admission(budgets=(_charge(rule, 600),))
    refused = await backend.admit(second, now_ms=1_000, lease_ttl_ms=10_000)
    assert refused.refused == ("budget", 0) and refused.detail == (0, 600)
    await backend.commit(first, actual_nano=250, actual_tokens=0, now_ms=1_500)
    counters, _ = await backend.peek(first.budgets, now_ms=1_500)
    assert (counters[0].spent, counters[0].reserved) == (250, 0)
    assert (await backend.admit(second, now_ms=1_600, lease_ttl_ms=10_000)).refused is None


async def test_soft_budget_never_refuses(backend: LimitBackend) -> None:
    rule = _budget(100, mode="soft")
    admission = _admission(budgets=(_charge(rule, 500),))
    await backend.seed(admission.budgets[0].key, 90, ttl_seconds=60)
    outcome = await backend.admit(admission, now_ms=1_000, lease_ttl_ms=10_000)
    assert outcome.refused is None and outcome.budgets[0].spent + outcome.budgets[0].reserved == 590


async def test_an_expired_reservation_returns_to_the_budget(backend: LimitBackend) -> None:
    rule = _budget(1_000)
    crashed = _admission(budgets=(_charge(rule, 1_000),))
    await backend.seed(crashed.budgets[0].key, 0, ttl_seconds=60)
    assert (await backend.admit(crashed, now_ms=1_000, lease_ttl_ms=5_000)).refused is None
    later = _admission(budgets=(_charge(rule, 1_000),))
    assert (await backend.admit(later, now_ms=5_999, lease_ttl_ms=5_000)).refused == ("budget", 0)
    assert (await backend.admit(later, now_ms=6_001, lease_ttl_ms=5_000)).refused is None


async def test_renewal_keeps_a_long_call_reserved(backend: LimitBackend) -> None:
    lease_rule = _limit("concurrency", 1)
    long_call = _admission(leases=(LeaseCharge(lease_rule, "key_1", f"c:{lease_rule.id}:key_1"),))
    assert (await backend.admit(long_call, now_ms=1_000, lease_ttl_ms=5_000)).refused is None
    await backend.renew([long_call], now_ms=5_000, lease_ttl_ms=5_000)  # now expires at 10_000
    other = _admission(leases=long_call.leases)
    assert (await backend.admit(other, now_ms=9_000, lease_ttl_ms=5_000)).refused == ("concurrency", 0)
    assert (await backend.admit(other, now_ms=10_001, lease_ttl_ms=5_000)).refused is None


async def test_rate_window_counts_and_resets(backend: LimitBackend) -> None:
    rule = _limit("rpm", 2)
    charge = RateCharge(rule, "key_1", f"r:{rule.id}:key_1", 60_000, 1)
    now = int(datetime.now(UTC).timestamp() * 1000)  # Redis expires windows on its own clock
    first = await backend.admit(_admission(rates=(charge,)), now_ms=now, lease_ttl_ms=10_000)
    assert first.rates[0][0] == 1 and 59_000 < first.rates[0][1] <= 60_000
    assert (await backend.admit(_admission(rates=(charge,)), now_ms=now, lease_ttl_ms=10_000)).refused is None
    refused = await backend.admit(_admission(rates=(charge,)), now_ms=now, lease_ttl_ms=10_000)
    assert refused.refused == ("rate", 0) and refused.detail[0] == 2 and refused.detail[1] > 0


async def test_tpm_is_corrected_with_actual_tokens(backend: LimitBackend) -> None:
    rule = _limit("tpm", 1_000)
    estimate = RateCharge(rule, "key_1", f"r:{rule.id}:key_1", 60_000, 900)
    now = int(datetime.now(UTC).timestamp() * 1000)
    call = _admission(rates=(estimate,))
    assert (await backend.admit(call, now_ms=now, lease_ttl_ms=10_000)).refused is None
    assert (await backend.admit(_admission(rates=(estimate,)), now_ms=now, lease_ttl_ms=10_000)).refused == (
        "rate",
        0,
    )
    await backend.commit(call, actual_nano=0, actual_tokens=50, now_ms=now)
    after = await backend.admit(_admission(rates=(estimate,)), now_ms=now, lease_ttl_ms=10_000)
    assert after.refused is None and after.rates[0][0] == 950


async def test_refusal_takes_nothing(backend: LimitBackend) -> None:
    rule = _budget(1_000)
    rpm = _limit("rpm", 1)
    lease_rule = _limit("concurrency", 5)
    rate = RateCharge(rpm, "key_1", f"r:{rpm.id}:key_1", 60_000, 1)
    lease = LeaseCharge(lease_rule, "key_1", f"c:{lease_rule.id}:key_1")
    now = int(datetime.now(UTC).timestamp() * 1000)
    await backend.seed(_charge(rule, 0).key, 0, ttl_seconds=60)
    assert (await backend.admit(_admission(rates=(rate,)), now_ms=now, lease_ttl_ms=10_000)).refused is None
    refused = await backend.admit(
        _admission(budgets=(_charge(rule, 400),), rates=(rate,), leases=(lease,)), now_ms=now, lease_ttl_ms=10_000
    )
    assert refused.refused == ("rate", 0)
    counters, _ = await backend.peek([_charge(rule, 0)], now_ms=now)
    assert counters[0].reserved == 0  # the budget check passed first, but nothing was reserved


async def test_spend_adds_without_refusing(backend: LimitBackend) -> None:
    charge = _charge(_budget(100), 250)
    assert await backend.spend([charge], now_ms=1_000) == [0]
    await backend.seed(charge.key, 0, ttl_seconds=60)
    assert await backend.spend([charge], now_ms=1_000) == []
    counters, _ = await backend.peek([charge], now_ms=1_000)
    assert counters[0].spent == 250
