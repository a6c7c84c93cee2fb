"""Draw bench/results.png from the run's JSON. Runs in bench/.venv-litellm, which carries matplotlib.

bench/.venv-litellm/bin/python bench/chart.py results.json results.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SCENARIOS = ("(a) pass-through", "(b) governed", "(c) streaming", "(d) Anthropic ingress")


def main(source: str, target: str) -> None:
    with open(source) as handle:
        payload = json.load(handle)
    rows = payload["rows"]
    names: list[str] = []
    for row in rows:
        if row["scenario"] in SCENARIOS and row["target"] not in names:
            names.append(row["target"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = [next((r["rps"] for r in rows if r["scenario"] == s and r["target"] == name), 0) for s in SCENARIOS]
        xs = [j + i * width for j in range(len(SCENARIOS))]
        bars = left.bar(xs, values, width, label=name)
        left.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=6, rotation=90, padding=2)
    left.set_yscale("log")
    left.set_xticks([j + 0.4 - width / 2 for j in range(len(SCENARIOS))], SCENARIOS, fontsize=8)
    left.set_ylabel("requests/s (log scale)")
    left.set_title("Throughput, wrk -t2, one worker each (higher is better)")
    left.legend(fontsize=7)
    rates = payload.get("fixed_rate", {})
    labels = list(rates)
    p50 = [rates[n]["p50"] for n in labels]
    p99 = [rates[n]["p99"] for n in labels]
    xs = range(len(labels))
    right.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    right.bar([x + 0.2 for x in xs], p99, 0.4, label="p99")
    right.set_xticks(list(xs), [n.replace(" (", "\n(") for n in labels], fontsize=7)
    right.set_ylabel("ms")
    right.set_title(f"Latency at a fixed {payload['plan']['rate']:,.0f} RPS (lower is better)")
    right.legend(fontsize=7)
    fig.suptitle(f"Alephant benchmark — {payload['machine']['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
