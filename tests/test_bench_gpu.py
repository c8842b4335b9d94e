"""bench/bench_gpu.py runs end to end in --quick mode (on the CPU here), and reports every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_mode_reports_speed_memory_and_purity_per_configuration(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--quick", "--seconds", "0.2"]
    subprocess.run([*command, "--json", str(out)], check=True, env=env, capture_output=True, timeout=300)
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["training_events"] == 2000
    assert set(figures["configs"]) == {"spanet_b1024", "spanet_b4096", "wide_b4096"}
    for config in figures["configs"].values():
        assert config["train_events_per_s"] > 0 and config["train_events_per_cpu_s"] > 0
        assert config["timed_steps"] >= 1
        assert config["step_host_ms"] <= config["step_wall_ms"] * 1.01
        assert 0.0 <= config["heldout_event_purity"] <= 1.0
        assert config["predict_events"] == 500 and config["predict_events_per_s"] > 0
