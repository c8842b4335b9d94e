"""Every ``bench/bench_*.py`` runs in ``--quick`` mode and writes the JSON keys its docstring names.

Benchmarks are run by hand, when someone wants their figures; without this test a change in the
package (a new rule for outputs, say) breaks one silently until then. ``bench_cpu`` and
``bench_gpu`` have tests of their own (``test_bench_cpu.py``, ``test_bench_gpu.py``).

The selected benchmarks start together, each in its own process, when the first of these tests
needs them, and each test waits for its own: with cores to spare the module takes about as long
as its slowest benchmark instead of the sum of all (about two minutes on one core). Their figures
mean nothing here (they share the machine), only that each runs to the end and says what it
documents.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from conftest import needs

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

DOCUMENTED_KEYS: dict[str, tuple[str, ...]] = {
    "bench_data": ("events", "file_mb", "generate_seconds", "results"),
    "bench_dataset": ("in_memory_events_per_s", "streaming_events_per_s", "streaming_peak_rss_mb"),
    "bench_generator": ("events_per_s", "events_per_cpu_s", "candidates_per_s", "selection_efficiency",
                        "peak_rss_mb"),
    "bench_inference": ("decode_events_per_s", "exact_decode_events_per_s", "predict_events_per_s",
                        "predict_events_per_s_1_thread", "test_events_per_s", "chi_square_events_per_s"),
    "bench_inspect": ("events", "file_mb", "generate_seconds", "seconds", "events_per_s", "peak_rss_mb"),
    "bench_model": ("configs", "event_group_loss_ms", "tth_trimmed_train_events_per_s",
                    "tth_untrimmed_train_events_per_s", "tth_trimming", "load_average"),
    "bench_pythia": ("pythia_events_per_s", "pythia_generated_per_s", "validation"),
}
"""The top-level JSON keys each benchmark's docstring promises (``machine`` comes with every one)."""
TESTED_ELSEWHERE = {"bench_cpu", "bench_gpu"}
EXTRA_MODULES = {"bench_pythia": ("pythia", ("pythia8mc", "fastjet", "awkward"))}
"""Benchmarks of an optional extra: skipped without it (a failure under CI, see conftest.needs)."""
TIMEOUT_S = 600


@dataclass
class Started:
    process: subprocess.Popen
    output: Path
    log_path: Path
    log: IO[str]


def _missing(name: str) -> bool:
    if name not in EXTRA_MODULES:
        return False
    return any(importlib.util.find_spec(module) is None for module in EXTRA_MODULES[name][1])


def _params() -> list:
    params = []
    for name in DOCUMENTED_KEYS:
        marks = []
        if name in EXTRA_MODULES:
            extra, modules = EXTRA_MODULES[name]
            marks.append(needs(*modules, extra=extra))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _docstring(name: str) -> str:
    return ast.get_docstring(ast.parse((BENCH / f"{name}.py").read_text(encoding="utf-8"))) or ""


def test_every_benchmark_is_tested() -> None:
    """A new bench_*.py needs an entry here (or a test of its own), or it goes unchecked."""
    found = {path.stem for path in BENCH.glob("bench_*.py")}
    assert found == set(DOCUMENTED_KEYS) | TESTED_ELSEWHERE


@pytest.mark.parametrize("name", list(DOCUMENTED_KEYS))
def test_docstring_names_the_keys(name: str) -> None:
    """The keys checked below are the ones the benchmark's docstring names, word for word."""
    text = _docstring(name)
    assert "JSON keys" in text
    assert [key for key in DOCUMENTED_KEYS[name] if f"``{key}``" not in text] == []


@pytest.fixture(scope="module")
def started(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Start every benchmark this session selected (``-k`` runs only those), all at once."""
    wanted = {
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_quick_run_writes_documented_keys"
    }
    folder = tmp_path_factory.mktemp("bench_quick")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    runs: dict[str, Started] = {}
    try:
        for name in DOCUMENTED_KEYS:
            if name not in wanted or _missing(name):
                continue
            output, log_path = folder / f"{name}.json", folder / f"{name}.log"
            log = log_path.open("w", encoding="utf-8")
            command = [sys.executable, str(BENCH / f"{name}.py"), "--quick", "--json", str(output)]
            process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
            runs[name] = Started(process, output, log_path, log)
        yield runs
    finally:
        for run in runs.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()
            run.log.close()


@pytest.mark.parametrize("name", _params())
def test_quick_run_writes_documented_keys(name: str, started: dict[str, Started]) -> None:
    run = started[name]
    try:
        code = run.process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait()
        code = None
    run.log.flush()
    tail = "\n".join(run.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
    assert code == 0, f"{name} --quick exited {code}:\n{tail}"
    figures = json.loads(run.output.read_text(encoding="utf-8"))
    assert figures["machine"]["cores"] >= 1
    missing = [key for key in DOCUMENTED_KEYS[name] if figures.get(key) in (None, {}, [])]
    assert missing == [], f"{name}: documented JSON keys missing or empty: {missing}"
