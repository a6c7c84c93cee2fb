"""Money is an ``int`` of nano-USD (1e-9 USD) everywhere inside; ``Decimal`` only at the edges.

Floats cannot represent cents exactly and their sums drift; integers of nano-dollars add exactly and leave
room for per-token prices (a $0.01/MTok price is 0.01 nano-USD per token, so costs are computed per million
tokens and rounded once per call).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["MAX_NANO", "NANO_PER_USD", "Nano", "format_usd", "mtok_cost", "parse_usd", "per_mtok", "to_nano", "to_usd"]

Nano = int
NANO_PER_USD = 1_000_000_000
_TOKENS_PER_MTOK = 1_000_000
MAX_NANO = 2**63 - 1  # the database's BIGINT: about 9.2 billion USD


def to_nano(usd: Decimal | str | int) -> Nano:
    """USD (a ``Decimal`` or its text) to nano-USD, rounding half up at the ninth decimal."""
    if isinstance(usd, float):
        raise TypeError("money must not be a float; pass a Decimal or a string")
    try:
        value = Decimal(usd) if not isinstance(usd, Decimal) else usd
        return int((value * NANO_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        raise ValueError(f"not an amount of USD: {usd!r}") from None


def to_usd(nano: Nano) -> Decimal:
    """nano-USD to an exact ``Decimal`` of USD (for APIs and reports)."""
    return Decimal(nano).scaleb(-9)


def format_usd(nano: Nano) -> str:
    """Plain decimal text with nine places, e.g. ``0.000012500``: stable for headers and logs."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO_PER_USD)
    return f"{sign}{whole}.{frac:09d}"


def mtok_cost(tokens: int, nano_per_mtok: int) -> Nano:
    """Cost of ``tokens`` at a price in nano-USD per million tokens, rounded half up to whole nano-USD."""
    return (tokens * nano_per_mtok + _TOKENS_PER_MTOK // 2) // _TOKENS_PER_MTOK


def parse_usd(text: str | Decimal) -> Nano:
    """An amount as people write it (``"0.25"``, ``"$1.50"``, ``"1,000"``) to nano-USD, exactly or not at all.

    Unlike ``to_nano`` this refuses amounts finer than a nano-dollar instead of rounding them: a caller who
    records ``0.0000000001`` has a bug that rounding would hide.
    """
    if isinstance(text, float):
        raise TypeError("money must not be a float; pass a Decimal or a string")
    cleaned = text.strip().replace(",", "").replace("_", "") if isinstance(text, str) else text
    if isinstance(cleaned, str):
        sign = "-" if cleaned.startswith("-") else ""
        cleaned = sign + cleaned.removeprefix("-").removeprefix("$").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"not an amount of USD: {text!r}; write it like 0.25 or $1.50")
    scaled = value.scaleb(9)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"not an exact amount of USD: {text!r}; at most 9 decimal places (one nano-dollar)")
    if abs(scaled) > MAX_NANO:
        raise ValueError(f"amount out of range: {text!r}; at most {MAX_NANO // NANO_PER_USD:,} USD")
    return int(scaled)


def per_mtok(token_price_sum: int) -> Nano:
    """Round a sum of ``tokens x nano-USD per million tokens`` to whole nano-USD, half up, once per call."""
    return (token_price_sum + _TOKENS_PER_MTOK // 2) // _TOKENS_PER_MTOK
