"""Devices named by users: checked before any work, and their failures reported as one line.

``--device`` (``spanet-test``, ``spanet-predict``) must name a torch device that exists on this
machine; a GPU that is busy, lost or out of memory fails as one line naming the device
instead of a driver traceback (:func:`device_failure` says which errors those are).
"""

from __future__ import annotations

import torch

from spanet_lite.errors import InputError

CPU_MEMORY_WORDS = "can't allocate memory"
"""What torch's CPU allocator says when the machine's memory is exhausted."""
_DEVICE_WORDS = (
    "CUDA error", "CUDA-capable", "out of memory", "no CUDA GPUs", "device-side", "NCCL", CPU_MEMORY_WORDS,
)


def check_device(text: str) -> torch.device:
    """``--device`` as a torch device that exists on this machine, else a one-line InputError."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(None, "--device", "a torch device such as cpu, cuda or cuda:1", repr(text)) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(
                None, "--device", "a device that exists here (no CUDA device is visible: use cpu)", repr(text)
            )
        if device.index is not None and device.index >= count:
            raise InputError(None, "--device", f"cuda:0..cuda:{count - 1} ({count} CUDA device(s) visible)",
                             repr(text))
        return device
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(
            None, "--device", "a device that exists here (MPS is not available: use cpu)", repr(text)
        )
    return device


def device_failure(error: BaseException) -> str | None:
    """The driver's message on one line when ``error`` is a device failure (busy, lost, out of
    memory, the CPU's memory included), else None: other RuntimeErrors are bugs and keep their
    traceback."""
    text = " ".join(str(error).split())
    if isinstance(error, torch.OutOfMemoryError) or any(word in text for word in _DEVICE_WORDS):
        return text[:300]
    return None
