"""Training and inference speed on one GPU, with the accuracy reached in a fixed wall clock.

One prepared command (under 5 minutes on one H200-class GPU)::

    PYTHONPATH=. python bench/bench_gpu.py --json bench_gpu.json

1. generates about 1,000,000 all-hadronic ttbar events for training (``spanet-generate
   ttbar_allhad``; 1,000,286, so that the 95 % training split is a whole number of batches of
   1024 and 4096: see :func:`whole_batches`) and 100,000 held-out ones (another seed);
2. trains, each for a fixed wall clock (``--seconds``, default 25) measured from the first step
   after a warm-up, with this package's defaults on the device (``dataset_mode: auto``, which
   keeps the data on the GPU; bf16 autocast; fused AdamW; TF32):

   * ``spanet_b1024`` / ``spanet_b4096``: the options of SPANet's own
     ``full_hadronic_ttbar/example.json`` (the values in :data:`SPANET_TTBAR`) at batch 1024
     and 4096;
   * ``wide_b4096``: a 128-wide network with 6 encoder layers, batch 4096;
   * ``spanet_b1024_cudagraphs``: the first one with ``compile: true`` and inductor's CUDA
     graphs on (``triton.cudagraphs``, what ``mode="reduce-overhead"`` turns on; CUDA only):
     each width bucket's compiled step is replayed as one graph, without a kernel launch per
     operation. The package does not turn this on itself yet; this configuration measures
     whether it should. ``cudagraph_skips`` counts the graphs inductor declined to capture (0
     when every step was captured);
   * ``spanet_b1024_compile``: ``compile: true`` alone (CUDA only), to measure what
     ``torch.compile`` brings (``compile: auto`` stays eager on CUDA until this says otherwise);

   The two compiled configurations run last, so that a slow or failing compile costs only
   them, CUDA graphs first. On the CPU they run only when named in ``--only`` (a dry run of
   this script's code: there are no CUDA graphs on a CPU, and compiling takes minutes);

3. per configuration, prints and stores: training events/s over the window (whole epochs,
   validation included; also per CPU-second of this process), steps, mean GPU utilisation over
   the window (NVML when ``pynvml`` is importable, else ``nvidia-smi`` sampled every 200 ms),
   peak GPU memory (torch's allocator and ``nvidia-smi``), per step the wall time, the host
   time (Python issuing the step: from the batch-start to the batch-end hook) and the device
   time (CUDA events around the same span), held-out event purity after the window
   (``run.evaluate``), ``predict`` events/s (``write_predictions``, what ``spanet-predict``
   runs, file written) on the 100k held-out events at ``predict_batch_size`` events per batch
   (16,384 on a GPU: ``spanet-predict -bs 16384``, whose default is 1024), and ``to_window_s``,
   the seconds from the start of ``train`` to the window (compiling included). The first
   configuration also predicts on the whole training file (about 1M events, the issue's
   end-to-end predict target): ``predict_training_events_per_s``, file written.
   The host/device split by a second route: ``step_host_cpu_ms``, this process's CPU time per
   step in the window, and ``step_device_busy_ms``, the step's wall time times the GPU's mean
   utilisation (the share of time a kernel was running), so that a step the host holds up
   shows a device time well below its wall time (the CUDA events above bracket the same span
   as the host timer and include the GPU's idle time).
   ``steady_train_events_per_s`` (and ``step_wall_ms_median``) come from the median time from
   one step's start to the next: what a long run settles to, without the epoch ends
   (validation) and without the one compile a static-shape run does for the short last batch of
   its first epoch, which can land inside the window.

Once, before the configurations: ``predict_host_load_s``, ``predict_host_validate_s`` and
``predict_host_read_s``, what ``write_predictions`` spends on the host alone for the held-out
file (reading its INPUTS into memory, checking them, reading every batch), and
``predict_host_ceiling_events_per_s``, the events/s predict cannot pass on this machine however
fast the GPU (decoding runs on the GPU).

``--json PATH`` is rewritten after every configuration, so that a session cut short still
leaves the figures of the configurations it finished.

The CPU comparison with SPANet v2 itself (same options, same data, both tools timed alike) is
``bench/bench_cpu.py``.

``--quick`` runs the same code on the CPU or GPU at toy sizes (2,000 training events, 0.5 s
windows, batches of 256 and 512, 16-wide one-layer networks) so that CI checks that the
benchmark works; its numbers mean nothing.
JSON: ``{"machine", "device", "configs": {name: {...}}}``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

REPO = Path(__file__).resolve().parents[1]

SPANET_TTBAR = _common.SPANET_TTBAR  # batch size, epochs and workers are set per configuration
WIDE: dict[str, Any] = {
    **SPANET_TTBAR,
    "hidden_dim": 128,
    "num_encoder_layers": 6,
    "num_branch_encoder_layers": 2,
    "num_branch_embedding_layers": 2,
}


PREDICT_BATCH = 16384
"""``write_predictions``' batch on a GPU: large, so that launching kernels is not what it waits on."""


@dataclass
class Config:
    name: str
    options: dict[str, Any]
    batch_size: int
    compile: bool = False
    cudagraphs: bool = False


QUICK_SHRINK: dict[str, Any] = {
    "hidden_dim": 16,
    "num_embedding_layers": 1,
    "num_encoder_layers": 1,
    "num_branch_embedding_layers": 1,
    "num_branch_encoder_layers": 1,
    "num_detector_layers": 1,
}
"""``--quick`` checks that the benchmark runs; it shrinks every network so that it takes seconds."""


def configs(quick: bool, cuda: bool, named: set[str] | None = None) -> list[Config]:
    """The configurations to run, in order: those named (all by default), the compiled ones
    on the CPU only when named."""
    if quick:
        chosen = [
            Config("spanet_b1024", {**SPANET_TTBAR, **QUICK_SHRINK}, 256),
            Config("spanet_b4096", {**SPANET_TTBAR, **QUICK_SHRINK}, 512),
            Config("wide_b4096", {**WIDE, **QUICK_SHRINK}, 512),
        ]
    else:
        chosen = [
            Config("spanet_b1024", SPANET_TTBAR, 1024),
            Config("spanet_b4096", SPANET_TTBAR, 4096),
            Config("wide_b4096", WIDE, 4096),
        ]
    first = chosen[0]
    chosen += [  # CUDA graphs first: the likelier way to the targets, should time run short
        Config("spanet_b1024_cudagraphs", first.options, first.batch_size, compile=True, cudagraphs=True),
        Config("spanet_b1024_compile", first.options, first.batch_size, compile=True),
    ]
    if named is not None:
        return [c for c in chosen if c.name in named]
    return [c for c in chosen if cuda or not c.compile]


# ------------------------------------------------------------------ GPU sampling
@dataclass
class GpuSampler:
    """Samples GPU utilisation (%) and memory used (MiB) in a thread, with timestamps."""

    index: int = 0
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    source: str = "none"
    skipped: int = 0
    """nvidia-smi replies without numbers, left out of the mean."""
    give_up_after: int = 25
    """Replies without numbers in a row (5 s) after which sampling stops."""

    def start(self) -> GpuSampler:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "nvml"
            while not self._stop.wait(0.1):
                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                self.samples.append((time.perf_counter(), float(util.gpu), memory.used / 2**20))
            return
        except Exception:  # no pynvml, or no NVML: fall back to nvidia-smi
            pass
        query = ["nvidia-smi", f"--id={self.index}", "--query-gpu=utilization.gpu,memory.used"]
        failed_in_a_row = 0
        while not self._stop.wait(0.2):
            try:
                out = subprocess.run(
                    [*query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5
                ).stdout
                util, used = (float(x) for x in out.strip().splitlines()[0].split(","))
            except OSError:  # no nvidia-smi
                return
            except (ValueError, IndexError, subprocess.SubprocessError):
                # One "[N/A]" or a slow reply under load skips a sample; sampling on stops only
                # when nvidia-smi never answers with numbers (e.g. a MIG slice: always "[N/A]").
                self.skipped += 1
                failed_in_a_row += 1
                if failed_in_a_row >= self.give_up_after:
                    return
                continue
            failed_in_a_row = 0
            self.source = "nvidia-smi"
            self.samples.append((time.perf_counter(), util, used))

    def window(self, start: float, stop: float) -> dict[str, Any]:
        inside = [s for s in self.samples if start <= s[0] <= stop]
        if not inside:
            return {
                "gpu_utilisation_percent": None,
                "gpu_memory_used_mib_max": None,
                "gpu_sampler": self.source,
            }
        return {
            "gpu_utilisation_percent": round(sum(s[1] for s in inside) / len(inside), 1),
            "gpu_memory_used_mib_max": round(max(s[2] for s in inside)),
            "gpu_sampler": self.source,
            "gpu_samples": len(inside),
            "gpu_samples_skipped": self.skipped,
        }


# -------------------------------------------------------------- timing callback
def timing_callback(seconds: float, warm_steps: int, checkpoint: Path):
    """A Lightning callback that times a window of training steps and then stops the run."""
    import lightning.pytorch as pl
    import torch

    class Window(pl.Callback):
        def __init__(self) -> None:
            self.steps = 0
            self.events = 0
            self.start: float | None = None
            self.stop: float | None = None
            self.cpu_start = self.cpu_stop = 0.0
            self.host: list[float] = []
            self.starts: list[float] = []
            self.marks: list[tuple[Any, Any]] = []
            self._t = 0.0
            self._event: Any = None
            self.cuda = False
            self.compile_mode: str | None = None
            self.precision: str | None = None
            self.peak_allocated: int | None = None
            """torch's peak allocation over the window, read when it closes: Lightning validates
            after ``should_stop`` is set, and that validation's allocations are not the window's."""

        def on_train_batch_start(self, trainer, module, batch, index) -> None:
            self.cuda = module.device.type == "cuda"
            if self.steps == warm_steps and self.start is None:
                if self.cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                self.start = time.perf_counter()
                self.cpu_start = time.process_time()
            self._t = time.perf_counter()
            if self.start is not None:
                self.starts.append(self._t)
            if self.start is not None and self.cuda:
                self._event = torch.cuda.Event(enable_timing=True)
                self._event.record()

        def on_train_batch_end(self, trainer, module, outputs, batch, index) -> None:
            self.steps += 1
            if self.start is None:
                return
            self.host.append(time.perf_counter() - self._t)
            if self.cuda:
                end = torch.cuda.Event(enable_timing=True)
                end.record()
                self.marks.append((self._event, end))
            self.events += batch.batch_size
            if time.perf_counter() - self.start >= seconds:
                if self.cuda:
                    torch.cuda.synchronize()
                    self.peak_allocated = torch.cuda.max_memory_allocated()
                self.stop = time.perf_counter()
                self.cpu_stop = time.process_time()
                # "off" in a compiled configuration: compiling failed and the run trained eagerly.
                self.compile_mode = getattr(module, "compile_mode", None)
                self.precision = str(trainer.precision)  # what trained, not what was assumed
                trainer.save_checkpoint(checkpoint)
                trainer.should_stop = True

        def figures(self) -> dict[str, Any]:
            assert self.start is not None and self.stop is not None, "the window never closed"
            window = self.stop - self.start
            steps = len(self.host)
            result: dict[str, Any] = {
                "train_events_per_s": round(self.events / window),
                # CPU time of this process: steadier than wall time on a shared machine.
                "train_events_per_cpu_s": round(self.events / max(self.cpu_stop - self.cpu_start, 1e-9)),
                "step_host_cpu_ms": round(1000 * (self.cpu_stop - self.cpu_start) / steps, 3),
                "window_s": round(window, 2),
                "timed_steps": steps,
                "step_wall_ms": round(1000 * window / steps, 3),
                "step_host_ms": round(1000 * sum(self.host) / steps, 3),
                "step_device_ms": None,
                "compile_mode": self.compile_mode,
                "precision": self.precision,
            }
            # From one step's start to the next: the median leaves out the epoch ends
            # (validation) and a compile for a new shape (the short last batch of an epoch).
            gaps = sorted(b - a for a, b in zip(self.starts, self.starts[1:]))
            if gaps:
                median = gaps[len(gaps) // 2]
                result["step_wall_ms_median"] = round(1000 * median, 3)
                result["steady_train_events_per_s"] = round(self.events / steps / median)
            if self.marks:
                device = sum(a.elapsed_time(b) for a, b in self.marks) / len(self.marks)
                result["step_device_ms"] = round(device, 3)
            if self.peak_allocated is not None:
                result["peak_gpu_memory_allocated_mib"] = round(self.peak_allocated / 2**20)
            return result

    return Window()


# ---------------------------------------------------------------------- pieces
def generate(events: int, seed: int, output: Path, event_file: Path | None) -> float:
    from spanet_lite.cli.generate import main

    argv = ["ttbar_allhad", "--events", str(events), "--seed", str(seed), "--output", str(output)]
    argv += ["--quiet", "--overwrite"]
    if event_file is not None:
        argv += ["--event-file-output", str(event_file)]
    started = time.perf_counter()
    if main(argv) != 0:
        raise SystemExit(f"spanet-generate failed for {output}")
    return time.perf_counter() - started


def predict_host_seconds(event_file: Path, heldout: Path, batch_size: int) -> dict[str, float]:
    """The host's share of ``write_predictions`` on the held-out file, with no network: reading its
    INPUTS and weights into memory once (``schema.in_memory``: decompressing them), checking them
    (``validate_h5``), reading every batch (``reader.read_inputs``) and cutting it to its kept slots
    (``device_inputs``, here without the copy to a device). A GPU shortens none of it,
    so predict's events/s on this machine cannot pass ``predict_host_ceiling_events_per_s``
    whatever the network costs."""
    from spanet_lite.config import load_event_spec
    from spanet_lite.dataset import reader, schema
    from spanet_lite.evaluation.inference import device_inputs

    spec = load_event_spec(event_file)
    with schema.open_h5(heldout) as source:
        started = time.perf_counter()
        with schema.in_memory(source, spec, inputs_only=True) as file:
            copied = time.perf_counter()
            report = schema.validate_h5(file, spec, source=str(heldout), inputs_only=True)
            validated = time.perf_counter()
            for start, stop in reader.row_blocks(report.num_events, batch_size):
                inputs = reader.read_inputs(file, spec, start, stop)
                device_inputs(spec, inputs.features, inputs.masks, inputs.pairs, "cpu")
            read = time.perf_counter()
    return {
        "predict_host_load_s": round(copied - started, 3),
        "predict_host_validate_s": round(validated - copied, 3),
        "predict_host_read_s": round(read - validated, 3),
        "predict_host_ceiling_events_per_s": round(report.num_events / max(read - started, 1e-9)),
    }


def run_config(
    config: Config, work: Path, event_file: Path, training: Path, heldout: Path, seconds: float, quick: bool,
    *, predict_training: bool = False,
) -> dict[str, Any]:
    """Train ``config`` for a window of ``seconds``, then evaluate and predict with it (module
    docstring); ``predict_training`` also times predict on the whole training file."""
    import torch

    from spanet_lite.config.options import Options
    from spanet_lite.evaluation.predict import write_predictions
    from spanet_lite.evaluation.run import load_run
    from spanet_lite.training.run import train

    cuda = torch.cuda.is_available()
    options = Options(
        **{
            **config.options,
            "event_info_file": str(event_file),
            "training_file": str(training),
            "batch_size": config.batch_size,
            "epochs": 1000,
            "num_dataloader_workers": 0,
            "compile": config.compile,
            "seed": 1,
        }
    )
    checkpoint = work / f"{config.name}.ckpt"
    window = timing_callback(seconds, 1 if quick else (40 if config.compile else 20), checkpoint)
    sampler = GpuSampler().start() if cuda else None
    skips_before = cudagraph_skips()
    started = time.perf_counter()
    try:
        with inductor_settings(config):
            result = train(
                options,
                gpus=1 if cuda else 0,
                log_dir=work / "runs",
                name=config.name,
                quiet=True,
                callbacks=[window],
            )
        total = time.perf_counter() - started  # the run alone, not the sampler's last nvidia-smi
    finally:  # a failed run's sampler would go on calling nvidia-smi through the next runs
        if sampler is not None:
            sampler.stop()
    figures: dict[str, Any] = {
        "batch_size": config.batch_size,
        "compile": config.compile,
        **window.figures(),
        "run_s": round(total, 1),
        "to_window_s": round(window.start - started, 1) if window.start is not None else None,
    }
    if config.cudagraphs:
        figures["cudagraph_skips"] = cudagraph_skips() - skips_before
    if sampler is not None and window.start is not None and window.stop is not None:
        figures.update(sampler.window(window.start, window.stop))
        busy = figures.get("gpu_utilisation_percent")
        if busy is not None:
            figures["step_device_busy_ms"] = round(figures["step_wall_ms"] * busy / 100, 3)
    if result.run_dir is None:
        raise SystemExit(f"{config.name}: training left no run directory")
    run = load_run(result.run_dir, checkpoint=checkpoint, device="cuda" if cuda else "cpu")
    figures["parameters"] = sum(p.numel() for p in run.network.parameters())
    with recorded(figures, "heldout_error"):
        # masses=[]: only the network's purity is wanted, not the chi-square baseline beside it
        # (on 100,000 held-out events that search cost ~50 s per configuration before it was
        # made ~10x faster, and is still seconds of the session's few minutes)
        purity = run.evaluate(heldout, batch_size=4096, masses=[])["event_purity"]
        figures["heldout_event_purity"] = round(float(purity), 4)
    with recorded(figures, "predict_error"):
        output = work / f"{config.name}_predictions.h5"
        if cuda:
            torch.cuda.synchronize()
        figures["predict_batch_size"] = PREDICT_BATCH if cuda else 1024
        started = time.perf_counter()
        events = write_predictions(run, heldout, output, batch_size=figures["predict_batch_size"])
        figures["predict_events_per_s"] = round(events / (time.perf_counter() - started))
        figures["predict_events"] = events
        output.unlink()
    if predict_training:
        with recorded(figures, "predict_training_error"):
            output = work / f"{config.name}_training_predictions.h5"
            started = time.perf_counter()
            events = write_predictions(run, training, output, batch_size=figures["predict_batch_size"])
            figures["predict_training_events_per_s"] = round(events / (time.perf_counter() - started))
            figures["predict_training_events"] = events
            output.unlink()
    return figures


def whole_batches(about: int, chosen: list[Config]) -> int:
    """The fewest events, from ``about`` up, whose training split is a whole number of batches
    of every configuration: no short last batch, for which a static-shape compiled run would
    compile once more, in the middle of its window (a real run pays that once)."""
    from spanet_lite.dataset.selection import split_rows

    split = {c.options.get("train_validation_split", 0.95) for c in chosen}
    batch = math.lcm(*(c.batch_size for c in chosen)) if chosen else 1
    if len(split) != 1:
        return about
    (fraction,) = split
    events = about
    while round(fraction * events) % batch:
        events += 1
    train, _ = split_rows(
        events, dataset_limit=1.0, train_validation_split=fraction, randomization_seed=0,
        has_validation_file=False,
    )
    assert len(train) % batch == 0, "the training split is not counted as spanet_lite counts it"
    return events


def inductor_settings(config: Config) -> contextlib.AbstractContextManager[object]:
    """Inductor's CUDA graphs for a ``cudagraphs`` configuration (read when the first compiled
    step compiles, inside ``train``); nothing for the others.

    A compiled configuration starts from an empty dynamo cache: dynamo keeps compiled graphs per
    code object (``network_losses``) and hands them to any later ``torch.compile`` with equal
    arguments whose guards pass, and a network of the same options in a new run passes them. The
    plain ``compile`` run would otherwise replay the graphs compiled (with CUDA graphs) for the
    ``cudagraphs`` run before it, and time no compile of its own."""
    if not config.compile:
        return contextlib.nullcontext()
    import torch._dynamo

    torch._dynamo.reset()
    if not config.cudagraphs:
        return contextlib.nullcontext()
    import torch._inductor.config

    return torch._inductor.config.patch({"triton.cudagraphs": True})


def cudagraph_skips() -> int:
    """How many compiled graphs inductor has so far declined to capture as CUDA graphs."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


@contextlib.contextmanager
def recorded(figures: dict[str, Any], key: str) -> Iterator[None]:
    """Record a failure under ``key`` and go on: one GPU session must bring back every figure it can."""
    try:
        yield
    except Exception as error:
        figures[key] = f"{type(error).__name__}: {error}"[:500]
        traceback.print_exc()


def main() -> None:
    parser = _common.parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="training window per configuration")
    parser.add_argument("--events", type=int, default=None, help="training events to generate")
    parser.add_argument("--only", default=None, help="comma-separated configuration names")
    parser.add_argument("--batch-size", type=int, default=None, help="override every configuration's batch")
    parser.add_argument("--heldout", type=int, default=None, help="held-out events to generate")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    heldout_events = args.heldout or (500 if args.quick else 100_000)
    seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 25.0)
    chosen = configs(args.quick, cuda, set(args.only.split(",")) if args.only else None)
    if args.batch_size:
        chosen = [replace(c, batch_size=args.batch_size) for c in chosen]
    events = args.events or whole_batches(2_000 if args.quick else 1_000_000, chosen)
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    figures: dict[str, Any] = {"device": device, "quick": args.quick, "window_s": seconds, "configs": {}}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as directory:
        work = Path(directory)
        event_file, training, heldout = work / "ttbar.yaml", work / "train.h5", work / "heldout.h5"
        figures["generate_s"] = round(generate(events, 1, training, event_file), 1)
        generate(heldout_events, 2, heldout, None)
        figures["training_events"], figures["heldout_events"] = events, heldout_events
        with recorded(figures, "predict_host_error"):
            figures.update(predict_host_seconds(event_file, heldout, PREDICT_BATCH if cuda else 1024))
            print(json.dumps({k: v for k, v in figures.items() if k.startswith("predict_host")}), flush=True)
        for number, config in enumerate(chosen):
            gc.collect()  # the previous run's trainer, module and device-resident data
            if cuda:
                torch.cuda.empty_cache()
            figures["configs"][config.name] = {}
            with recorded(figures["configs"][config.name], "error"):
                figures["configs"][config.name] = run_config(
                    config, work, event_file, training, heldout, seconds, args.quick,
                    predict_training=number == 0,
                )
            print(json.dumps({config.name: figures["configs"][config.name]}), flush=True)
            if args.json is not None:
                _common.write_json(args.json, {**figures, "finished": False})
    columns = [
        "config",
        "train ev/s (steady)",
        "GPU util %",
        "step wall/host/device ms",
        "purity",
        "predict ev/s",
    ]
    rows = []
    for name, c in figures["configs"].items():
        if "error" in c:
            rows.append([name, c["error"][:60], "-", "-", "-", "-"])
            continue
        split = f"{c['step_wall_ms']:.1f} / {c['step_host_ms']:.1f} / {c['step_device_ms'] or '-'}"
        rows.append(
            [
                name,
                f"{c['train_events_per_s']} ({c.get('steady_train_events_per_s', '-')})",
                c.get("gpu_utilisation_percent", "-"),
                split,
                c.get("heldout_event_purity", "-"),
                c.get("predict_events_per_s", "-"),
            ]
        )
    figures["finished"] = True
    _common.report(f"bench_gpu on {device}", columns, rows, figures, args.json)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
