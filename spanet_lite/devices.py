"""Devices named by users: checked before any work, and their failures reported as one line.

``--device`` (``spanet-test``, ``spanet-predict``) must name a torch device of a type spanet_lite
runs on (:data:`DEVICE_TYPES`) that exists on this machine (:func:`usable_device_types`); a GPU
that is busy, lost or out of memory fails as one line naming the device instead of a driver
traceback (:func:`device_failure` says which errors those are).
"""

from __future__ import annotations

import torch

from spanet_lite.errors import InputError

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The torch device types spanet_lite runs on; torch knows more (meta, xpu, hpu, ipu, lazy, mtia,
privateuseone), but those fail deep inside a forward pass or a missing torch module, or hold no
values at all (meta)."""
CPU_MEMORY_WORDS = "can't allocate memory"
"""What torch's CPU allocator says when the machine's memory is exhausted."""
_DEVICE_WORDS = (
    "CUDA error", "CUDA-capable", "out of memory", "no CUDA GPUs", "device-side", "NCCL", CPU_MEMORY_WORDS,
)


def usable_device_types() -> list[str]:
    """The :data:`DEVICE_TYPES` this machine has: cpu, and cuda and mps where torch sees them."""
    usable = ["cpu"]
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        usable.append("cuda")
    if torch.backends.mps.is_available():
        usable.append("mps")
    return usable


def check_device(text: str, where: str) -> torch.device:
    """``text`` as a torch device that exists on this machine, else a one-line InputError naming
    ``where`` (the flag or keyword it came from: ``--device``, ``-g/--gpu``, ``device``)."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(None, where, "a torch device such as cpu, cuda or cuda:1", repr(text)) from None
    usable = usable_device_types()
    if device.type == "cuda" and "cuda" not in usable:
        raise InputError(
            None, where, "a device that exists here (no CUDA device is visible: use cpu)", repr(text)
        )
    if device.type == "mps" and "mps" not in usable:
        raise InputError(
            None, where, "a device that exists here (MPS is not available: use cpu)", repr(text)
        )
    if device.type not in usable:
        types = ", ".join(DEVICE_TYPES)
        wanted = f"a device type spanet_lite runs on, one of {types} (available here: {', '.join(usable)})"
        raise InputError(None, where, wanted, repr(text))
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise InputError(None, where, f"cuda:0..cuda:{count - 1} ({count} CUDA device(s) visible)",
                             repr(text))
    return device


def device_failure(error: BaseException) -> str | None:
    """The driver's message on one line when ``error`` is a device failure (busy, lost, out of
    memory, the CPU's memory included), else None: other RuntimeErrors are bugs and keep their
    traceback."""
    text = " ".join(str(error).split())
    if isinstance(error, torch.OutOfMemoryError) or any(word in text for word in _DEVICE_WORDS):
        return text[:300]
    return None
