"""Turn a run's numbers into markdown tables, the bar check, ``RESULTS.md`` and the PNG chart."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from bench import governance

__all__ = ["bar", "chart", "refused", "tables", "write_results"]

NOTES_MARKER = "<!-- Everything below this line is kept when the harness rewrites this file. -->"
SCENARIOS = ("(a) pass-through", "(b) governed", "(c) streaming", "(d) Anthropic ingress", "(e) workers")


def _n(value: float, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _rows(payload: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [r for r in payload["rows"] if r["scenario"] == scenario]


def _find(payload: dict[str, Any], scenario: str, prefix: str) -> dict[str, Any] | None:
    """The row of the target named ``prefix``, else the first whose name starts with it."""
    rows = _rows(payload, scenario)
    exact = next((r for r in rows if r["target"] == prefix), None)
    return exact or next((r for r in rows if r["target"].startswith(prefix)), None)


def refused(payload: dict[str, Any]) -> list[str]:
    """Every gateway measurement with failed or refused requests: a governed row with any voids the run's
    numbers, because a 402/429 answer costs less than a served call."""
    found = [f"{r['scenario']} / {r['target']}: {r['errors']}" for r in payload["rows"] if r["errors"]]
    found += [f"fixed rate / {n}: {int(r['errors'])}" for n, r in payload.get("fixed_rate", {}).items() if r["errors"]]
    found += [f"TTFT / {n}: {int(r['errors'])}" for n, r in payload.get("ttft", {}).items() if r["errors"]]
    return [line for line in found if "gateway" in line]


def tables(payload: dict[str, Any]) -> str:
    out: list[str] = []
    for scenario in SCENARIOS:
        rows = _rows(payload, scenario)
        if not rows:
            continue
        out += [f"### {scenario}", "", "| target | RPS | p50 ms | p99 ms | p50 added vs direct | RSS MB | errors |"]
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        for r in rows:
            added = "–" if r["target"].startswith("mock") or scenario == "(e) workers" else _n(r["added_p50"])
            out.append(
                f"| {r['target']} | {_n(r['rps'], 0)} | {_n(r['p50'])} | {_n(r['p99'])} | {added} "
                f"| {_n(r['rss_mb'], 0)} | {r['errors']} |"
            )
        out.append("")
    rates = payload.get("fixed_rate", {})
    if rates:
        direct = rates.get("mock (direct)", {})
        out += [f"### Latency at a fixed {payload['plan']['rate']:,.0f} RPS (open loop)", ""]
        out += ["| target | sent RPS | p50 ms | p99 ms | added p50 | added p99 | schedule lag p99 ms | errors |"]
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|")
        for name, r in rates.items():
            extra = (r["p50"] - direct["p50"], r["p99"] - direct["p99"]) if direct and name != "mock (direct)" else None
            out.append(
                f"| {name} | {_n(r['rate'], 0)} | {_n(r['p50'], 3)} | {_n(r['p99'], 3)} "
                f"| {_n(extra[0], 3) if extra else '–'} | {_n(extra[1], 3) if extra else '–'} "
                f"| {_n(r['lag_p99'], 3)} | {int(r['errors'])} |"
            )
        out.append("")
    ttft = payload.get("ttft", {})
    if ttft:
        direct = ttft.get("mock (direct)", {})
        out += ["### Streaming: time to first token and inter-chunk gaps (upstream paces events 5 ms apart)", ""]
        out += ["| target | TTFT p50 ms | TTFT p99 ms | added TTFT p50 | mean gap ms | added gap | streams |"]
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        for name, r in ttft.items():
            is_direct = name == "mock (direct)" or not direct
            out.append(
                f"| {name} | {_n(r['ttft_p50'], 3)} | {_n(r['ttft_p99'], 3)} "
                f"| {'–' if is_direct else _n(r['ttft_p50'] - direct['ttft_p50'], 3)} | {_n(r['gap_mean'], 3)} "
                f"| {'–' if is_direct else _n(r['gap_mean'] - direct['gap_mean'], 3)} | {int(r['streams'])} |"
            )
        out.append("")
    windows = payload.get("budget_window", {})
    if windows:
        out += ["### The limited workspace's budget window after each governed gateway's scenarios", ""]
        out += [
            "| gateway | spent nano-USD | still reserved nano-USD | s until nothing was reserved |",
            "|---|--:|--:|--:|",
        ]
        out += [
            f"| {n} | {w['spent_nano']:,} | {w['reserved_nano']:,} | {w.get('settled_s', '–')} |"
            for n, w in windows.items()
        ]
        out.append("")
    soak = payload.get("soak")
    if soak:
        samples = soak["samples"]
        out += [f"### RSS over {samples[-1][0]:,} governed requests ({soak['target']})", ""]
        out.append("requests served → RSS MB: " + ", ".join(f"{n:,} → {mb:.1f}" for n, mb in samples))
        out.append("")
    return "\n".join(out)


def bar(payload: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each line of the issue's bar; None where it was not measured."""
    checks: list[tuple[str, str, bool | None]] = []
    gov = _find(payload, "(b) governed", "gateway (uvicorn)")
    lite = _find(payload, "(b) governed", "LiteLLM")
    if payload["rows"]:
        void = refused(payload)
        checks.append(
            ("Every gateway request answered (else the numbers are void)", "; ".join(void) or "0 errors", not void)
        )
    if gov:
        checks.append(("Governed path ≥ 4,000 RPS", f"{gov['rps']:,.0f} RPS", gov["rps"] >= 4000))
        if lite and lite["rps"] > 0:
            ratio = gov["rps"] / lite["rps"]
            checks.append(("Governed ≥ 35× LiteLLM (same run)", f"{ratio:.1f}×", ratio >= 35))
        else:
            checks.append(("Governed ≥ 35× LiteLLM (same run)", "LiteLLM not run", None))
    bare, floor = _find(payload, "(a) pass-through", "gateway (uvicorn)"), _find(payload, "(a) pass-through", "floor")
    if bare and floor:
        share = bare["rps"] / floor["rps"]
        checks.append(("Bare pass-through ≥ 85% of the floor", f"{share:.0%}", share >= 0.85))
    rates = payload.get("fixed_rate", {})
    if "gateway (uvicorn)" in rates and "mock (direct)" in rates:
        g, d = rates["gateway (uvicorn)"], rates["mock (direct)"]
        p50, p99 = g["p50"] - d["p50"], g["p99"] - d["p99"]
        rate = payload["plan"]["rate"]
        checks.append((f"Added p50 ≤ 1 ms at {rate:,.0f} RPS", f"{p50:.3f} ms", p50 <= 1))
        checks.append((f"Added p99 ≤ 5 ms at {rate:,.0f} RPS", f"{p99:.3f} ms", p99 <= 5))
    soak = payload.get("soak")
    if soak:
        samples = soak["samples"]
        last, warm = samples[-1][1], samples[min(2, len(samples) - 1)][1]
        growth = last - warm
        checks.append(
            (
                f"RSS ≤ 150 MB after {samples[-1][0]:,} requests, no growth",
                f"{last:.0f} MB ({growth:+.1f} MB since {samples[min(2, len(samples) - 1)][0]:,})",
                last <= 150 and growth <= 5,
            )
        )
    ttft = payload.get("ttft", {})
    if "gateway (uvicorn)" in ttft and "mock (direct)" in ttft:
        added = ttft["gateway (uvicorn)"]["ttft_p50"] - ttft["mock (direct)"]["ttft_p50"]
        checks.append(("Streaming adds ≤ 1 ms to the first token", f"{added:.3f} ms", added <= 1))
    one, two = (
        _find(payload, "(e) workers", "gateway (uvicorn) 1"),
        _find(payload, "(e) workers", "gateway (uvicorn) 2"),
    )
    if one and two and one["rps"] > 0:
        scale = two["rps"] / one["rps"]
        checks.append(("2 workers ≥ 1.7× one", f"{scale:.2f}×", scale >= 1.7))
    return checks


def _bar_table(payload: dict[str, Any]) -> str:
    lines = ["| target | measured | met |", "|---|--:|:-:|"]
    for name, measured, met in bar(payload):
        lines.append(f"| {name} | {measured} | {'–' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(lines)


def _profile_section(payload: dict[str, Any]) -> str:
    profile = payload.get("profile")
    if not profile:
        return ""
    lines = [
        f"### Where the governed path's CPU goes (py-spy, {profile['samples']:,} samples, {profile['target']})",
        "",
        "| owner of the innermost Python frame | share |",
        "|---|--:|",
    ]
    lines += [f"| {name} | {pct:.1f}% |" for name, pct in profile["buckets"]]
    lines += ["", "Top functions by self time:", "", "| function | self |", "|---|--:|"]
    lines += [f"| `{name}` | {pct:.1f}% |" for name, pct in profile["leaves"]]
    return "\n".join(lines) + "\n"


def write_results(payload: dict[str, Any], path: Path) -> None:
    kept = ""
    if path.exists():
        text = path.read_text()
        if NOTES_MARKER in text:
            kept = text.split(NOTES_MARKER, 1)[1]
    machine = payload["machine"]
    plan = payload["plan"]
    head = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); the hand-written notes at the end are kept across runs.",
        "",
        "## Machine and method",
        "",
        *[f"- **{k}**: {v}" for k, v in machine.items()],
        f"- **LiteLLM**: {payload.get('litellm')} — installed by the harness into `bench/.venv-litellm`, one "
        "worker, **no database** (its Prisma engine downloads binaries at run time, which cannot work offline), "
        "no Redis, master key auth only.",
        f"- **governed store**: {payload.get('governed_store')}",
        f"- **limits backend**: {payload.get('limits_backend')}",
        "- **(b) governed**: a virtual key limited to `bench/*` in a workspace with a monthly budget "
        f"(${governance.BUDGET_USD}), an rpm limit ({governance.RPM:,}) and a concurrency limit "
        f"({governance.CONCURRENCY:,}), all out of reach, so each request pays one admission and one commit Lua call "
        "on Redis and is never refused; auth, policy, the request log and cost as always. `no limits`: the same "
        "gateway process, a key in a workspace without rules (the limits stage is one dict lookup). (c)-(e), the "
        "fixed rate, TTFT, the soak and the profile use the key with limits.",
        f"- **throughput**: `wrk -t2 -c{plan['connections']} -d{plan['duration']:g}s --latency -s <post.lua> URL` "
        f"after a {plan['warmup']:g} s warm-up; (e) uses `-c64`. wrk, the mock, PostgreSQL and the target all share "
        "the machine's cores.",
        f"- **fixed rate**: `bench/load.py::fixed_rate`, open loop at {plan['rate']:,.0f} RPS for "
        f"{plan['rate_seconds']:g} s on raw keep-alive sockets; latency from the request's write to the last byte.",
        f"- **TTFT**: `bench/load.py::streams`, {plan['streams']} sequential streams per target, model "
        "`bench/paced-5` (the mock sends 9 events 5 ms apart, the first at once).",
        "- **RSS**: VmRSS of the server process and its children, from `/proc`.",
        f"- **elapsed**: {payload.get('elapsed_s')} s for the whole run.",
        "",
        "## The bar (one gateway worker, uvicorn — the current default)",
        "",
        _bar_table(payload),
        "",
        "## Results",
        "",
        tables(payload),
        _profile_section(payload),
        "![results](results.png)",
        "",
        NOTES_MARKER,
    ]
    path.write_text("\n".join(head) + (kept or "\n"))


def chart(payload: dict[str, Any], png: Path, python: Path) -> str:
    """Render ``results.png`` with matplotlib from the LiteLLM venv (the gateway's venv does not carry it)."""
    if not python.exists():
        return "chart: skipped (no bench/.venv-litellm with matplotlib)"
    data = png.with_suffix(".json")
    data.write_text(json.dumps(payload))
    script = Path(__file__).with_name("chart.py")
    done = subprocess.run([str(python), str(script), str(data), str(png)], capture_output=True, text=True)
    data.unlink()
    return f"chart: {png}" if done.returncode == 0 else f"chart: failed: {done.stderr[-500:]}"
