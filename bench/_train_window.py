"""Time a window of training steps of either SPANet v2 or spanet_lite, in the running interpreter.

``bench_cpu.py`` starts this script once per tool and round, in that tool's own Python, so that
both are timed by the same code: a Lightning callback that starts the clock after ``--warm``
training steps, stops it after ``--seconds`` and then ends the run. Time spent in validation
inside the window is taken out (and reported), so that the figure is training events per
second whatever the epoch length. The callback needs nothing but Lightning, which both tools
use (SPANet the ``pytorch_lightning`` name, spanet_lite ``lightning.pytorch``).

    python _train_window.py {spanet,spanet_lite} OPTIONS.json --seconds S --warm N \
        --log-dir DIR --out RESULT.json [--repo PATH]

SPANet is run through its own ``spanet.train.main`` with its options file unchanged (``-g 0``,
as its command line needs on a machine without a GPU); spanet_lite through :func:`train`, the
API behind ``spanet-train``, with ``gpus=0``. Nothing else is changed in either.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def window_callback(base: type, seconds: float, warm: int) -> Any:
    """A callback (subclass of ``base``, Lightning's ``Callback``) that times and then stops."""

    class Window(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.steps = 0
            self.events = 0
            self.start: float | None = None
            self.cpu_start = 0.0
            self.validation = 0.0
            self._validation_start: float | None = None
            self.result: dict[str, Any] | None = None

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            if self.start is None and self.steps == warm:
                self.start = time.perf_counter()
                self.cpu_start = time.process_time()

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int) -> None:
            self.steps += 1
            if self.start is None:
                return
            self.events += batch_size(batch)
            elapsed = time.perf_counter() - self.start
            if elapsed >= seconds and self.result is None:
                training = elapsed - self.validation
                self.result = {
                    "train_events_per_s": self.events / training,
                    "train_events_per_cpu_s": self.events / max(time.process_time() - self.cpu_start, 1e-9),
                    "timed_steps": self.steps - warm,
                    "timed_events": self.events,
                    "window_s": elapsed,
                    "validation_s_in_window": self.validation,
                    "step_ms": 1000 * training / (self.steps - warm),
                    "compile_mode": getattr(module, "compile_mode", None),  # spanet_lite only
                }
                trainer.should_stop = True

        def on_validation_start(self, trainer: Any, module: Any) -> None:
            if self.start is not None:
                self._validation_start = time.perf_counter()

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            if self._validation_start is not None:
                self.validation += time.perf_counter() - self._validation_start
                self._validation_start = None

    return Window()


def batch_size(batch: Any) -> int:
    """Events in a batch of either tool: the leading size of its first tensor."""
    if hasattr(batch, "batch_size"):
        return int(batch.batch_size)
    seen: list[Any] = [batch]
    while seen:
        item = seen.pop(0)
        if hasattr(item, "shape") and len(item.shape) > 0:
            return int(item.shape[0])
        if isinstance(item, dict):
            seen.extend(item.values())
        elif isinstance(item, (list, tuple)):
            seen.extend(item)
    raise TypeError(f"no tensor in a batch of type {type(batch).__name__}")


def run_spanet(options: Path, log_dir: Path, seconds: float, warm: int) -> dict[str, Any]:
    import pytorch_lightning as pl
    from spanet.train import main as spanet_main

    window = window_callback(pl.Callback, seconds, warm)
    original = pl.Trainer.__init__

    def with_window(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), window]
        original(self, *args, **kwargs)

    pl.Trainer.__init__ = with_window  # SPANet builds its Trainer inside main()
    spanet_main(
        event_file="",
        training_file="",
        validation_file="",
        options_file=str(options),
        checkpoint=None,
        state_dict=None,
        freeze_state_dict=False,
        log_dir=str(log_dir),
        name="bench",
        epochs=None,
        time_limit=None,
        gpus=0,
        batch_size=None,
        full_events=False,
        limit_dataset=None,
        fp16=False,
        verbose=False,
        random_seed=0,
        torch_script=False,
        profile=False,
    )
    return finished(window)


def run_spanet_lite(options: Path, log_dir: Path, seconds: float, warm: int, repo: Path) -> dict[str, Any]:
    sys.path.insert(0, str(repo))
    import lightning.pytorch as pl
    from rich.console import Console

    from spanet_lite.training.run import train

    window = window_callback(pl.Callback, seconds, warm)
    train(
        options,
        gpus=0,
        log_dir=log_dir,
        name="bench",
        quiet=True,
        callbacks=[window],
        console=Console(stderr=True),
    )
    return finished(window)


def finished(window: Any) -> dict[str, Any]:
    if window.result is None:
        raise SystemExit(f"the run ended after {window.steps} steps, before the timing window closed")
    return window.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=["spanet", "spanet_lite"])
    parser.add_argument("options", type=Path)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warm", type=int, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    started = time.perf_counter()
    if args.tool == "spanet":
        result = run_spanet(args.options, args.log_dir, args.seconds, args.warm)
    else:
        result = run_spanet_lite(args.options, args.log_dir, args.seconds, args.warm, args.repo)
    import torch

    result["process_s"] = time.perf_counter() - started
    result["torch"] = torch.__version__
    result["torch_threads"] = torch.get_num_threads()
    result["load_average"] = os.getloadavg()
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
