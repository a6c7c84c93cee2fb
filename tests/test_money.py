"""Money: parsing and formatting at the edges, and no float anywhere in the finance package (by inspection)."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finance.money import MAX_NANO, format_usd, parse_usd, per_mtok, to_usd

FINANCE = Path(__file__).resolve().parent.parent / "finance"


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("0.25", 250_000_000),
        ("$1.50", 1_500_000_000),
        (" $ 2 ", 2_000_000_000),
        ("1,000.000000001", 1_000_000_000_001),
        ("-$0.000000001", -1),
        ("1e-9", 1),
        (Decimal("0.1"), 100_000_000),
    ],
)
def test_parse_usd(text: str | Decimal, nano: int) -> None:
    assert parse_usd(text) == nano


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.0000000001", "at most 9 decimal places"),  # finer than a nano-dollar: refused, never rounded
        ("ten dollars", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("1e30", "out of range"),
        ("", "not an amount"),
    ],
)
def test_parse_usd_refuses(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_usd(text)


def test_parse_usd_refuses_floats() -> None:
    with pytest.raises(TypeError, match="float"):
        parse_usd(0.1)  # type: ignore[arg-type]


@given(st.integers(min_value=-MAX_NANO, max_value=MAX_NANO))
def test_format_and_parse_round_trip(nano: int) -> None:
    text = format_usd(nano)
    assert parse_usd(text) == nano
    assert to_usd(nano) == Decimal(text)


def test_per_mtok_rounds_half_up_once() -> None:
    assert per_mtok(499_999) == 0 and per_mtok(500_000) == 1
    # 3 tokens at 0.5 nano each: rounded once (2), not per token (3 x 1 = 3).
    assert per_mtok(3 * 500_000) == 2


def _offences(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            found.append(f"line {node.lineno}: float literal {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            found.append(f"line {node.lineno}: float()")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            found.append(f"line {node.lineno}: true division")
    return found


def test_no_float_or_true_division_in_finance() -> None:
    """Money paths stay integer (or Decimal at the edges): no float literal, float() call or ``/``."""
    modules = sorted(FINANCE.rglob("*.py"))
    assert len(modules) >= 5
    offences = {path.name: found for path in modules if (found := _offences(ast.parse(path.read_text())))}
    assert offences == {}


def test_the_inspection_catches_each_offence() -> None:
    source = "a = 0.5\nb = float('1')\nc = 3 / 2\nc /= 2\nd = 3 // 2\n"
    assert len(_offences(ast.parse(source))) == 4
