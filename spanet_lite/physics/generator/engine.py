"""Drive a process: seeded blocks, selection, chunked HDF5 output, and a summary.

Determinism: candidate events are simulated in blocks of ``BLOCK_SIZE``; block i draws from
``numpy.random.default_rng([seed, i])``. The selected events are the first N passing ones in
block order, so a file depends only on (process, N, seed, physics, selection) - not on the
write chunk size or on how the work is split. The selection is applied inside the simulation
(``detector.reconstruct`` cuts as early as it can and simulates the rest for survivors only),
so it is part of what a block's random numbers are spent on.

Memory: one block plus one write chunk is held at a time, whatever N is (the event weights,
all 1, are HDF5's fill value rather than an array).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray

from spanet_lite.config.suggest import describe
from spanet_lite.errors import InputError
from spanet_lite.hdf5_paths import EVENT_WEIGHT_DATASET, classification_path, mask_path, target_path
from spanet_lite.io import OutputGroup, atomic_hdf5, check_hdf5_writes
from spanet_lite.outputs import check_outputs, output
from spanet_lite.physics.generator.acceptance import AcceptanceGuard
from spanet_lite.physics.generator.allocator import retain_freed_memory
from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.generator.processes import Process
from spanet_lite.physics.generator.request import Request, get_process

BLOCK_SIZE = 8_192
CANDIDATE_KEY = "_candidate"  # global index of each selected event among simulated ones (not stored)
FLOAT_DTYPE = np.float32
COMPRESSIONS = ("gzip", "lzf", None)
"""The ``compression`` values :func:`write_file` takes: the HDF5 filters every h5py build has."""
GZIP_LEVEL = 1  # level 1 writes ~2x faster than the default 4 and the files grow by only a few %

# ttH_semilep: ttH share among candidates. The tt + bb background (gluon splitting) passes the
# >= 4 b-tag selection about 4x less often than ttH, so 0.2 gives about half signal after selection.
SIGNAL_FRACTION = 0.2


@dataclass
class Summary:
    """What a generation run produced: counts, selection efficiency, matching and jet multiplicity.

    ``matched_all/some/none``: fractions of (signal) events whose particles are all / some (but
    not all) / none fully matched (every product of the particle has a target index).
    """

    process: str
    events: int
    candidates: int = 0
    matched_all: float = 0.0
    matched_some: float = 0.0
    matched_none: float = 0.0
    mean_jets: float = 0.0
    particle_matched: dict[str, float] = field(default_factory=dict)
    signal_fraction: float | None = None

    @property
    def efficiency(self) -> float:
        return self.events / self.candidates if self.candidates else 0.0


class _Tally:
    def __init__(self, process: Process) -> None:
        self.process = process
        self.counts = np.zeros(3, dtype=np.int64)  # all, some, none
        self.per_particle = dict.fromkeys(process.particles, 0)
        self.jets = 0
        self.events = 0
        self.signal_events = 0

    def add(self, arrays: dict[str, NDArray]) -> None:
        p = self.process
        n = len(arrays[mask_path(p.sequential_input)])
        self.events += n
        num_objects = arrays[mask_path(p.sequential_input)].sum(axis=1)
        self.jets += int(
            num_objects.sum()
            - (arrays[mask_path(p.sequential_input)][:, 0].sum() if p.has_lepton else 0)
        )
        signal = arrays.get(classification_path("EVENT/signal"))
        rows = np.ones(n, dtype=bool) if signal is None else signal.astype(bool)
        self.signal_events += int(rows.sum())
        complete = []
        for particle in p.particles:
            products = [(par, prod) for par, prod in p.targets if par == particle]
            full = np.all([arrays[target_path(par, prod)] >= 0 for par, prod in products], axis=0)[rows]
            self.per_particle[particle] += int(full.sum())
            complete.append(full)
        k = np.sum(complete, axis=0)
        self.counts += [
            int((k == len(complete)).sum()),
            int(((k > 0) & (k < len(complete))).sum()),
            int((k == 0).sum()),
        ]

    def summary(self, candidates: int) -> Summary:
        s = max(self.signal_events, 1)
        signal_fraction = (
            self.signal_events / max(self.events, 1) if self.process.name == "ttH_semilep" else None
        )
        return Summary(
            process=self.process.name,
            events=self.events,
            candidates=candidates,
            matched_all=self.counts[0] / s,
            matched_some=self.counts[1] / s,
            matched_none=self.counts[2] / s,
            mean_jets=self.jets / max(self.events, 1),
            particle_matched={k: v / s for k, v in self.per_particle.items()},
            signal_fraction=signal_fraction,
        )


def generate_blocks(
    process: Process,
    seed: int,
    config: PhysicsConfig | None = None,
    selection: Selection | None = None,
    max_objects: int | None = None,
    signal_fraction: float = SIGNAL_FRACTION,
) -> Iterator[tuple[dict[str, NDArray], int]]:
    """Yield (selected arrays, candidates simulated) block after block, forever (caller stops).

    The arrays include ``CANDIDATE_KEY``: each selected event's index among all simulated ones.
    """
    config = config or PhysicsConfig()
    selection = selection or process.selection
    width = max_objects or process.max_objects
    block = 0
    while True:
        rng = np.random.default_rng([seed, block])
        arrays, reco = process.simulate(rng, BLOCK_SIZE, config, width, signal_fraction, selection)
        arrays[CANDIDATE_KEY] = block * BLOCK_SIZE + reco.events
        yield arrays, BLOCK_SIZE
        block += 1


def generate_arrays(
    process: str | Process,
    events: int,
    seed: int,
    *,
    config: PhysicsConfig | None = None,
    selection: Selection | None = None,
    max_objects: int | None = None,
    signal_fraction: float | None = None,
) -> dict[str, NDArray]:
    """The first ``events`` selected events in memory, stored dtypes (for tests and notebooks).

    Options as for :func:`write_file`, and checked the same way.
    """
    proc = get_process(process) if isinstance(process, str) else process
    request = Request(proc, events, seed, config or PhysicsConfig(), selection, max_objects, signal_fraction)
    events = request.events
    parts: list[dict[str, NDArray]] = []
    have = 0
    for arrays, _ in _blocks(request):
        parts.append(arrays)
        have += len(next(iter(arrays.values())))
        if have >= events:
            break
    return {
        k: _stored(k, np.concatenate([p[k] for p in parts])[:events]) for k in parts[0] if k != CANDIDATE_KEY
    }


def _blocks(request: Request) -> Iterator[tuple[dict[str, NDArray], int]]:
    """:func:`generate_blocks` for a checked request."""
    fraction = SIGNAL_FRACTION if request.signal_fraction is None else request.signal_fraction
    return generate_blocks(
        request.process, request.seed, request.config, request.cuts, request.width, fraction
    )


def _stored(key: str, values: NDArray) -> NDArray:
    """Stored dtype: bool masks, int64 targets/classes, float32 features and regressions."""
    if key.endswith("/MASK"):
        return values.astype(bool, copy=False)
    if key.startswith(("TARGETS/", "CLASSIFICATIONS/")):
        return values.astype(np.int64, copy=False)
    return values.astype(FLOAT_DTYPE, copy=False)


def write_file(
    path: str | Path,
    process: str | Process,
    events: int,
    seed: int,
    *,
    config: PhysicsConfig | None = None,
    selection: Selection | None = None,
    max_objects: int | None = None,
    signal_fraction: float | None = None,
    chunk_size: int = 65_536,
    overwrite: bool = False,
    compression: str | None = "gzip",
    progress: Callable[[int], None] | None = None,
    group: OutputGroup | None = None,
) -> Summary:
    """Generate ``events`` selected events into the HDF5 file ``path`` (atomic, chunked; staged
    in ``group``, when given, to be moved into place with the call's other outputs).

    Events are written ``chunk_size`` at a time, rounded down to whole HDF5 chunks of 4,096
    events (so values below 4,096 act as 4,096). ``progress(k)`` is called with the number of
    events written so far after each write. ``selection`` and ``max_objects`` default to the
    process's, ``signal_fraction`` (ttH_semilep) to ``SIGNAL_FRACTION``.
    Raises an InputError naming the keyword for a value no run could use (see
    :class:`.request.Request`), and for an output the output rule refuses (an existing file
    without ``overwrite``, a run's files: :mod:`spanet_lite.outputs`). Keeps freed heap
    memory for reuse in this process (see :mod:`.allocator`; 8 % faster, same peak memory).
    """
    proc = get_process(process) if isinstance(process, str) else process
    request = Request(
        proc, events, seed, config or PhysicsConfig(), selection, max_objects, signal_fraction, chunk_size
    )
    events, seed, chunk_size = request.events, request.seed, request.chunk_size  # typed by Request
    if compression not in COMPRESSIONS:  # h5py's ValueError came only at the first write
        raise InputError(None, "compression", "one of gzip, lzf or None", describe(compression))
    check_outputs([output(path, "path")], overwrite=overwrite)
    retain_freed_memory()
    tally = _Tally(proc)
    candidates = 0
    rows = _chunk_rows(events)
    guard = AcceptanceGuard(request.cuts)
    with atomic_hdf5(path, overwrite=overwrite, group=group) as f:
        written = 0
        pending: list[dict[str, NDArray]] = []  # selected events not yet written, in order
        buffered = 0
        datasets: dict[str, h5py.Dataset] = {}
        blocks = _blocks(request)
        while written < events:
            arrays, simulated = next(blocks)
            guard.add(simulated, len(arrays[CANDIDATE_KEY]))
            pending.append(arrays)
            buffered += len(arrays[CANDIDATE_KEY])
            if buffered < chunk_size and written + buffered < events:
                continue
            take = min(buffered, events - written)
            if written + take < events:  # whole HDF5 chunks only, so every write is a direct one
                take -= take % rows
                if not take:  # a write chunk smaller than an HDF5 chunk: gather more first
                    continue
            merged = {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}
            pending = [{k: v[take:] for k, v in merged.items()}]
            buffered -= take
            chunk = {k: v[:take] for k, v in merged.items()}
            candidates = int(chunk.pop(CANDIDATE_KEY)[-1]) + 1  # simulated up to the last one kept
            chunk = {k: _stored(k, v) for k, v in chunk.items()}
            if not datasets:
                datasets = _create_datasets(f, chunk, events, compression)
                create_weight_dataset(f, events, compression)
            for key, values in chunk.items():
                _write_rows(datasets[key], written, values, compression)
            check_hdf5_writes(f)  # a full disk stops the run here, not after simulating the rest
            tally.add(chunk)
            written += take
            if progress is not None:
                progress(written)
        f.attrs["generator"] = "spanet_lite"
        f.attrs["process"] = proc.name
        f.attrs["seed"] = seed
        f.attrs["candidates"] = candidates
    return tally.summary(candidates)


def _compression_options(compression: str | None) -> dict[str, object]:
    """h5py dataset options: shuffle + the filter; gzip at level GZIP_LEVEL."""
    if not compression:
        return {}
    options: dict[str, object] = {"compression": compression, "shuffle": True}
    if compression == "gzip":
        options["compression_opts"] = GZIP_LEVEL
    return options


def _write_rows(dataset: h5py.Dataset, start: int, values: NDArray, compression: str | None) -> None:
    """Write ``values`` into rows ``start:`` of ``dataset``; gzip chunks are filtered here.

    For gzip, each whole HDF5 chunk is shuffled and deflated in numpy/zlib and stored with
    ``write_direct_chunk``: the same filters the dataset declares (any HDF5 reader inflates it),
    but deflated with zlib's run-length strategy, which on these arrays (zero padding, small
    integers, byte-shuffled floats) is ~1.5x faster than HDF5's level-1 deflate and slightly
    smaller. The stored values are the same. :func:`write_file` only writes whole chunks (the
    last one padded); a write that starts off a chunk boundary, or a partial chunk inside the
    dataset, goes through h5py as usual.
    """
    rows = dataset.chunks[0] if dataset.chunks else 0
    if compression != "gzip" or not rows or start % rows:
        dataset[start : start + len(values)] = values
        return
    values = np.ascontiguousarray(values)
    size = values.dtype.itemsize
    for first in range(0, len(values), rows):
        block = values[first : first + rows]
        at = start + first
        if len(block) < rows:
            if at + len(block) < dataset.shape[0]:  # a partial chunk inside the dataset
                dataset[at : at + len(block)] = block
                continue
            padded = np.zeros((rows, *block.shape[1:]), dtype=block.dtype)  # the fill value
            padded[: len(block)] = block
            block = padded
        raw = block.view(np.uint8).reshape(-1, size)
        if size > 1:  # HDF5's shuffle filter: all first bytes, then all second bytes, ...
            raw = np.ascontiguousarray(raw.T)
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_RLE)
        data = packer.compress(raw.data) + packer.flush()
        dataset.id.write_direct_chunk((at,) + (0,) * (block.ndim - 1), data)


def _chunk_rows(events: int) -> int:
    """Rows per HDF5 chunk: 4096 events (a few hundred kB of any column), fewer for small files."""
    return max(1, min(events, 4096))


def create_weight_dataset(f: h5py.File, events: int, compression: str | None) -> h5py.Dataset:
    """``WEIGHTS/EVENT/weight``: 1 for every event, as HDF5's fill value of a chunked dataset.

    Generated events are unweighted. A fill value costs no memory and no disk, whatever
    ``events`` is (an array of ones was 4 bytes an event in memory: 37 GiB for 1e10 events);
    every reader (h5py, h5dump, SPANet) sees 1.0 in each row, since HDF5 returns the fill value
    for chunks that were never written.
    """
    return f.create_dataset(
        EVENT_WEIGHT_DATASET, shape=(events,), dtype=FLOAT_DTYPE, chunks=(_chunk_rows(events),),
        fillvalue=1.0, **_compression_options(compression),
    )


def _create_datasets(
    f: h5py.File, sample: dict[str, NDArray], events: int, compression: str | None
) -> dict[str, h5py.Dataset]:
    out = {}
    rows = _chunk_rows(events)
    for key, values in sample.items():
        shape = (events, *values.shape[1:])
        options = _compression_options(compression)
        out[key] = f.create_dataset(
            key, shape=shape, dtype=values.dtype, chunks=(rows, *values.shape[1:]), **options
        )
    return out
