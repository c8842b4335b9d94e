"""Whether a run goes through ``torch.compile``, and how: the ``compile`` option decided.

``compile: true`` compiles the whole network: on CUDA with static shapes (the device loader
pads widths to a few buckets), on the CPU with dynamic shapes (``"dynamic"``), because the
trimmed width changes every batch. The losses stay eager. The index tables that depend only on
the widths (:class:`~spanet_lite.model.network.LayoutTables`) are built eagerly and handed to
the compiled network, so that it traces to one graph with symbolic widths and batch size, with
no graph break (tested). One graph also gives zero gradients, where eager gives none, to
weights no loss reaches (e.g. the detection heads when ``detection_loss_scale`` is 0), so
AdamW's weight decay still shrinks those.

The default is ``false`` on both. On the CPU (2-core EPYC, SPANet's ttbar example options,
batch 32, ``bench/bench_cpu.py``) the compiled network trains 1.43-1.47x faster than eager in
full Lightning runs, but compiling takes 140 s (warm kernel cache) to 600 s (cold) before the
first step, which short runs and the test suite would never win back; docs/training.md has the
figures. Validation runs eagerly (see ``SpanetModule._forward``). An earlier form that compiled
the repeated blocks one by one measured 0.99-1.03x and was dropped.
On CUDA the gain is still to be measured (``bench/bench_gpu.py``, ``spanet_b1024_compile``).

Compiling for the CPU needs a C++ compiler: without one the run trains eagerly and says so.
Compiling can still fail at the first step (a broken toolchain, an operator the compiler does
not handle): :class:`~spanet_lite.training.module.SpanetModule` then goes back to eager for the
rest of the run and says so in one line.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from spanet_lite.config.options import Options

COMPILERS = ("c++", "g++", "clang++")
"""What torch's inductor looks for when ``CXX`` is unset."""


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


def choose_compile(options: Options, accelerator: str) -> CompileChoice:
    """The compile mode for ``options`` on ``accelerator`` (Lightning's ``"cpu"`` or ``"gpu"``)."""
    if not options.compile:
        return CompileChoice("off")
    if accelerator == "gpu":
        return CompileChoice("network")
    if cxx_compiler() is None:
        return CompileChoice(
            "off", "compile: true, but no C++ compiler (c++, g++, clang++ or $CXX) is on the PATH: "
            "training eagerly",
        )
    return CompileChoice("dynamic")
