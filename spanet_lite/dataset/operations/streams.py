"""The streaming machinery behind ``spanet-data``: validated sources, a column plan, chunked writers.

Every operation is the same pipeline: open and validate each input against the event file
(:func:`~spanet_lite.dataset.schema.validate_h5`, the checks ``spanet-inspect`` runs), plan the
output columns, then move events ``chunk_size`` at a time from sources to writers. Nothing
holds more than a block (or, for a shuffle, one bucket) of events, so memory does not grow
with the file.

A *column* is one per-event dataset (first axis = events). The output carries every column the
inputs share, not only those the event file names, so information travels with the events.
SEQUENTIAL inputs may have different padded widths in different inputs; the output takes the
widest, pads the rest (MASK False, features 0) and moves indices of unassociated products,
which count in the combined space of all SEQUENTIAL inputs *including padding*.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spanet_lite import outputs as outputs_rule
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.hdf5_layout import (
    ABSENT_READS_AS,
    expected_layout,
    read_rows,
    target_index_offsets,
    virtual_parts,
)
from spanet_lite.dataset.schema import DEFAULT_CHUNK_SIZE, open_h5, validate_h5, walk_tree
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.hdf5_paths import (
    classification_path,
    mask_path,
    stored_units,
    target_mask_path,
    target_path,
)
from spanet_lite.io import check_hdf5_writes

OUTPUT_CHUNK_ROWS = 4096
"""Events per HDF5 chunk in every output (what ``spanet-generate`` writes)."""
CHUNK_CACHE_BYTES = 0
"""HDF5's chunk cache per dataset, for inputs and outputs. Blocks are read once and written in
whole chunks, so a cache saves nothing; HDF5's default (1 MB per dataset, more in practice)
costs ~100 MB of RSS on a 20-dataset file."""

ProgressFactory = Callable[[str, int], Callable[[int], None]]
"""``factory(description, total)`` returns ``advance(n)``; called once per phase of work."""

Block = dict[str, np.ndarray]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


# ----------------------------------------------------------------------------- outputs


def check_outputs(inputs: Sequence[str | Path], outputs: Sequence[str | Path], overwrite: bool, *,
                  listed: bool = False) -> None:
    """The project's one output rule (:mod:`spanet_lite.outputs`) for an operation's outputs,
    named by the keyword they were passed as: ``output``, or ``outputs[i]`` for ``split``'s list
    (``listed``). An input is never overwritten, an existing output only with ``overwrite``, no
    two outputs the same. ``spanet-data`` checks its ``-o`` files by this rule first."""
    names = [f"outputs[{i}]" for i in range(len(outputs))] if listed else ["output"]
    targets = [outputs_rule.output(path, name) for path, name in zip(outputs, names)]
    outputs_rule.check_outputs(targets, inputs=inputs, overwrite=overwrite)


def check_linked_outputs(sources: Sequence[Source], outputs: Sequence[str | Path]) -> None:
    """No output may be a file an input's datasets live in (an external link) or read (a
    virtual dataset's parts): writing it would replace the input's data under it. Those files
    are known once the inputs are open, so this runs after :func:`check_outputs`, which has
    checked the outputs' names, existence and ``overwrite``."""
    datasets = [dataset for source in sources for dataset in source.columns.values()]
    linked = {dataset.file.filename for dataset in datasets}
    linked.update(part for dataset in datasets if dataset.is_virtual for part in virtual_parts(dataset))
    check_outputs(sorted(linked), outputs, overwrite=True, listed=len(outputs) > 1)


# ----------------------------------------------------------------------------- sources


@dataclass
class Source:
    """One validated input file: its per-event datasets and the padded width of each SEQUENTIAL input."""

    name: str
    """How errors and warnings name the file (the path as the user typed it)."""
    file: h5py.File
    num_events: int
    widths: dict[str, int]
    columns: dict[str, h5py.Dataset]
    attrs: dict[str, Any] = field(default_factory=dict)


def open_source(
    path: str | Path,
    spec: EventSpec,
    stack: contextlib.ExitStack,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    validation_progress: bool = False,
    file: h5py.File | None = None,
    rename: Callable[[str], str] | None = None,
) -> Source:
    """Open ``path`` (or use the already open ``file``), validate it, and list its per-event datasets.

    The first validation error becomes a one-line :class:`InputError` (``rename`` maps its
    place in the file to the name the user knows, e.g. a SPANet v1 path). Datasets that are
    not per-event (scalars, other lengths) cannot follow the events and are left out with a
    warning.
    """
    if file is None:
        file = stack.enter_context(open_h5(path, chunk_cache_bytes=CHUNK_CACHE_BYTES))
    report = validate_h5(file, spec, source=str(path), chunk_size=chunk_size, progress=validation_progress)
    problem = report.first_error()
    if problem is not None:
        more = len(report.errors) - 1
        suffix = f" ({more} more problem(s): run spanet-inspect --event-file)" if more else ""
        where = rename(problem.where) if rename else problem.where
        raise InputError(path, where, problem.message + suffix)
    columns: dict[str, h5py.Dataset] = {}
    skipped: list[str] = []

    for item in walk_tree(file):
        if isinstance(item.node, h5py.Dataset):
            if item.node.ndim >= 1 and item.node.shape[0] == report.num_events:
                columns[item.path] = item.node
            else:
                skipped.append(item.path)
    if skipped:
        warnings.warn(f"{path}: not copied (not one entry per event): {', '.join(skipped)}",
                      SpanetWarning, stacklevel=2)
    return Source(str(path), file, report.num_events, dict(report.max_objects), columns, dict(file.attrs))


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Column:
    """One output dataset: where, what, and how its rows are adapted from each source."""

    path: str
    dtype: np.dtype
    tail: tuple[int, ...]
    filters: dict[str, Any]
    repad: str | None = None
    """The object input whose padded width this column follows (re-padded to the widest), on
    every object axis: one per object, two for a RELATIVE input's pairwise feature."""
    combined_index: bool = False
    """An unassociated product's index: counts in the combined space, so it moves with re-padding."""
    constants: tuple[int, ...] | None = None
    """A label column: one value per source (``concat --label``), not read from the file."""
    absent: bool | float | None = None
    """For the sources without this optional dataset: what the reader takes in its place
    (:data:`~spanet_lite.dataset.hdf5_layout.ABSENT_READS_AS`), written out."""
    matched: tuple[str, ...] = ()
    """A particle's MASK that some sources lack: its products' target columns. Where it is
    missing, it is written True where all of them are matched (what its absence means)."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """The dataset attributes every source agrees on (a ``units`` that spanet-test reads)."""


@dataclass
class Plan:
    """The output columns for a list of sources, and the function that reads a block of events."""

    spec: EventSpec
    sources: list[Source]
    columns: list[Column]
    widths: dict[str, int]

    @property
    def bytes_per_event(self) -> int:
        return sum(c.dtype.itemsize * int(np.prod(c.tail, dtype=np.int64)) for c in self.columns)

    def read(self, index: int, start: int, stop: int) -> Block:
        """Events ``start:stop`` of source ``index``, adapted to the output columns."""
        source = self.sources[index]
        block: Block = {}
        old_starts = new_starts = None
        for column in self.columns:
            if column.constants is not None:
                block[column.path] = np.full(stop - start, column.constants[index], dtype=column.dtype)
                continue
            if column.path not in source.columns and column.matched:
                products = [read_rows(source.columns[path], start, stop) >= 0 for path in column.matched]
                block[column.path] = np.logical_and.reduce(products).astype(column.dtype)
                continue
            if column.path not in source.columns:
                block[column.path] = np.full(stop - start, column.absent, dtype=column.dtype)
                continue
            values = read_rows(source.columns[column.path], start, stop)
            if column.repad is not None and values.shape[1] < column.tail[0]:
                padded = np.zeros((len(values), *column.tail), dtype=column.dtype)
                width = values.shape[1]
                padded[(slice(None), *(slice(0, width),) * (values.ndim - 1))] = values
                values = padded
            elif column.combined_index and source.widths != self.widths:
                if old_starts is None:
                    old_starts, new_starts = self._offsets(source)
                values = _move_combined(values, old_starts, new_starts)
            block[column.path] = values.astype(column.dtype, copy=False)
        return block

    def _offsets(self, source: Source) -> tuple[np.ndarray, np.ndarray]:
        old = target_index_offsets(self.spec, source.widths)
        new = target_index_offsets(self.spec, self.widths)
        names = [s.name for s in self.spec.sequential]
        return (np.array([old[n] for n in names], dtype=np.int64),
                np.array([new[n] for n in names], dtype=np.int64))

    def blocks(self, chunk_size: int) -> Iterator[tuple[int, int, int]]:
        """(source index, start, stop) for every block of every source, in order."""
        for index, source in enumerate(self.sources):
            for start in range(0, source.num_events, chunk_size):
                yield index, start, min(start + chunk_size, source.num_events)

    @property
    def num_events(self) -> int:
        return sum(s.num_events for s in self.sources)

    def attrs(self) -> dict[str, Any]:
        """File attributes every source agrees on (e.g. the generator's ``process``)."""
        return shared_attrs([s.attrs for s in self.sources])


def shared_attrs(attributes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The attributes that every one of ``attributes`` holds with the same value: what an output
    keeps of its inputs' file and dataset attributes (one input: all of them). Attributes that
    refer to other objects of their file (HDF5 dimension scales) cannot follow into another file."""
    first, rest = attributes[0], attributes[1:]
    return {key: value for key, value in first.items()
            if not _refers(value) and all(key in a and _same(a[key], value) for a in rest)}


def _same(a: Any, b: Any) -> bool:
    """Two attribute values equal, NaN equal to NaN (a NaN every input holds is shared)."""
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # strings, compounds: no NaN to compare
        return bool(np.array_equal(a, b))


def unshared_attrs(attributes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The attribute names some of ``attributes`` hold that :func:`shared_attrs` leaves out
    because the others lack them or give another value (not those that refer to their file)."""
    shared = shared_attrs(attributes)
    names = {key for a in attributes for key, value in a.items() if not _refers(value)}
    return sorted(names - set(shared))


def _refers(value: Any) -> bool:
    if isinstance(value, (h5py.Reference, h5py.RegionReference)):
        return True
    if not isinstance(value, np.ndarray):
        return False
    if _reference_type(value.dtype):
        return True
    return value.dtype == object and any(_refers(item) for item in value.flat)


def _reference_type(dtype: np.dtype) -> bool:
    """A reference, or a compound with one (a dimension scale's REFERENCE_LIST)."""
    if h5py.check_dtype(ref=dtype) is not None:
        return True
    return bool(dtype.fields) and any(_reference_type(field[0]) for field in dtype.fields.values())


def _move_combined(index: np.ndarray, old_starts: np.ndarray, new_starts: np.ndarray) -> np.ndarray:
    """Re-express combined-space indices after the SEQUENTIAL inputs were re-padded."""
    index = index.astype(np.int64, copy=True)
    real = index >= 0
    which = np.searchsorted(old_starts, index[real], side="right") - 1
    index[real] += new_starts[which] - old_starts[which]
    return index


def _check_same_units(path: str, datasets: Sequence[h5py.Dataset], sources: Sequence[Source]) -> None:
    """Refuse to merge a dataset whose inputs name different units: the values would mix
    scales (GeV and TeV) in one column, and the output could name neither. An input naming no
    unit is not a disagreement (the output then names none, by :func:`shared_attrs`)."""
    named = [(stored_units(d.attrs), s.name) for d, s in zip(datasets, sources)]
    named = [(units, source) for units, source in named if units is not None]
    for units, source in named[1:]:
        if units != named[0][0]:
            raise InputError(source, path, f"the units of {named[0][1]} ({named[0][0]!r}): the inputs "
                             "of one output must agree", repr(units))


def _refuse_other_shapes(path: str, datasets: Sequence[h5py.Dataset], sources: Sequence[Source]) -> None:
    """A dataset the event file needs, shaped differently in two inputs beyond what re-padding
    mends (e.g. a RELATIVE feature stored per object in one file and per pair in another):
    dropping it would leave an output that no command reads, so it is refused."""
    shapes = [("N", *d.shape[1:]) for d in datasets]
    for shape, source in zip(shapes[1:], sources[1:]):
        if shape != shapes[0]:
            raise InputError(source.name, path, f"the shape of {sources[0].name}'s {_shape(shapes[0])}: the "
                             "inputs of one output must agree", _shape(shape))


def _shape(shape: tuple[object, ...]) -> str:
    return f"({', '.join(map(str, shape))})"


def make_plan(spec: EventSpec, sources: list[Source], labels: dict[str, list[int]] | None = None) -> Plan:
    """Plan the output columns shared by all ``sources`` (others are dropped with a warning).

    An optional dataset of the layout that some sources lack (a weight, a target MASK) is kept
    and filled for them with what the reader takes in its absence, so every event means what it
    meant in its own file. ``labels`` maps a classification key (``EVENT/signal``) to one label
    per source.
    """
    widths = {name: max(s.widths[name] for s in sources) for name in sources[0].widths}
    sequential = {s.name for s in spec.sequential}
    unassociated = {target_path(p.name, q.name)
                    for p in spec.particles for q in p.products if q.input is None}
    optional = {d.path: ABSENT_READS_AS[d.role] for d in expected_layout(spec)
                if not d.required and d.role in ABSENT_READS_AS}
    required = {d.path for d in expected_layout(spec) if d.required}
    masks = {target_mask_path(p.name): tuple(target_path(p.name, q.name) for q in p.products)
             for p in spec.particles}
    columns: list[Column] = []
    dropped: list[str] = []
    differ = {"the file": unshared_attrs([s.attrs for s in sources])}
    for path in dict.fromkeys(path for s in sources for path in s.columns):  # every input's, in order
        holders = [s for s in sources if path in s.columns]
        datasets = [s.columns[path] for s in holders]
        first = datasets[0]
        partial = len(holders) < len(sources)
        absent = optional.get(path) if partial else None
        matched = masks.get(path, ()) if partial else ()
        if partial and ((absent is None and not matched) or any(d.ndim != 1 for d in datasets)):
            dropped.append(path)
            continue
        group = path.split("/")
        repad = group[1] if (len(group) == 3 and group[0] == "INPUTS" and group[1] in sequential) else None
        # per object (N, W), or a RELATIVE input's per pair (N, W, W): both follow the input's width
        axes = first.ndim - 1
        if repad is not None and not (axes in (1, 2) and all(
            d.shape[1:] == (s.widths[repad],) * axes for d, s in zip(datasets, holders)
        )):
            repad = None
        tail = (widths[repad],) * axes if repad is not None else tuple(first.shape[1:])
        if repad is None and any(tuple(d.shape[1:]) != tail for d in datasets):
            if path in required:  # without it the output would not be a file of this event file
                _refuse_other_shapes(path, datasets, holders)
            dropped.append(path)
            continue
        _check_same_units(path, datasets, holders)
        dtype = np.result_type(*(d.dtype for d in datasets))
        attributes = [dict(d.attrs) for d in datasets]
        differ[path] = unshared_attrs(attributes)
        columns.append(Column(path, np.dtype(dtype), tail, _filters(first), repad=repad,
                              combined_index=path in unassociated, absent=absent, matched=matched,
                              attrs=shared_attrs(attributes)))
    if dropped:
        warnings.warn(f"not copied (missing from an input, or shaped differently): {', '.join(dropped)}",
                      SpanetWarning, stacklevel=2)
    differ = {place: names for place, names in differ.items() if names}
    if differ:  # e.g. each generated file's own seed: the output cannot hold one value for all
        listed = "; ".join(f"{place}: {', '.join(names)}" for place, names in differ.items())
        warnings.warn(f"attributes not kept (the inputs give different values, or some lack them): {listed}",
                      SpanetWarning, stacklevel=2)
    for key, values in (labels or {}).items():
        path = classification_path(key)
        columns.append(Column(path, np.dtype(np.int64), (), {"compression": "gzip", "shuffle": True},
                              constants=tuple(values)))
    return Plan(spec, sources, columns, widths)


def _filters(dataset: h5py.Dataset) -> dict[str, Any]:
    """The input's compression, so an output is stored the way its input was."""
    filters: dict[str, Any] = {}
    if dataset.compression is not None:
        filters["compression"] = dataset.compression
        if dataset.compression_opts is not None:
            filters["compression_opts"] = dataset.compression_opts
    if dataset.shuffle:
        filters["shuffle"] = True
    if dataset.fletcher32:
        filters["fletcher32"] = True
    return filters


# ----------------------------------------------------------------------------- writing


class EventWriter:
    """Appends blocks of events to one output file, in whole HDF5 chunks.

    Datasets are created with room for ``capacity`` events and shrunk to what was written on
    :meth:`close` (operations that filter do not know the count in advance). Rows are held
    back until they fill whole chunks, so each compressed chunk is written once.
    """

    def __init__(self, file: h5py.File, columns: Sequence[Column], capacity: int,
                 attrs: dict[str, Any] | None = None) -> None:
        self.file = file
        self.rows = max(1, min(OUTPUT_CHUNK_ROWS, capacity))
        self.datasets = {
            c.path: file.create_dataset(c.path, shape=(capacity, *c.tail), maxshape=(None, *c.tail),
                                        dtype=c.dtype, chunks=(self.rows, *c.tail), **c.filters)
            for c in columns
        }
        for column in columns:
            self.datasets[column.path].attrs.update(column.attrs)
        for key, value in (attrs or {}).items():
            file.attrs[key] = value
        self.written = 0
        self.pending: list[Block] = []
        self.pending_rows = 0
        self.flush_rows = self.rows * max(1, DEFAULT_CHUNK_SIZE // self.rows)

    def write(self, block: Block) -> None:
        rows = len(next(iter(block.values())))
        if rows == 0:
            return
        self.pending.append(block)
        self.pending_rows += rows
        if self.pending_rows >= self.flush_rows:
            self._flush(self.pending_rows - self.pending_rows % self.rows)

    def _flush(self, rows: int) -> None:
        if rows == 0:
            return
        merged = {k: np.concatenate([b[k] for b in self.pending]) for k in self.pending[0]}
        stop = self.written + rows
        for path, dataset in self.datasets.items():
            if stop > dataset.shape[0]:
                dataset.resize(stop, axis=0)
            dataset[self.written:stop] = merged[path][:rows]
        self.written = stop
        check_hdf5_writes(self.file)  # a full disk stops the operation here, not at its end
        rest = self.pending_rows - rows
        self.pending = [{k: v[rows:] for k, v in merged.items()}] if rest else []
        self.pending_rows = rest

    def close(self) -> int:
        """Write what is left and trim the datasets to the events written; return that count."""
        self._flush(self.pending_rows)
        for dataset in self.datasets.values():
            if dataset.shape[0] != self.written:
                dataset.resize(self.written, axis=0)
        return self.written


def take_rows(block: Block, rows: np.ndarray | slice) -> Block:
    return {k: v[rows] for k, v in block.items()}


def block_rows(block: Block) -> int:
    return len(next(iter(block.values()))) if block else 0


def first_sequential_mask(spec: EventSpec, name: str | None, where: str) -> str:
    """The MASK that ``select`` counts: the named SEQUENTIAL input, else the first; an unknown
    name is one line naming ``where`` (``input_name``, ``spanet-data select --input``)."""
    names = [s.name for s in spec.sequential]
    if name is None:
        return mask_path(names[0])
    if name not in names:
        raise InputError(None, where, f"a SEQUENTIAL input of the event file ({', '.join(names)})",
                         repr(name))
    return mask_path(name)
