"""spanet_lite: symmetry-preserving attention networks for collider event reconstruction.

Imports are lazy so that command-line tools start fast: ``import spanet_lite`` does not
import torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "load_run":
        from spanet_lite.evaluation.run import load_run

        return load_run
    raise AttributeError(f"module 'spanet_lite' has no attribute {name!r}")
