"""Dataset operations that stream: concatenate, split, shuffle, select, convert SPANet 1.x files.

The Python API behind ``spanet-data`` (docs/tools.md). Every operation validates its inputs
against the event file first, moves events in bounded blocks, writes atomically and never
writes over an input.
"""

from spanet_lite.dataset.operations.commands import (
    Streaming,
    Written,
    concat,
    convert_v1,
    select,
    shuffle,
    split,
)

__all__ = ["Streaming", "Written", "concat", "convert_v1", "select", "shuffle", "split"]
