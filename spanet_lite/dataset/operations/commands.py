"""The five dataset operations of ``spanet-data``, as plain functions.

Each one validates every input against the event file before writing anything, streams the
events in blocks of ``chunk_size``, writes its outputs atomically (a failure leaves no file
behind) and refuses to write over an input or, without ``overwrite``, over an existing file.

A refusal names the keyword the value was passed as. ``spanet-data`` checks its flags first by
the same rule functions (``check_*`` here, named by flag), so the command's lines name those.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spanet_lite.config.event_file import event_spec_of
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options_file import as_integer
from spanet_lite.config.options_validation import check_chunk_size, check_seed
from spanet_lite.config.suggest import describe
from spanet_lite.dataset.hdf5_layout import mask_values, read_rows
from spanet_lite.dataset.operations.shuffle import DEFAULT_BUCKET_MEMORY, shuffled_blocks
from spanet_lite.dataset.operations.streams import (
    CHUNK_CACHE_BYTES,
    Block,
    EventWriter,
    Plan,
    ProgressFactory,
    Source,
    block_rows,
    check_linked_outputs,
    check_outputs,
    first_sequential_mask,
    make_plan,
    no_progress,
    open_source,
    take_rows,
)
from spanet_lite.dataset.schema import CLASS_LABEL_LIMIT, DEFAULT_CHUNK_SIZE
from spanet_lite.errors import InputError
from spanet_lite.io import all_or_nothing, atomic_hdf5


@dataclass(frozen=True)
class Written:
    """One output file and the number of events in it."""

    path: Path
    events: int


@dataclass(frozen=True)
class Streaming:
    """How an operation moves events: block size, progress reporting, scratch space for shuffles.

    Values no operation could use are refused here, in one line naming the keyword.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: ProgressFactory = no_progress
    validation_progress: bool = False
    scratch_dir: Path | None = None
    """Where a shuffle keeps its scratch file (default: beside the first output)."""
    bucket_memory: float = DEFAULT_BUCKET_MEMORY
    """Bytes one shuffle bucket may take (``--memory`` MB times 2**20, not rounded)."""

    def __post_init__(self) -> None:
        # Frozen: the checked values (chunk_size=16.0 is the int 16) are stored as the rules return them.
        object.__setattr__(self, "chunk_size", check_chunk_size(self.chunk_size, "chunk_size"))
        object.__setattr__(self, "bucket_memory",
                           check_bucket_memory(self.bucket_memory, "bucket_memory", "bytes"))
        check_scratch_dir(self.scratch_dir, "scratch_dir")


def check_bucket_memory(amount: object, where: str, unit: str, bytes_per_unit: int = 1) -> float:
    """A shuffle bucket's memory, ``amount`` in ``unit`` (``Streaming`` takes bytes,
    ``spanet-data --memory`` MB, ``bytes_per_unit`` 2**20): a positive number whose bytes are
    finite (``1e303`` MB is ``inf`` bytes, which the bucket count cannot be divided by), else one
    line naming ``where``. Returns the bytes."""
    if not _is_number(amount):
        raise InputError(None, where, f"a positive number of {unit}", describe(amount))
    if not (math.isfinite(amount) and amount > 0):  # type: ignore[arg-type, operator]
        raise InputError(None, where, f"a positive number of {unit}", str(amount))
    total = float(amount) * bytes_per_unit  # type: ignore[arg-type]
    if not math.isfinite(total):
        raise InputError(None, where, f"a positive number of {unit} whose bytes are finite", str(amount))
    return total


def _is_number(value: object) -> bool:
    """A real number (a bool is none, though Python counts it as one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_label_count(count: int, inputs: int, where: str) -> None:
    """:func:`concat`'s labels: one per input, the n-th for the n-th input (``spanet-data
    concat --label`` once per input; ``labels`` a list per key), else one line naming ``where``."""
    if count != inputs:
        raise InputError(None, where, f"one label per input ({inputs}), in the inputs' order", str(count))


def check_labels(labels: object, inputs: int, where: str = "labels") -> dict[str, list[int]]:
    """:func:`concat`'s ``labels`` from Python: a mapping from a classification key to one class
    label per input (a list, tuple or 1-D numpy array), each an integer >= 0 (the rule of
    ``--label``, whose text the command parses itself), returned as lists of ints under the
    full key (``signal`` is ``EVENT/signal``; giving both is refused, as one would be lost), and
    below ``2**31`` as the file's validator wants (``2**63`` was an OverflowError traceback). A
    string for a list or a label of ``"a"`` failed deep in ``int()`` as a traceback."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InputError(None, where, "a mapping from a classification key to one label per input",
                         describe(labels))
    checked: dict[str, list[int]] = {}
    full_keys: dict[str, str] = {}
    for key, values in labels.items():
        place = f"{where}[{key!r}]"
        if not isinstance(key, str) or not key:
            raise InputError(None, where, "classification keys as text (signal or EVENT/signal)", repr(key))
        full = key if "/" in key else f"EVENT/{key}"
        if full in full_keys:  # signal and EVENT/signal: one dataset, one would be dropped
            raise InputError(None, place, f"one entry per classification (also given as {full_keys[full]!r})",
                             f"two for {full}")
        full_keys[full] = key
        if isinstance(values, np.ndarray) and values.ndim == 1:  # a notebook's array, as before the rule
            values = values.tolist()
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InputError(None, place, "a list of labels, one per input", describe(values))
        check_label_count(len(values), inputs, place)
        checked[full] = []
        for index, value in enumerate(values):
            label = as_integer(value, f"{place}[{index}]")
            if label < 0:
                raise InputError(None, f"{place}[{index}]", "a class label >= 0", str(label))
            if label >= CLASS_LABEL_LIMIT:  # the file's validator refuses it; 2**63 overflowed int64
                raise InputError(None, f"{place}[{index}]",
                                 f"a class label below 2**31 = {CLASS_LABEL_LIMIT:,}", str(label))
            checked[full].append(label)
    return checked


def check_scratch_dir(folder: str | Path | None, where: str) -> None:
    """A shuffle's scratch folder, when given, must exist: it is never made for the user."""
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise InputError(None, where, "a folder path", describe(folder))
    if folder is not None and not Path(folder).is_dir():
        got = "a file" if Path(folder).exists() else "no such folder"
        raise InputError(Path(folder), where, "an existing folder", got)


def concat(
    inputs: Sequence[str | Path],
    output: str | Path,
    spec: EventSpec | str | Path,
    *,
    labels: Mapping[str, Sequence[int]] | None = None,
    overwrite: bool = False,
    streaming: Streaming = Streaming(),
) -> list[Written]:
    """All events of ``inputs``, in order, into ``output``.

    Padded widths may differ between inputs: the output has the widest. ``labels`` adds a
    classification target per input, e.g. ``{"EVENT/signal": [1, 0]}`` for a signal and a
    background file (keys as in :attr:`ClassificationTarget.key`).
    """
    spec = event_spec_of(spec)
    _check_list(inputs, "inputs", "input files")
    labels = check_labels(labels, len(inputs))
    check_outputs(inputs, [output], overwrite)
    checked = dataclasses.replace(spec, classifications=tuple(
        t for t in spec.classifications if t.key not in labels))
    with contextlib.ExitStack() as stack:
        sources = [_open(path, checked, stack, streaming) for path in inputs]
        for key in labels:
            for source in sources:
                if f"CLASSIFICATIONS/{key}" in source.columns:
                    raise InputError(source.name, f"CLASSIFICATIONS/{key}",
                                     "no such dataset yet (the label adds it)", "an existing dataset")
        plan = make_plan(spec, sources, labels)
        blocks = _read_all(plan, streaming, "concatenating")
        return _write(plan, blocks, [output], [plan.num_events], streaming)


def split(
    input: str | Path,
    outputs: Sequence[str | Path],
    fractions: Sequence[float],
    spec: EventSpec | str | Path,
    *,
    shuffle: bool = False,
    seed: int = 0,
    by_event_number: bool = False,
    event_number: str | None = None,
    overwrite: bool = False,
    streaming: Streaming = Streaming(),
) -> list[Written]:
    """Cut ``input`` into ``outputs`` holding ``fractions`` of its events.

    Default: consecutive ranges, in file order. ``shuffle``: a random order first (seeded).
    ``by_event_number``: each event goes where a hash of its number sends it, the way
    experiments split by event number: an event's destination depends on nothing else, so it
    stays put when files are re-made or extended. The number is the integer dataset
    ``event_number`` (e.g. ``INFO/event_number``), or the event's position in the file.
    Fractions are then met on average, not exactly.
    """
    spec = event_spec_of(spec)
    _check_list(outputs, "outputs", "output files")
    _check_list(fractions, "fractions", "fractions")
    seed = check_seed(seed, "seed")
    fractions = check_fractions(fractions, len(outputs), "fractions")
    check_one_order(shuffle, by_event_number, ("shuffle", "by_event_number"))
    check_outputs([input], outputs, overwrite, listed=True)
    with contextlib.ExitStack() as stack:
        plan = make_plan(spec, [_open(input, spec, stack, streaming)])
        total = plan.num_events
        if by_event_number:
            numbers = _event_numbers(plan, event_number)
            edges = np.cumsum(fractions)[:-1]
            routed = _route_by_number(plan, streaming, numbers, edges)
            return _write(plan, routed, outputs, [total] * len(outputs), streaming, routed=True, exact=False)
        counts = _counts(fractions, total)
        if any(c == 0 for c in counts):  # spanet-data names its flag (cli.common.flags_for)
            raise InputError(None, "fractions", f"a part of at least one event for every output "
                             f"({total} events)", " ".join(f"{f:g}" for f in fractions))
        if shuffle:
            blocks = _shuffled(plan, seed, outputs, streaming)
        else:
            blocks = _read_all(plan, streaming, "splitting")
        return _write(plan, blocks, outputs, counts, streaming)


def shuffle(
    input: str | Path,
    output: str | Path,
    spec: EventSpec | str | Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    streaming: Streaming = Streaming(),
) -> list[Written]:
    """The events of ``input`` in a uniformly random order (out of core, reproducible from ``seed``)."""
    spec = event_spec_of(spec)
    seed = check_seed(seed, "seed")
    check_outputs([input], [output], overwrite)
    with contextlib.ExitStack() as stack:
        plan = make_plan(spec, [_open(input, spec, stack, streaming)])
        blocks = _shuffled(plan, seed, [output], streaming)
        return _write(plan, blocks, [output], [plan.num_events], streaming)


def select(
    input: str | Path,
    output: str | Path,
    spec: EventSpec | str | Path,
    *,
    min_objects: int | None = None,
    max_objects: int | None = None,
    limit: int | None = None,
    input_name: str | None = None,
    overwrite: bool = False,
    streaming: Streaming = Streaming(),
) -> list[Written]:
    """The events of ``input`` whose number of real objects in ``input_name`` (default: the
    first SEQUENTIAL input, usually the jets) lies in [``min_objects``, ``max_objects``];
    at most ``limit`` of them, the first ones in file order."""
    spec = event_spec_of(spec)
    min_objects, max_objects, limit = check_selection(
        min_objects, max_objects, limit, ("min_objects", "max_objects", "limit"))
    mask = first_sequential_mask(spec, input_name, "input_name")
    check_outputs([input], [output], overwrite)
    with contextlib.ExitStack() as stack:
        plan = make_plan(spec, [_open(input, spec, stack, streaming)])
        capacity = plan.num_events if limit is None else min(limit, plan.num_events)

        def chosen() -> Iterator[Block]:
            kept = 0
            for block in _read_all(plan, streaming, "selecting"):
                count = mask_values(block[mask]).sum(axis=1)
                keep = np.ones(len(count), dtype=bool)
                if min_objects is not None:
                    keep &= count >= min_objects
                if max_objects is not None:
                    keep &= count <= max_objects
                rows = np.flatnonzero(keep)[: capacity - kept]
                kept += len(rows)
                yield take_rows(block, rows)
                if kept >= capacity:
                    return

        ranges = {(False, True): f"at least {min_objects}", (True, False): f"at most {max_objects}",
                  (False, False): f"{min_objects} to {max_objects}"}
        bounds = ranges.get((min_objects is None, max_objects is None))
        empty = None if bounds is None else f"no event has {bounds} objects in {mask.split('/')[1]}"
        return _write(plan, chosen(), [output], [capacity], streaming, routed=False, exact=False, empty=empty)


def convert_v1(
    input: str | Path,
    output: str | Path,
    spec: EventSpec | str | Path,
    *,
    overwrite: bool = False,
    streaming: Streaming = Streaming(),
) -> list[Written]:
    """A SPANet 1.x file (``source/...``, ``<particle>/...``) in the current layout; see
    :mod:`spanet_lite.dataset.operations.v1` for the mapping."""
    spec = event_spec_of(spec)
    from spanet_lite.dataset.operations.v1 import v1_name, v1_view

    check_outputs([input], [output], overwrite)
    with contextlib.ExitStack() as stack:
        view = stack.enter_context(v1_view(input, spec))
        source = open_source(input, spec, stack, chunk_size=streaming.chunk_size,
                             validation_progress=streaming.validation_progress, file=view,
                             rename=lambda where: v1_name(where, spec))
        source.attrs = {}
        plan = make_plan(spec, [source])
        return _write(plan, _read_all(plan, streaming, "converting"), [output], [plan.num_events], streaming)


# ----------------------------------------------------------------------------- helpers


def _check_list(values: object, name: str, what: str) -> None:
    """A single path (or number) where a list belongs would be iterated character by character."""
    if isinstance(values, (str, bytes, os.PathLike)) or not isinstance(values, Sequence):
        got = repr(str(values)) if isinstance(values, os.PathLike) else describe(values)
        raise InputError(None, name, f"a list of {what}", got)


def _open(path: str | Path, spec: EventSpec, stack: contextlib.ExitStack, streaming: Streaming) -> Source:
    return open_source(path, spec, stack, chunk_size=streaming.chunk_size,
                       validation_progress=streaming.validation_progress)


def _read_all(plan: Plan, streaming: Streaming, description: str) -> Iterator[Block]:
    advance = streaming.progress(description, plan.num_events)
    for index, start, stop in plan.blocks(streaming.chunk_size):
        yield plan.read(index, start, stop)
        advance(stop - start)


def _shuffled(plan: Plan, seed: int, outputs: Sequence[str | Path], streaming: Streaming) -> Iterator[Block]:
    """The shuffled events; a full disk under the scratch file names ``--scratch-dir`` when the
    user gave one, else the first output (the scratch file sits beside it, on its disk)."""
    scratch = streaming.scratch_dir or Path(outputs[0]).resolve().parent
    return shuffled_blocks(plan, seed, Path(scratch), chunk_size=streaming.chunk_size,
                           memory=streaming.bucket_memory, progress=streaming.progress,
                           reported_as=Path(streaming.scratch_dir or outputs[0]))


def check_fractions(fractions: Sequence[object], outputs: int, where: str) -> list[float]:
    """:func:`split`'s fractions: one per output, each a finite number > 0, adding up to 1;
    returned as floats. A string (``"0.5"`` from a notebook) is refused for what it is, before
    any arithmetic would fail on it."""
    for fraction in fractions:
        if not _is_number(fraction):
            raise InputError(None, where, "numbers (fractions > 0)", describe(fraction))
    fractions = [float(f) for f in fractions]  # type: ignore[arg-type]
    shown = " ".join(f"{f:g}" for f in fractions)
    if len(fractions) != outputs:
        raise InputError(None, where, f"one fraction per output ({outputs})", f"{len(fractions)} ({shown})")
    if not all(math.isfinite(f) and f > 0 for f in fractions):
        raise InputError(None, where, "fractions > 0", shown)
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise InputError(None, where, "fractions that add up to 1", f"{shown} (sum {sum(fractions):g})")
    return fractions


def check_one_order(shuffle: bool, by_event_number: bool, names: tuple[str, str]) -> None:
    """:func:`split` takes a random order or the event numbers' hash, not both (``names``: how
    the caller spells the two)."""
    if shuffle and by_event_number:
        raise InputError(None, names[0], f"either {names[0]} or {names[1]}, not both")


def check_selection(min_objects: object, max_objects: object, limit: object,
                    names: tuple[str, str, str]) -> tuple[int | None, int | None, int | None]:
    """:func:`select`'s bounds: counts >= 0, a limit >= 1, the minimum not above the maximum
    (``names``: how the caller spells the three). Each an integer by the one integer rule
    (``as_integer``: ``6.0`` counts, ``"6"`` does not), returned as ints (None: no bound)."""
    counts: list[int | None] = []
    for name, value, least in zip(names, (min_objects, max_objects, limit), (0, 0, 1)):
        count = None if value is None else as_integer(value, name)
        if count is not None and count < least:
            raise InputError(None, name, f"a number >= {least}", str(count))
        counts.append(count)
    low, high, most = counts
    if low is not None and high is not None and low > high:
        raise InputError(None, names[1], f"a number >= {names[0]} ({low})", str(high))
    return low, high, most


def _counts(fractions: Sequence[float], total: int) -> list[int]:
    """Events per output: ``fractions * total`` rounded so that they add up to ``total``
    (largest remainders get the leftover events)."""
    exact = np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions)) * total
    counts = np.floor(exact).astype(np.int64)
    leftover = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    return [int(c) for c in counts]


def _event_numbers(plan: Plan, path: str | None) -> str | None:
    if path is None:
        return None
    source = plan.sources[0]
    dataset = source.columns.get(path.strip("/"))
    if dataset is None or dataset.ndim != 1 or dataset.dtype.kind not in "iu":
        got = "nothing" if dataset is None else f"{dataset.dtype} of shape {dataset.shape}"
        raise InputError(source.name, path, "an integer dataset with one event number per event", got)
    return path.strip("/")


def _hash_unit(numbers: np.ndarray) -> np.ndarray:
    """splitmix64 of each number, as a float in [0, 1): well mixed, and the same on every machine."""
    with np.errstate(over="ignore"):
        z = numbers.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _route_by_number(plan: Plan, streaming: Streaming, number_path: str | None,
                     edges: np.ndarray) -> Iterator[tuple[Block, np.ndarray]]:
    advance = streaming.progress("splitting", plan.num_events)
    source = plan.sources[0]
    for _, start, stop in plan.blocks(streaming.chunk_size):
        numbers = (read_rows(source.columns[number_path], start, stop) if number_path is not None
                   else np.arange(start, stop, dtype=np.int64))
        yield plan.read(0, start, stop), np.searchsorted(edges, _hash_unit(numbers), side="right")
        advance(stop - start)


def _write(
    plan: Plan,
    blocks: Iterable[Block] | Iterable[tuple[Block, np.ndarray]],
    outputs: Sequence[str | Path],
    capacities: Sequence[int],
    streaming: Streaming,
    *,
    routed: bool = False,
    exact: bool = True,
    empty: str | None = None,
) -> list[Written]:
    """Write a stream of blocks to ``outputs`` atomically, all or none of them (a failure
    while one is closed removes those already finished, :func:`~spanet_lite.io.all_or_nothing`).

    Unrouted blocks fill the outputs one after the other (``capacities`` events each);
    routed blocks come with the output index of every event. An output that would hold no
    event is an error (an empty file is not a dataset), and nothing is written; ``empty`` says
    why it would, where the operation knows (a selection no event passes).
    """
    check_linked_outputs(plan.sources, outputs)
    attrs = plan.attrs()
    with all_or_nothing() as group, contextlib.ExitStack() as stack:
        writers = []
        for output, capacity in zip(outputs, capacities):
            file = stack.enter_context(atomic_hdf5(output, group=group, rdcc_nbytes=CHUNK_CACHE_BYTES))
            writers.append(EventWriter(file, plan.columns, max(1, capacity), attrs))
        target = 0
        for item in blocks:
            if routed:
                block, where = item  # type: ignore[misc]
                for index, writer in enumerate(writers):
                    writer.write(take_rows(block, where == index))
                continue
            block = item  # type: ignore[assignment]
            offset, rows = 0, block_rows(block)
            while offset < rows:
                writer = writers[target]
                room = capacities[target] - writer.written - writer.pending_rows
                part = min(room, rows - offset)
                writer.write(take_rows(block, slice(offset, offset + part)))
                offset += part
                if part == room and target < len(writers) - 1:
                    target += 1
                elif part == room:
                    break
        written = [Written(Path(output), writer.close()) for output, writer in zip(outputs, writers)]
        for result in written:
            if result.events == 0:
                raise InputError(result.path, "", "at least one event in every output",
                                 "none" if empty is None else f"none: {empty}")
        if exact:
            assert [w.events for w in written] == list(capacities), "stream and capacities disagree"
    return written
