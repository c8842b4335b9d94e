"""bench/bench_gpu.py and bench/gpu_session.sh run end to end at toy sizes (on the CPU here), and
report every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_gpu  # noqa: E402


def test_a_gpu_runs_the_compiled_configurations_last_and_a_cpu_only_when_they_are_named() -> None:
    on_gpu = bench_gpu.configs(quick=False, cuda=True)
    assert [c.name for c in on_gpu] == [
        "spanet_b1024",
        "spanet_b4096",
        "wide_b4096",
        "spanet_b1024_cudagraphs",
        "spanet_b1024_compile",
    ]
    assert [(c.batch_size, c.compile, c.cudagraphs) for c in on_gpu[3:]] == [
        (1024, True, True),
        (1024, True, False),
    ]
    assert on_gpu[3].options == on_gpu[4].options == bench_gpu.SPANET_TTBAR
    assert [c.name for c in bench_gpu.configs(quick=True, cuda=False)] == [
        "spanet_b1024",
        "spanet_b4096",
        "wide_b4096",
    ]
    named = bench_gpu.configs(quick=True, cuda=False, named={"spanet_b1024_cudagraphs", "wide_b4096"})
    assert [(c.name, c.batch_size) for c in named] == [("wide_b4096", 512), ("spanet_b1024_cudagraphs", 256)]


def test_the_training_split_is_a_whole_number_of_every_configurations_batches() -> None:
    """No short last batch: a static-shape compiled run would compile for it inside its window."""
    assert bench_gpu.whole_batches(1_000_000, bench_gpu.configs(quick=False, cuda=True)) == 1_000_286
    assert round(0.95 * 1_000_286) == 232 * 4096  # 928 batches of 1024, 232 of 4096
    assert bench_gpu.whole_batches(2_000, bench_gpu.configs(quick=True, cuda=False)) == 2_156  # 4 x 512


def test_the_cudagraphs_configuration_turns_on_inductors_cuda_graphs_for_its_run_only() -> None:
    import torch._inductor.config as inductor

    cudagraphs, plain = bench_gpu.configs(
        quick=True, cuda=True, named={"spanet_b1024_cudagraphs", "spanet_b1024"}
    )[::-1]
    assert inductor.triton.cudagraphs is False
    with bench_gpu.inductor_settings(cudagraphs):
        assert inductor.triton.cudagraphs is True
    with bench_gpu.inductor_settings(plain):
        assert inductor.triton.cudagraphs is False
    assert inductor.triton.cudagraphs is False


def test_each_compiled_configuration_compiles_afresh_not_from_the_graphs_of_the_one_before() -> None:
    """Dynamo reuses a graph compiled for ``network_losses`` in any later torch.compile of it whose
    guards pass (a new network of the same options does): spanet_b1024_compile would time the
    CUDA graphs compiled for spanet_b1024_cudagraphs, with no compile of its own."""
    import functools

    import torch

    compiles: list[int] = []

    def backend(graph, inputs):
        compiles.append(1)
        return graph.forward

    def losses(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return network(x).relu().sum()

    def compiled_run() -> None:  # what each training run does: a new network, compiled anew
        network = torch.nn.Linear(3, 2)
        torch.compile(functools.partial(losses, network), backend=backend, dynamic=False)(torch.ones(4, 3))

    cudagraphs, plain, eager = bench_gpu.configs(
        quick=True, cuda=True, named={"spanet_b1024_cudagraphs", "spanet_b1024_compile", "spanet_b1024"}
    )[::-1]
    compiled_run()
    compiled_run()
    assert len(compiles) == 1  # the hazard: the second run replays the first run's graph
    for config in (cudagraphs, plain):
        assert config.compile
        with bench_gpu.inductor_settings(config):
            compiled_run()
    assert len(compiles) == 3
    with bench_gpu.inductor_settings(eager):  # an eager configuration leaves the cache alone
        compiled_run()
    assert len(compiles) == 3
    torch._dynamo.reset()


def test_the_window_records_what_the_run_compiled_and_its_precision(tmp_path: Path) -> None:
    """A compile that fails at the first compiled step leaves the run training eagerly (one line on
    a console the benchmark does not show): the figures of a compiled configuration must say so.
    The precision is the trainer's, not the one the benchmark expects the default to choose."""
    from types import SimpleNamespace

    import torch

    window = bench_gpu.timing_callback(0.0, 0, tmp_path / "window.ckpt")
    trainer = SimpleNamespace(save_checkpoint=lambda path: None, should_stop=False, precision="16-mixed")
    module = SimpleNamespace(device=torch.device("cpu"), compile_mode="off")
    batch = SimpleNamespace(batch_size=8)
    window.on_train_batch_start(trainer, module, batch, 0)
    window.on_train_batch_end(trainer, module, None, batch, 0)
    figures = window.figures()
    assert trainer.should_stop and (figures["compile_mode"], figures["precision"]) == ("off", "16-mixed")


def test_the_peak_gpu_memory_is_the_windows_not_that_of_the_validation_after_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Lightning runs a validation after a callback sets ``should_stop``, before ``train``
    returns: torch's peak allocation read once the run was over was that validation's whenever it
    needed more than the training steps, not the window's."""
    import torch

    allocated = {"peak": 0}

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            self.at = 0.0

        def record(self) -> None:
            pass

        def elapsed_time(self, other: Event) -> float:
            return 2.0

    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: allocated.update(peak=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: allocated["peak"])
    monkeypatch.setattr(torch.cuda, "Event", Event)
    window = bench_gpu.timing_callback(0.0, 0, tmp_path / "window.ckpt")
    trainer = SimpleNamespace(save_checkpoint=lambda path: None, should_stop=False, precision="bf16-mixed")
    module = SimpleNamespace(device=torch.device("cuda"), compile_mode="off")
    batch = SimpleNamespace(batch_size=8)
    window.on_train_batch_start(trainer, module, batch, 0)
    allocated["peak"] = 300 * 2**20  # the training step
    window.on_train_batch_end(trainer, module, None, batch, 0)
    allocated["peak"] = 900 * 2**20  # the validation Lightning runs once the window has closed
    figures = window.figures()
    assert figures["peak_gpu_memory_allocated_mib"] == 300 and figures["step_device_ms"] == 2.0


def test_a_failed_run_stops_its_gpu_sampler(tmp_path: Path, monkeypatch) -> None:
    """A configuration whose training fails (a compile error, say) is recorded and the next one
    runs: its sampler thread must not go on sampling (nvidia-smi every 200 ms) through them."""
    import pytest
    import torch

    import spanet_lite.training.run as run_module

    samplers: list[bench_gpu.GpuSampler] = []

    class Sampler(bench_gpu.GpuSampler):
        def start(self) -> bench_gpu.GpuSampler:
            self.stopped = False
            samplers.append(self)
            return self

        def stop(self) -> None:
            self.stopped = True

    def failing_train(*args, **kwargs):
        raise RuntimeError("the run failed")

    monkeypatch.setattr(bench_gpu, "GpuSampler", Sampler)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(run_module, "train", failing_train)
    config = bench_gpu.configs(quick=True, cuda=False)[0]
    with pytest.raises(RuntimeError, match="the run failed"):
        files = (tmp_path / "e.yaml", tmp_path / "t.h5", tmp_path / "h.h5")
        bench_gpu.run_config(config, tmp_path, *files, 0.5, True)
    assert len(samplers) == 1 and samplers[0].stopped


def test_cudagraph_skips_counts_what_inductor_reports_when_it_declines_a_graph() -> None:
    from torch._inductor.cudagraph_utils import log_cudagraph_skip_and_bump_counter

    before = bench_gpu.cudagraph_skips()
    log_cudagraph_skip_and_bump_counter("skipping cudagraphs due to a test")  # inductor's own reporter
    assert bench_gpu.cudagraph_skips() == before + 1



DEVICE_IMAGE = {"torch", "lightning", "h5py", "rich", "matplotlib", "onnx", "pytest", "numpy", "yaml"}
"""What the GPU machines' image holds besides the standard library (torch 2.11, lightning, h5py,
rich, matplotlib, onnx, pytest, and numpy and PyYAML with them): no package registry there."""


def _imports(path: Path) -> set[str]:
    """The top-level modules ``path`` imports, except inside a ``try`` (an optional module with
    a fallback, such as bench_gpu's pynvml before nvidia-smi)."""
    import ast

    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Try):
            for part in (*node.handlers, *node.orelse, *node.finalbody):
                visit(part)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_what_the_gpu_session_runs_imports_only_what_the_gpu_machines_have() -> None:
    """The session listed a test of tests/test_decoding.py, whose module imports hypothesis: on
    the GPU image (no hypothesis) pytest would have stopped at collecting it, and none of the
    session's CUDA tests would have run. Every test module the script names, its helpers, the
    conftest and the benchmark scripts import nothing beyond the image."""
    import re

    script = (ROOT / "bench" / "gpu_session.sh").read_text()
    files = {ROOT / name for name in re.findall(r"\btests/\w+\.py\b", script)}
    assert {f.name for f in files} >= {"test_step_sync.py", "test_device_data.py"}
    files |= {ROOT / "tests" / "conftest.py", ROOT / "bench" / "bench_gpu.py", ROOT / "bench" / "_common.py"}
    seen: set[Path] = set()
    while files:
        path = files.pop()
        seen.add(path)
        for name in _imports(path):
            helper = path.parent / f"{name}.py"
            if helper.exists():
                if helper not in seen:
                    files.add(helper)
                continue
            allowed = name in sys.stdlib_module_names or name in DEVICE_IMAGE | {"spanet_lite"}
            assert allowed, (path.name, name)
    assert any(p.name.startswith("_") for p in seen)  # the helpers were followed


def test_the_gpu_session_script_dry_runs_on_the_cpu_and_reports_every_figure(tmp_path: Path) -> None:
    """bench/gpu_session.sh, what a short GPU session runs in one call (the machine, the CUDA
    tests, bench_gpu.py), here at toy sizes on the CPU."""
    out = tmp_path / "session"
    env = {**os.environ, "PYTHON": sys.executable, "QUICK": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_session.sh"), str(out)],
        cwd=ROOT, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = ["bench_gpu.json", "bench_gpu.txt", "machine.txt", "pytest.txt"]
    assert sorted(p.name for p in out.iterdir()) == files
    assert "cuda False" in (out / "machine.txt").read_text()
    lines = done.stdout.splitlines()
    assert lines[1].startswith("tests (rc 0, 124 or 137 = time limit): ") and " passed" in lines[1]
    printed = [json.loads(line) for line in lines if line.startswith('{"')]
    assert [next(iter(c)) for c in printed] == [
        "predict_host_load_s", "spanet_b1024", "spanet_b4096", "wide_b4096"]

    figures = json.loads((out / "bench_gpu.json").read_text())
    assert figures["device"] == "cpu" and figures["training_events"] == 2156 and figures["finished"]
    assert min(figures[f"predict_host_{part}_s"] for part in ("load", "validate", "read")) >= 0
    assert figures["predict_host_ceiling_events_per_s"] > 0 and "predict_host_error" not in figures
    assert set(figures["configs"]) == {"spanet_b1024", "spanet_b4096", "wide_b4096"}
    for config in figures["configs"].values():
        assert config["train_events_per_s"] > 0 and config["train_events_per_cpu_s"] > 0
        assert config["timed_steps"] >= 1
        assert config["step_host_ms"] <= config["step_wall_ms"] * 1.01
        assert ("steady_train_events_per_s" in config) == (config["timed_steps"] >= 2)
        assert config.get("steady_train_events_per_s", 1) > 0 and config["to_window_s"] >= 0
        assert 0.0 <= config["heldout_event_purity"] <= 1.0
        assert config["predict_events"] == 500 and config["predict_events_per_s"] > 0
        assert config["predict_batch_size"] == 1024  # spanet-predict's default; 16,384 on a GPU
        assert config["step_host_cpu_ms"] > 0 and "step_device_busy_ms" not in config  # no GPU: no busy
    first = figures["configs"]["spanet_b1024"]  # and only the first predicts on the whole training file
    assert first["predict_training_events"] == 2156 and first["predict_training_events_per_s"] > 0
    others = [figures["configs"][name] for name in ("spanet_b4096", "wide_b4096")]
    assert not any("predict_training_events" in config for config in others)


def test_each_part_of_the_gpu_session_ends_at_its_time_limit_even_if_it_takes_sigterm_as_a_stop(
    tmp_path: Path,
) -> None:
    """A training run answers SIGTERM by stopping cleanly and returning, and bench_gpu then starts
    its next configuration: the part must be killed after its limit, or the session's one device
    command runs out before the summary is printed."""
    import time

    stub = tmp_path / "python"  # the machine line answers; every other part ignores SIGTERM
    stub.write_text(
        '#!/usr/bin/env bash\nif [[ "$1" == "-c" ]]; then echo "torch 0 cuda False"; exit 0; fi\n'
        'trap "" TERM\nsleep 60\n'
    )
    stub.chmod(0o755)
    out = tmp_path / "session"
    limits = {"TESTS_LIMIT": "1", "BENCH_LIMIT": "1", "KILL_AFTER": "1"}
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_session.sh"), str(out)],
        cwd=ROOT, env={**os.environ, "PYTHON": str(stub), **limits}, capture_output=True, text=True,
        timeout=50,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1].startswith("tests (rc 137, 124 or 137 = time limit)")
    assert lines[2].startswith("bench_gpu (rc 137, 124 or 137 = time limit)")


def test_the_gpu_session_parts_limits_add_up_to_less_than_one_device_command() -> None:
    """The device runs one command for at most 600 s. The parts' limits with their kill delays
    (150 + 20 for the tests, 390 + 20 for the benchmark, 30 + 5 for nvidia-smi) and an unlimited
    torch import came to more than that: a session whose parts all ran to their limits was cut
    before its summary. Every command that can hang runs under ``timeout``, and the worst case
    leaves a margin for bash itself."""
    import re

    script = (ROOT / "bench" / "gpu_session.sh").read_text()
    defaults = {name: int(value) for name, value in re.findall(r"^(\w+)=\$\{\w+:-(\d+)\}$", script, re.M)}

    def seconds(word: str) -> int:
        return defaults[word.strip('"${}')] if word.startswith('"$') else int(word)

    worst = 0
    for line in script.splitlines():
        command = line.split("||")[0].strip()
        if re.search(r'(^|\s)("\$python"|nvidia-smi)(\s|$)', command):
            found = re.match(r"timeout -k (\S+) (\S+) ", command)
            assert found, f"not under timeout: {command}"
            worst += seconds(found[1]) + seconds(found[2])
    assert defaults and worst <= 590, worst


def test_the_gpu_sampler_skips_a_reply_without_numbers_and_samples_on(monkeypatch) -> None:
    """nvidia-smi answers "[N/A]" now and then (and times out under load): the sampler used to stop
    at the first such reply, leaving a utilisation figure from the first few samples of a run."""
    replies = iter(["[N/A], 1200\n", "57, 1300\n", "[N/A], [N/A]\n", "63, 1400\n"])

    def fake_run(command, **kwargs):
        reply = next(replies, None)
        if reply is None:
            raise FileNotFoundError("nvidia-smi")  # ends the sampler once the replies run out
        return subprocess.CompletedProcess(command, 0, stdout=reply)

    monkeypatch.setitem(sys.modules, "pynvml", None)  # the nvidia-smi path, with or without pynvml
    monkeypatch.setattr(bench_gpu.subprocess, "run", fake_run)
    sampler = bench_gpu.GpuSampler()
    sampler._stop = SimpleNamespace(wait=lambda seconds: False)  # no pauses, in this thread
    sampler._run()
    figures = sampler.window(0.0, float("inf"))
    assert [s[1] for s in sampler.samples] == [57.0, 63.0] and sampler.source == "nvidia-smi"
    assert (figures["gpu_utilisation_percent"], figures["gpu_samples_skipped"]) == (60.0, 2)


def test_the_gpu_sampler_gives_up_on_a_gpu_that_never_reports_utilisation(monkeypatch) -> None:
    """A MIG slice answers "[N/A]" for ever: sampling stops, and the figure is None, not 0 %."""
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="[N/A], 900\n")

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(bench_gpu.subprocess, "run", fake_run)
    sampler = bench_gpu.GpuSampler(give_up_after=3)
    sampler._stop = SimpleNamespace(wait=lambda seconds: False)
    sampler._run()
    assert len(calls) == 3 and sampler.window(0.0, float("inf"))["gpu_utilisation_percent"] is None
