"""Where a run trains: accelerator, devices, nodes and numeric precision, from options and flags.

``--gpus N`` must be satisfiable; an options file's ``num_gpu`` is a wish (SPANet files say
``"num_gpu": 1``), so without CUDA it falls back to the CPU with a note. ``0`` is the CPU, as
SPANet documents ``--gpus N``; SPANet's code hands 0 to Lightning as "auto" (every visible GPU),
so a 0 given while GPUs are visible gets a note saying which was done.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from spanet_lite.config.options import Options, full_precision
from spanet_lite.config.options_file import as_integer
from spanet_lite.errors import InputError

LAUNCHER_VARIABLES = ("SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "LSB_JOBID", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
"""Set in every process of a launch by srun (SLURM), torchrun, jsrun (LSF) or mpirun (Open MPI,
MPICH): the launchers Lightning's cluster environments read."""


def launched_for_several_nodes() -> bool:
    """True in a process started by a multi-node launcher, or by hand with ``MASTER_ADDR`` and
    ``NODE_RANK`` (Lightning's own variables); elsewhere ``--nodes 2`` waits for ever."""
    environ = os.environ
    return any(key in environ for key in LAUNCHER_VARIABLES) or (
        "MASTER_ADDR" in environ and "NODE_RANK" in environ
    )


@dataclass(frozen=True)
class Hardware:
    """The devices a run uses and how it computes."""

    accelerator: str
    """``"cpu"`` or ``"gpu"`` (Lightning's names)."""
    devices: int
    """Devices (GPUs or CPU processes) per node."""
    nodes: int
    precision: str
    """Lightning's precision string, e.g. ``32-true`` or ``bf16-mixed``."""
    note: str | None = None
    """What the user should know about the choice (e.g. num_gpu fell back to the CPU)."""
    chosen_by: str = "num_gpu"
    """What set the devices, for a line about them failing: ``train``'s ``gpus`` or ``processes``
    keyword when the caller passed it (``spanet-train`` translates it to the flag typed), else
    the options' ``num_gpu`` (a GPU count, or the CPU it falls back to), which no flag set."""

    @property
    def distributed(self) -> bool:
        return self.devices * self.nodes > 1


def check_devices(
    gpus: object, processes: object, nodes: object, names: Mapping[str, str]
) -> tuple[int | None, int | None, int]:
    """The devices asked for, on their own: ``gpus`` that this machine has, ``processes`` >= 1,
    ``nodes`` >= 1 and more than one only under a multi-node launcher. Each is an integer by the
    one integer rule (:func:`~spanet_lite.config.options_file.as_integer`: ``"1"`` or ``1.5`` would
    reach Lightning as a device count), returned as an ``int`` for the run to use. Refused in one
    line naming the value as ``names`` spells it (``train``'s keywords, ``spanet-train``'s flags)."""
    gpus = None if gpus is None else as_integer(gpus, names["gpus"])
    processes = None if processes is None else as_integer(processes, names["processes"])
    nodes = as_integer(nodes, names["nodes"])
    if gpus is not None:
        import torch

        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus < 0:
            raise InputError(None, names["gpus"], "a number of GPUs >= 0", str(gpus))
        if gpus > available:
            wanted = f"at most {available} (CUDA devices visible here)"
            raise InputError(None, names["gpus"], wanted, str(gpus))
    if processes is not None and processes < 1:
        raise InputError(None, names["processes"], "a number of processes >= 1", str(processes))
    if nodes < 1:
        raise InputError(None, names["nodes"], "a positive number of nodes", str(nodes))
    if nodes > 1 and not launched_for_several_nodes():
        launch = "a multi-node launch: srun, torchrun, jsrun, mpirun, or MASTER_ADDR and NODE_RANK set"
        launch += " on every node"
        raise InputError(None, names["nodes"], launch, f"{nodes} nodes in a plain process")
    return gpus, processes, nodes


def choose_hardware(options: Options, *, gpus: int | None, processes: int | None, nodes: int) -> Hardware:
    """The hardware for ``options`` and the devices asked for, which :func:`check_devices` has
    passed."""
    accelerator, devices, note = _devices(options, gpus, processes)
    precision = _precision(options, accelerator)
    if accelerator == "cpu" and processes is not None:  # the count of CPU devices, with gpus=0 too
        chosen_by = "processes"
    elif gpus is not None:
        chosen_by = "gpus"
    else:
        chosen_by = "num_gpu"
    return Hardware(accelerator, devices, nodes, precision, note, chosen_by)


def _devices(options: Options, gpus: int | None, processes: int | None) -> tuple[str, int, str | None]:
    """(accelerator, devices per node, note for the user).

    ``gpus`` asked for are there (:func:`check_devices`); the options file's ``num_gpu`` is a
    wish (SPANet files say ``"num_gpu": 1``), so without CUDA it falls back to the CPU with a note.
    """
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus is not None:
        wanted, note = gpus, None
    else:
        wanted = max(0, int(options.num_gpu or 0))
        note = None
        if wanted > available:
            # SPANet's default (1) is no wish of the user's: only a num_gpu the file sets gets a note.
            if "num_gpu" in options.explicit:
                note = (
                    f"num_gpu = {wanted} in the options, but {available} CUDA device(s) are visible: "
                    f"using {'the CPU' if available == 0 else f'{available} GPU(s)'}"
                )
            wanted = available
    if wanted == 0 and available > 0 and (gpus == 0 or "num_gpu" in options.explicit):
        note = (
            f"{'-g 0' if gpus == 0 else 'num_gpu = 0'}: training on the CPU, as SPANet's documentation "
            f"says; its code would take the {available} visible GPU(s) (-g {available} does here)"
        )
    if wanted > 0:
        return "gpu", wanted, note
    return "cpu", processes or 1, note


def _precision(options: Options, accelerator: str) -> str:
    """The options' precision; ``auto`` (the default) is 32-true on the CPU and mixed precision
    on a GPU. Any other value is the user's choice, whether a file, a flag, a keyword or an
    ``Options`` built in Python set it: a value, not where it came from, decides. A refusal names
    ``precision``, the keyword and the option alike (``spanet-train`` names the flag typed,
    ``--precision`` or ``-fp16``, only when one was). A short form (``bf16``) is passed on under
    its full name, which Lightning reads it as without a deprecation warning."""
    chosen = full_precision(str(options.precision))
    if accelerator == "cpu" and chosen == "16-mixed":
        raise InputError(
            None, "precision",
            "32-true or bf16-mixed on the CPU (16-bit mixed precision needs a GPU)", str(options.precision),
        )
    if chosen == "auto":
        return gpu_mixed_precision() if accelerator == "gpu" else "32-true"
    return chosen


def gpu_mixed_precision() -> str:
    """A GPU run's default precision: ``bf16-mixed`` where the GPU computes in bfloat16 itself
    (compute capability 8.0 and up), else ``16-mixed``. ``torch.cuda.is_bf16_supported()`` with
    its default ``including_emulation=True`` says yes on every CUDA GPU that can hold a bfloat16
    tensor, V100 and T4 included, which only emulate its arithmetic: there ``16-mixed`` was never
    chosen, and training ran in emulated bfloat16."""
    import torch

    return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"


def rank_from_environment() -> int:
    """Global rank of this process as set by torchrun / SLURM / Lightning's launcher (0 if none)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(key)
        if value and value.isdigit():
            if key == "SLURM_PROCID" and int(os.environ.get("SLURM_NTASKS", "1") or 1) <= 1:
                continue
            return int(value)
    return 0
