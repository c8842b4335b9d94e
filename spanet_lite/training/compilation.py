"""Whether a run goes through ``torch.compile``, and how: the ``compile`` option decided.

``compile: true`` compiles, on CUDA, the whole network with static shapes (the device loader
pads widths to a few buckets); on the CPU, the blocks that repeat
(:meth:`~spanet_lite.model.network.SpanetNetwork.compile_regions`: encoder layers, residual
blocks, input MLPs, the pair-bias MLP), with dynamic shapes because the trimmed width changes
every batch. The symmetric attention, heads and losses stay eager.

The default is ``false`` on both, as measured: on the CPU (2-core EPYC, SPANet's ttbar example
options, batch 32; ``bench/bench_cpu.py --variants compiled``) compiled blocks fuse the
elementwise work but leave every matrix product to the same kernels, and training ran at
0.99-1.03x the eager speed after a one-off 25-160 s of compiling; on CUDA the gain is still to be measured
(``bench/bench_gpu.py``, configuration ``spanet_b1024_compile``).

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
    """What a run compiles: ``"off"``, ``"regions"`` (CPU) or ``"network"`` (CUDA)."""

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
    return CompileChoice("regions")
