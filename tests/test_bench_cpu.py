"""bench/bench_cpu.py: runs end to end in --quick mode (spanet_lite alone), and its ratios."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_cpu():
    spec = importlib.util.spec_from_file_location("bench_cpu", ROOT / "bench" / "bench_cpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(events_per_s: float, step_ms: float) -> dict[str, float]:
    return {"train_events_per_s": events_per_s, "step_ms": step_ms}


def test_ratios_are_of_medians_and_per_round() -> None:
    summary = bench_cpu().summarise(
        {
            "spanet_lite": [run(400, 80), run(500, 64), run(300, 107)],
            "spanet_lite_compiled": [run(500, 64), run(600, 53), run(410, 78)],
            "spanet": [run(40, 800), run(45, 711), run(30, 1067)],
        }
    )
    assert summary["tools"]["spanet_lite"]["train_events_per_s"] == 400
    assert summary["tools"]["spanet"]["train_events_per_s"] == 40
    assert summary["tools"]["spanet"]["step_ms"] == 800
    assert summary["ratio"] == 10.0
    assert summary["round_ratios"] == [10.0, 11.11, 10.0]
    assert summary["median_round_ratio"] == 10.0
    assert summary["variant_speedups"] == {"compiled": 1.25}
    assert summary["variant_ratios"] == {"compiled": 12.5}


def test_without_spanet_there_is_no_ratio() -> None:
    summary = bench_cpu().summarise({"spanet_lite": [run(400, 80)]})
    assert "ratio" not in summary and "variant_speedups" not in summary


def test_quick_mode_times_spanet_lite_on_spanet_options(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "bench" / "bench_cpu.py"), "--quick", "--seconds", "0.5"]
    subprocess.run([*command, "--json", str(out)], check=True, env=env, capture_output=True, timeout=300)
    figures = json.loads(out.read_text())
    assert figures["events"] == 2000 and figures["rounds"] == 1
    assert set(figures["tools"]) == {"spanet_lite"}
    (result,) = figures["tools"]["spanet_lite"]["runs"]
    assert result["train_events_per_s"] > 0 and result["timed_steps"] >= 1
    assert result["compile_mode"] == "off"  # the default
    assert len(result["load_average_before"]) == 3
    assert figures["machine"]["cores"] >= 1
