"""The ledger: margin arithmetic worked by hand, exact aggregation (properties, 10^5 entries), and the store's
one UNION ALL query over request-log costs and ledger entries, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.ledger import KINDS, LEDGER_KINDS, Kind, Totals, aggregate, combine
from finance.money import format_usd, to_usd
from server.storage import Database, LogRow
from server.storage.ledger import LedgerEntry, LedgerFilter, LedgerStore, new_entry_id
from server.storage.schema import ledger_entries, request_log

USD = 1_000_000_000
CENT = USD // 100


# -- arithmetic --------------------------------------------------------------------------------------------------


def test_margin_worked_by_hand() -> None:
    # A support agent's run: 3 model calls ($0.012, $0.0305, $0.0075 = $0.05), one search API call ($0.02),
    # one x402 payment for a dataset ($0.10); its paid endpoint earned $0.25 from the customer. A cache hit
    # avoided $0.004 (reported, not spend).
    #   total spend = 0.05 + 0.02 + 0.10          = $0.17
    #   margin      = 0.25 - 0.17                 = $0.08
    rows: list[tuple[str | None, Kind, int, int]] = [
        ("run_1", "model_cost", 12_000_000, 1),
        ("run_1", "model_cost", 30_500_000, 1),
        ("run_1", "model_cost", 7_500_000, 1),
        ("run_1", "tool_spend", 2 * CENT, 1),
        ("run_1", "payment_spend", 10 * CENT, 1),
        ("run_1", "revenue", 25 * CENT, 1),
        ("run_1", "cache_savings", 4_000_000, 1),
    ]
    run = aggregate(rows)["run_1"]
    assert run.model_cost == 5 * CENT and run.requests == 3 and run.entries == 4
    assert run.total_spend == 17 * CENT
    assert run.margin == 8 * CENT
    assert format_usd(run.margin) == "0.080000000"


def test_adjustments_correct_spend_and_margin() -> None:
    # An agent spent $1.00 on models and $0.40 on tools and earned $2.00: margin $0.60. The tool vendor then
    # refunded $0.15 (adjustment -0.15) and a late model invoice added $0.05 (adjustment +0.05):
    #   total spend = 1.00 + 0.40 - 0.15 + 0.05 = $1.30;  margin = 2.00 - 1.30 = $0.70
    totals = aggregate(
        [
            (None, "model_cost", USD, 10),
            (None, "tool_spend", 40 * CENT, 1),
            (None, "revenue", 2 * USD, 1),
            (None, "adjustment", -15 * CENT, 1),
            (None, "adjustment", 5 * CENT, 1),
        ]
    )[None]
    assert (totals.adjustments, totals.total_spend, totals.margin) == (-10 * CENT, 130 * CENT, 70 * CENT)


def test_a_loss_is_a_negative_margin() -> None:
    # $0.30 of models for $0.10 of revenue: margin -$0.20.
    totals = aggregate([("a", "model_cost", 30 * CENT, 3), ("a", "revenue", 10 * CENT, 1)])["a"]
    assert totals.margin == -20 * CENT and format_usd(totals.margin) == "-0.200000000"


entries = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=10**12),
    ),
    max_size=200,
)


@given(entries, st.integers(min_value=1, max_value=7))
def test_aggregation_is_exact_and_order_free(rows: list[tuple[str | None, Kind, int]], chunks: int) -> None:
    singles = [(key, kind, amount, 1) for key, kind, amount in rows]
    totals = aggregate(singles)
    for key in {key for key, _, _ in rows}:
        for kind in KINDS:
            expected = sum(amount for k, kd, amount in rows if k == key and kd == kind)
            field = "adjustments" if kind == "adjustment" else kind
            assert getattr(totals[key], field) == expected
    # Partial sums (what the database returns per branch) fold to the same totals, in any order.
    partial: dict[tuple[str | None, Kind, int], tuple[int, int]] = {}
    for index, (key, kind, amount) in enumerate(rows):
        amount_so_far, count = partial.get((key, kind, index % chunks), (0, 0))
        partial[(key, kind, index % chunks)] = (amount_so_far + amount, count + 1)
    folded = aggregate([(key, kind, amount, count) for (key, kind, _), (amount, count) in reversed(partial.items())])
    assert folded == totals
    assert combine(totals.values()).total_spend == sum(t.total_spend for t in totals.values())


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_no_rounding_drift_over_100k_entries(seed: int) -> None:
    rng = random.Random(seed)
    # Sub-cent amounts (a typical model call costs a few hundred nano-dollars to a few cents).
    rows = [(f"agent_{rng.randrange(20)}", rng.choice(KINDS), rng.randrange(1, 50 * CENT), 1) for _ in range(100_000)]
    totals = aggregate(rows)
    everything = combine(totals.values())
    assert everything.requests + everything.entries == 100_000
    grand = sum(amount for _, _, amount, _ in rows)
    assert (
        sum(everything.amounts()[k] for k in ("model_cost", "tool_spend", "payment_spend", "revenue"))
        + (everything.cache_savings + everything.adjustments)
        == grand
    )
    # The decimal USD of the total is exactly the sum of each entry's decimal USD: nothing was rounded.
    assert to_usd(grand) == sum((Decimal(format_usd(amount)) for _, _, amount, _ in rows), Decimal(0))


# -- the store ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        await database.migrate()
        async with database.engine.begin() as connection:
            await connection.execute(ledger_entries.delete())
            await connection.execute(request_log.delete())
        yield database


@pytest.fixture
def store(db: Database) -> LedgerStore:
    return LedgerStore(db)


def _entry(kind: Kind, amount: int, **fields: object) -> LedgerEntry:
    values: dict[str, object] = {"workspace_id": "ws", "created_at": datetime.now(UTC)} | fields
    return LedgerEntry(id=new_entry_id(), kind=kind, amount_nano=amount, **values)  # type: ignore[arg-type]


async def _log(db: Database, rows: list[LogRow]) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(request_log.insert(), [dataclasses.asdict(row) for row in rows])


def _call(n: int, cost: int, **fields: object) -> LogRow:
    values: dict[str, object] = {"workspace_id": "ws", "created_at": datetime.now(UTC)} | fields
    return LogRow(request_id=f"req_{n}", endpoint="chat", cost_nano=cost, **values)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_union_of_model_costs_and_entries(db: Database, store: LedgerStore) -> None:
    day1 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    day2 = day1 + timedelta(hours=1)  # 2026-11-02 00:30 UTC
    await _log(
        db,
        [
            _call(1, 300, agent_id="a", provider="openai", upstream_model="gpt-4o-mini", created_at=day1),
            _call(2, 700, agent_id="a", provider="openai", upstream_model="gpt-4o-mini", created_at=day2),
            _call(3, 50, agent_id="b", provider="mock", upstream_model="mock-1", created_at=day2),
            _call(4, 999, workspace_id="other", agent_id="a"),  # another workspace: never counted
        ],
    )
    for entry in (
        _entry("tool_spend", 2_000, agent_id="a", vendor="serpapi", tool="search", created_at=day1),
        _entry("revenue", 10_000, agent_id="a", endpoint="ep_report", created_at=day2),
        _entry("adjustment", -500, agent_id="b", created_at=day2),
        _entry("tool_spend", 1, workspace_id="other"),
    ):
        await store.append(entry)
    whole = (await store.totals("ws"))[None]
    assert (whole.model_cost, whole.tool_spend, whole.revenue, whole.adjustments) == (1_050, 2_000, 10_000, -500)
    assert (whole.requests, whole.entries, whole.margin) == (3, 3, 10_000 - (1_050 + 2_000 - 500))
    by_agent = await store.totals("ws", group_by="agent")
    assert by_agent["a"].margin == 10_000 - 1_000 - 2_000 and by_agent["b"].total_spend == 50 - 500
    by_model = await store.totals("ws", group_by="model")
    assert by_model["openai/gpt-4o-mini"].model_cost == 1_000 and by_model[None].tool_spend == 2_000
    by_day = await store.totals("ws", group_by="day")
    assert set(by_day) == {"2026-11-01", "2026-11-02"}
    assert by_day["2026-11-01"].total_spend == 2_300 and by_day["2026-11-02"].total_spend == 250
    by_vendor = await store.totals("ws", group_by="vendor")
    assert by_vendor["serpapi"].tool_spend == 2_000 and by_vendor["openai"].model_cost == 1_000
    by_endpoint = await store.totals("ws", group_by="endpoint")
    assert by_endpoint["ep_report"].revenue == 10_000
    window = LedgerFilter(since=day2, agent_id="a")
    assert (await store.totals("ws", where=window))[None].total_spend == 700
    assert await store.spent("ws", LedgerFilter(agent_id="a")) == 3_000  # model + tool; revenue is not spend
    assert await store.spent("nobody") == 0


@pytest.mark.anyio
async def test_idempotent_append_under_concurrency(db: Database, store: LedgerStore) -> None:
    attempts = [_entry("tool_spend", 1_234, idempotency_key="retry-1", vendor="v", tool="t") for _ in range(20)]
    results = await asyncio.gather(*(store.append(entry) for entry in attempts))
    created = [stored for stored, new in results if new]
    assert len(created) == 1
    assert {stored.id for stored, _ in results} == {created[0].id}
    # The same key in another workspace is another entry; entries without a key are never merged.
    assert (await store.append(_entry("tool_spend", 1, workspace_id="ws2", idempotency_key="retry-1")))[1]
    assert all([(await store.append(_entry("tool_spend", 1)))[1] for _ in range(2)])
    assert len(await store.entries("ws")) == 3
    async with db.engine.connect() as connection:
        count = (await connection.execute(sa.select(sa.func.count()).select_from(ledger_entries))).scalar()
    assert count == 4


@pytest.mark.anyio
async def test_entries_round_trip(store: LedgerStore) -> None:
    entry = _entry(
        "payment_spend",
        9_223_372_036_854_775_807,  # the largest BIGINT
        department_id="d",
        key_id="k",
        run_id="r",
        session_id="s",
        request_id="req_x",
        metadata={"chain": "base", "tx": "0xabc"},
        description="dataset",
    )
    await store.append(entry)
    (stored,) = await store.entries("ws", LedgerFilter(run_id="r"))
    assert stored == entry
    assert all(kind in LEDGER_KINDS for kind in ("payment_spend", "revenue")) and "model_cost" not in LEDGER_KINDS
    assert Totals().margin == 0
