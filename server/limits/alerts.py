"""Soft-budget crossings as one WARNING line per budget window, not one per call.

Every call admitted over a soft budget carries an ``alert`` policy event on its log row; the process log gets
a single line the first time this process sees a window crossed, so an operator watching it learns of the
crossing without a flood. It is in-process and cheap (one dict lookup per alerting call): each replica logs
its own first crossing. The set of windows remembered is bounded, oldest forgotten first, so budgets on each
run or agent cannot grow it without end; a forgotten window crossed again is logged again.
"""

from __future__ import annotations

import logging

from finance.money import format_usd

from .types import BudgetCharge, BudgetCounter

__all__ = ["SoftBudgetAlerts"]

_log = logging.getLogger("alephant.limits")
_REMEMBERED = 10_000


class SoftBudgetAlerts:
    """Usage::

    alerts = SoftBudgetAlerts()
    alerts.crossed(charge, counter)  # logs once per charge.key (rule, scope value, window)
    """

    def __init__(self, capacity: int = _REMEMBERED) -> None:
        self._capacity = capacity
        self._seen: dict[str, None] = {}  # insertion-ordered: the first key is the oldest

    def crossed(self, charge: BudgetCharge, counter: BudgetCounter) -> bool:
        """Log the crossing if this window's was not logged yet; True when this call logged it."""
        if charge.key in self._seen:
            return False
        self._seen[charge.key] = None
        if len(self._seen) > self._capacity:
            del self._seen[next(iter(self._seen))]
        rule = charge.rule
        until = f"until {charge.window.end.isoformat()}" if charge.window.end is not None else "(a total budget)"
        _log.warning(
            "soft budget crossed: %s (%s, workspace '%s') limit %s USD, %s USD spent and %s USD reserved; "
            "calls are still served %s",
            charge.rule_name,
            rule.id,
            rule.workspace_id,
            format_usd(rule.limit_nano),
            format_usd(counter.spent),
            format_usd(counter.reserved),
            until,
        )
        return True
