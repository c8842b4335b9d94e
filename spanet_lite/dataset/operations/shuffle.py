"""An out-of-core shuffle: a uniformly random order of any number of events in bounded memory.

Two passes through a scratch file (uncompressed, next to the output, removed afterwards):

1. read the events in order, send each to one of ``K`` buckets drawn uniformly at random,
   and write every bucket's events to its own region of the scratch file;
2. read one bucket at a time, permute it uniformly in memory, and emit it.

The scratch file is written through :func:`spanet_lite.io.guarded_hdf5`: on a full disk HDF5
crashed the process (exit 139) and left the scratch file behind; now the first refused write
stops the first pass with one line naming the place that needs room (``reported_as``).

Given the bucket sizes, every assignment of events to buckets is equally likely, and each
bucket is uniformly permuted, so every order of the whole file is equally likely. ``K`` is
chosen so that one bucket fits in ``memory`` bytes. The bucket of each event is drawn from
a generator seeded by ``(seed, block)``, so the first pass can count bucket sizes without
reading any data and the whole shuffle is reproducible from ``seed``.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from spanet_lite.dataset.operations.streams import Block, Plan, ProgressFactory, no_progress
from spanet_lite.io import check_hdf5_writes, guarded_hdf5

DEFAULT_BUCKET_MEMORY = 64 * 1024 * 1024


def shuffled_blocks(
    plan: Plan,
    seed: int,
    scratch_dir: Path,
    *,
    chunk_size: int,
    memory: float = DEFAULT_BUCKET_MEMORY,
    progress: ProgressFactory = no_progress,
    reported_as: Path | None = None,
) -> Iterator[Block]:
    """Yield all events of ``plan`` in a random order, in blocks of at most ``chunk_size``.

    A refused write of the scratch file is an OSError naming ``reported_as`` (default:
    ``scratch_dir``), never the scratch file, which the user did not name and which is gone.
    """
    total = plan.num_events
    per_bucket = max(chunk_size, int(memory // max(1, plan.bytes_per_event)))
    buckets = max(1, math.ceil(total / per_bucket))
    reads = list(plan.blocks(chunk_size))

    def bucket_of(number: int, rows: int) -> np.ndarray:
        return np.random.default_rng([seed, 0, number]).integers(0, buckets, size=rows)

    counts = np.zeros(buckets, dtype=np.int64)
    for number, (_, start, stop) in enumerate(reads):
        counts += np.bincount(bucket_of(number, stop - start), minlength=buckets)
    edges = np.concatenate([[0], np.cumsum(counts)])

    with contextlib.ExitStack() as stack:
        scratch_dir.mkdir(parents=True, exist_ok=True)  # the default, beside an output not made yet
        handle = stack.enter_context(tempfile.NamedTemporaryFile(
            prefix=".spanet-data-shuffle.", suffix=".h5", dir=scratch_dir))
        scratch = stack.enter_context(guarded_hdf5(Path(handle.name), reported_as or scratch_dir))
        store = {c.path: scratch.create_dataset(c.path.replace("/", "|"), shape=(total, *c.tail),
                                                dtype=c.dtype)
                 for c in plan.columns}
        cursor = edges[:-1].copy()
        advance = progress("shuffling (1/2)", total)
        for number, (index, start, stop) in enumerate(reads):
            ids = bucket_of(number, stop - start)
            order = np.argsort(ids, kind="stable")
            sizes = np.bincount(ids, minlength=buckets)
            block = plan.read(index, start, stop)
            for path, values in block.items():
                values = values[order]
                offset = 0
                for bucket in np.flatnonzero(sizes):
                    size = int(sizes[bucket])
                    at = int(cursor[bucket])
                    store[path][at:at + size] = values[offset:offset + size]
                    offset += size
            cursor += sizes
            check_hdf5_writes(scratch)  # dropped writes would read back as stale events
            advance(stop - start)

        advance = progress("shuffling (2/2)", total)
        for bucket in range(buckets):
            start, stop = int(edges[bucket]), int(edges[bucket + 1])
            if start == stop:
                continue
            order = np.random.default_rng([seed, 1, bucket]).permutation(stop - start)
            held = {path: dataset[start:stop][order] for path, dataset in store.items()}
            for first in range(0, stop - start, chunk_size):
                yield {path: values[first:first + chunk_size] for path, values in held.items()}
                advance(min(chunk_size, stop - start - first))
            del held
