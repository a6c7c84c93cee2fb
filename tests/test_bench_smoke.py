"""The benchmark harness runs end to end (``python -m bench --quick``, governed path on Redis); no timed bar is
asserted here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_reports_numbers_for_every_target(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    by_scenario = {(r["scenario"], r["target"]) for r in rows}
    for scenario in ("(a) pass-through", "(b) governed", "(c) streaming"):
        for target in ("mock (direct)", "floor (aiohttp proxy)", "gateway (uvicorn)"):
            assert (scenario, target) in by_scenario, (scenario, target)
    assert ("(d) Anthropic ingress", "gateway (uvicorn)") in by_scenario
    assert ("(b) governed", "gateway (uvicorn), no limits") in by_scenario
    assert payload["limits_backend"].startswith("Redis")
    # The limited workspace's calls went through the Redis budget, and every reservation was committed.
    window = payload["budget_window"]["gateway (uvicorn)"]
    assert window["spent_nano"] > 0 and window["reserved_nano"] == 0, window
    assert {r["target"] for r in rows if r["scenario"] == "(e) workers"} == {
        "gateway (uvicorn) 1 worker",
        "gateway (uvicorn) 2 workers",
    }
    for row in rows:
        assert row["rps"] > 0 and math.isfinite(row["p50"]), row
        assert row["errors"] == 0, row
    for name, result in payload["fixed_rate"].items():
        assert result["completed"] > 0 and result["errors"] == 0, name
    for name, result in payload["ttft"].items():
        assert result["streams"] > 0 and math.isfinite(result["ttft_p50"]), name
    samples = payload["soak"]["samples"]
    assert samples[-1][0] >= payload["plan"]["soak_requests"] and samples[-1][1] > 0
    assert "| gateway (uvicorn) |" in done.stdout
