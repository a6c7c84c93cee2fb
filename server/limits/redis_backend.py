"""The Redis limits backend: counters shared by every worker and replica, one Lua script call per admission.

Admission (every budget reservation, rate window and concurrency lease of a call) is one ``EVALSHA`` of
``_scripts.ADMIT``; the commit is one more. They go through ``resp.RespClient``, a pipelined connection of our
own (a fifth of ``redis.asyncio``'s CPU per call); a script Redis forgot is sent again with ``EVAL``. The key
layout is documented in ``_scripts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _scripts
from .backend import counter_expiry
from .resp import RespClient
from .types import Admission, BudgetCharge, BudgetCounter, Outcome

__all__ = ["RedisBackend"]


def _seed_indexes(reply: list[Any]) -> list[int]:
    return [int(index) - 1 for index in reply[1:]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    def __init__(self, url: str, *, prefix: str) -> None:
        self._redis = RespClient.from_url(url, timeout=5, connect_timeout=2)
        self._prefix = prefix
        self._admit = self._redis.register_script(_scripts.ADMIT)
        self._commit = self._redis.register_script(_scripts.COMMIT)
        self._renew = self._redis.register_script(_scripts.RENEW)
        self._peek = self._redis.register_script(_scripts.PEEK)
        self._spend = self._redis.register_script(_scripts.SPEND)
        self._seed = self._redis.register_script(_scripts.SEED)

    def _budget_keys(self, budgets: Sequence[BudgetCharge]) -> list[str]:
        keys = []
        for charge in budgets:
            name = self._prefix + charge.key
            keys += [name, name + ":r"]
        return keys

    def _keys(self, admission: Admission) -> list[str]:
        return [
            *self._budget_keys(admission.budgets),
            *(self._prefix + rate.key for rate in admission.rates),
            *(self._prefix + lease.key for lease in admission.leases),
        ]

    async def admit(self, admission: Admission, *, now_ms: int, lease_ttl_ms: int) -> Outcome:
        args: list[Any] = [
            now_ms,
            admission.ticket,
            lease_ttl_ms,
            len(admission.budgets),
            len(admission.rates),
            len(admission.leases),
        ]
        for charge in admission.budgets:
            args += [
                charge.rule.limit_nano,
                charge.amount,
                int(charge.rule.mode == "hard"),
                counter_expiry(charge.window.end, now_ms),
            ]
        for rate in admission.rates:
            args += [rate.rule.limit, rate.window_ms, rate.cost]
        for lease in admission.leases:
            args.append(lease.rule.limit)
        reply = await self._admit(keys=self._keys(admission), args=args)
        head = _text(reply[0])
        if head == "seed":
            return Outcome(missing=tuple(_seed_indexes(reply)))
        if head == "refused":
            return Outcome(refused=(_text(reply[1]), int(reply[2]) - 1), detail=(int(reply[3]), int(reply[4])))
        values = [int(value) for value in reply[1:]]
        split = 2 * len(admission.budgets)
        budgets = tuple(BudgetCounter(values[i], values[i + 1]) for i in range(0, split, 2))
        rates = tuple((values[i], values[i + 1]) for i in range(split, len(values), 2))
        return Outcome(budgets=budgets, rates=rates)

    def commit_now(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> bool:
        return False  # every commit is a round trip

    async def commit(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> None:
        args: list[Any] = [
            admission.ticket,
            actual_nano,
            actual_tokens,
            len(admission.budgets),
            len(admission.rates),
            len(admission.leases),
        ]
        args += [charge.amount for charge in admission.budgets]
        for rate in admission.rates:
            args += [rate.cost, int(rate.rule.kind == "tpm")]
        await self._commit(keys=self._keys(admission), args=args)

    async def renew(self, admissions: Sequence[Admission], *, now_ms: int, lease_ttl_ms: int) -> None:
        keys: list[str] = []
        members: list[str] = []
        for admission in admissions:
            for charge in admission.budgets:
                keys.append(self._prefix + charge.key + ":r")
                members.append(f"{admission.ticket}|{charge.amount}")
            for lease in admission.leases:
                keys.append(self._prefix + lease.key)
                members.append(admission.ticket)
        if keys:
            await self._renew(keys=keys, args=[now_ms + lease_ttl_ms, *members])

    async def peek(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> tuple[list[BudgetCounter], list[int]]:
        reply = await self._peek(keys=self._budget_keys(budgets), args=[now_ms])
        if reply and _text(reply[0]) == "seed":
            return [BudgetCounter(0, 0) for _ in budgets], _seed_indexes(reply)
        values = [int(value) for value in reply]
        return [BudgetCounter(values[i], values[i + 1]) for i in range(0, len(values), 2)], []

    async def spend(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> list[int]:
        keys = [self._prefix + charge.key for charge in budgets]
        reply = await self._spend(keys=keys, args=[charge.amount for charge in budgets])
        return _seed_indexes(reply) if _text(reply[0]) == "seed" else []

    async def seed(self, key: str, spent: int, *, ttl_seconds: int) -> None:
        await self._seed(keys=[self._prefix + key], args=[spent, ttl_seconds])

    async def aclose(self) -> None:
        await self._redis.aclose()
