"""Whether a run goes through ``torch.compile``, and how: the ``compile`` option decided.

``compile: true`` compiles the whole network and its losses as one graph
(:func:`~spanet_lite.training.module.network_losses`): on CUDA with static shapes (the device
loader pads widths to a few buckets), on the CPU with dynamic shapes (``"dynamic"``), because
the trimmed width changes every batch, and kernels called from C++ (:data:`CPU_INDUCTOR_OPTIONS`,
:func:`compile_arguments`). With the losses in the graph, their many small
operations are fused with the network's, forward and backward (1.09x per CPU step against the
compiled network with eager losses, docs/training.md). The index tables that depend only on
the widths (:class:`~spanet_lite.model.network.LayoutTables`) are built eagerly and handed to
the compiled function, so that it traces to one graph with symbolic widths and batch size, with
no graph break (tested). One graph gives zero gradients, where eager gives none, to weights no
computed term depends on; the first training step runs eagerly to find those weights, and
compiled steps leave their gradients None, so AdamW's weight decay leaves them alone as in an
eager run (``SpanetModule.on_after_backward``).

The default, ``compile: "auto"``, compiles only where it was measured to pay: a CPU run of at
least :data:`AUTO_MIN_STEPS` planned training steps, not cut short by a time limit under
:data:`AUTO_MIN_SECONDS`. On the CPU (2-core EPYC, SPANet's ttbar example options, batch 32,
``bench/bench_cpu.py``) the compiled network trains 1.43-1.47x faster than eager in full
Lightning runs, about 20 ms less per step, but compiling takes 140 s (warm kernel cache) to
600 s (cold) before the first step: 7,000 to 30,000 steps to win it back. SPANet's example
options plan 445,500 steps on 30,000 events; the test suite and a first try of a few epochs
plan a few hundred, and stay eager. On CUDA ``auto`` does not compile: the gain there is still
to be measured (``bench/bench_gpu.py``, ``spanet_b1024_compile``). Validation runs eagerly
(see ``SpanetModule.batch_losses``). An earlier form that compiled the repeated blocks one by one
measured 0.99-1.03x and was dropped. docs/training.md has the figures.

Compiling for the CPU needs a C++ compiler: without one the run trains eagerly and says so.
Compiling can still fail at the first step (a broken toolchain, an operator the compiler does
not handle): :class:`~spanet_lite.training.module.SpanetModule` then goes back to eager for the
rest of the run and says so in one line.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from spanet_lite.config.options import Options

COMPILERS = ("c++", "g++", "clang++")
"""What torch's inductor looks for when ``CXX`` is unset."""

AUTO_MIN_STEPS = 50_000
"""Planned training steps from which ``compile: auto`` compiles a CPU run (break-even measured at
7,000-30,000 steps, see the module docstring)."""

AUTO_MIN_SECONDS = 1800.0
"""A time limit shorter than this keeps ``compile: auto`` eager: the compile would eat too much of it."""


CPU_INDUCTOR_OPTIONS: dict[str, Any] = {"cpp_wrapper": True}
"""Inductor's settings for a CPU compile. ``cpp_wrapper``: the code that allocates buffers and
calls the generated kernels is C++ instead of Python (about 1,500 Python calls per training step
at SPANet's batch of 32): about 1.05x per training step with SPANet's ttbar example options
(1.04-1.11x in three timings, docs/training.md), and no slower to compile (the kernels are
built as one C++ file, which torch's kernel cache keeps)."""


def compile_arguments(mode: str) -> dict[str, Any]:
    """What ``torch.compile`` is given for a compile ``mode`` other than ``"off"``: dynamic shapes
    and :data:`CPU_INDUCTOR_OPTIONS` on the CPU, static shapes and inductor's defaults on CUDA."""
    if mode == "dynamic":
        return {"dynamic": True, "options": dict(CPU_INDUCTOR_OPTIONS)}
    return {"dynamic": False}


@dataclass(frozen=True)
class CompileChoice:
    """What a run compiles: ``"off"``, ``"dynamic"`` (CPU: the network, dynamic shapes) or
    ``"network"`` (CUDA: the network, static shapes)."""

    mode: str
    note: str | None = None
    """One line for the user when the option cannot be followed."""


def cxx_compiler() -> str | None:
    """Path of the C++ compiler inductor would use on the CPU (None when there is none)."""
    wanted = os.environ.get("CXX")
    for name in (wanted,) if wanted else COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def choose_compile(
    options: Options, accelerator: str, *, planned_steps: int = 0, time_limit: float | None = None
) -> CompileChoice:
    """The compile mode for ``options`` on ``accelerator`` (Lightning's ``"cpu"`` or ``"gpu"``).

    ``planned_steps`` (epochs x optimiser steps per epoch) and ``time_limit`` (seconds, None for
    none) decide ``compile: auto``; ``true`` and ``false`` do not look at them.
    """
    if options.compile == "auto":
        long_run = planned_steps >= AUTO_MIN_STEPS and (time_limit is None or time_limit >= AUTO_MIN_SECONDS)
        if accelerator == "gpu" or not long_run:
            return CompileChoice("off")
        asked = f"compile: auto would compile this CPU run of {planned_steps:,} steps"
        note = (
            f"compile: auto: compiling the network for this CPU run of {planned_steps:,} steps "
            "(minutes, once; then 1.4-2x faster steps; compile: false turns this off)"
        )
    elif not options.compile:
        return CompileChoice("off")
    elif accelerator == "gpu":
        return CompileChoice("network")
    else:
        asked, note = "compile: true", None
    if cxx_compiler() is None:
        missing = "no C++ compiler (c++, g++, clang++ or $CXX) is on the PATH: training eagerly"
        return CompileChoice("off", f"{asked}, but {missing}")
    return CompileChoice("dynamic", note)
