"""Check an HDF5 file against the layout an :class:`EventSpec` expects (:mod:`.hdf5_layout`).

Two passes: the structure (presence, kind, rank, dtype, shape) from metadata alone, then a
chunked content scan. :func:`validate_file` reads the file ``chunk_size`` events at a time, so
its memory use does not grow with the number of events. It never raises for a bad layout:
every finding becomes a :class:`Problem` in the returned :class:`ValidationReport`. Only a
file that cannot be read at all raises :class:`~spanet_lite.errors.InputError`
(``spanet-inspect`` exit code 2).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from spanet_lite.config.event_file import event_spec_of
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options_validation import check_chunk_size
from spanet_lite.config.suggest import did_you_mean
from spanet_lite.dataset.hdf5_layout import (
    EVENT_WEIGHT_DATASET,
    ExpectedDataset,
    classification_path,
    expected_layout,
    mask_path,
    mask_values,
    pair_features,
    read_rows,
    regression_path,
    target_index_offsets,
    target_mask_path,
    target_path,
)
from spanet_lite.dataset.statistics import RunningMoments
from spanet_lite.dataset.value_checks import FINITE_REAL, ValueChecks, nonfinite_real
from spanet_lite.errors import InputError

DEFAULT_CHUNK_SIZE = 65536
CLASS_LABEL_LIMIT = 2**31
"""Class labels are below this: they travel as int32 once read (DataModule.setup)."""
SCAN_BLOCK_BYTES = 64 * 2**20
"""The content scan reads at most ``chunk_size`` events at a time, and fewer where the widest
dataset would take more than this per block (65,536 events of 10 float32 slots take 2.6 MB)."""


# role -> (dtype kinds that are right, kinds we convert with an info note, what we expect in words)
_DTYPES: dict[str, tuple[str, str, str]] = {
    "mask": ("b", "iu", "bool"),
    "feature": ("f", "iub", "a float type"),
    "global": ("f", "iub", "a float type"),
    "global_mask": ("b", "iu", "bool"),
    "target": ("iu", "", "an integer type (object index)"),
    "target_mask": ("b", "iu", "bool"),
    "target_weight": ("f", "iu", "a float type"),
    "regression": ("f", "iu", "a float type"),
    "classification": ("iu", "b", "an integer type (class label)"),
    "event_weight": ("f", "iu", "a float type"),
}
_CONVERTED_TO = {"mask": "bool (non-zero = real object)", "global_mask": "bool (non-zero = present)",
                 "target_mask": "bool", "classification": "int64"}


MASKED_UNMATCHED = (
    "{count:,} event(s) with MASK True but a product not matched (-1): SPANet counts such a particle "
    "as reconstructable (always wrong in its tables); spanet_lite counts it as not "
    "reconstructable (every product matched AND MASK)"
)
"""A file's explicit particle MASK over an unmatched product: one of the few places SPANet's reading
of a dataset and ours part (docs/migrating_from_spanet.md), said once per particle."""


@dataclass(frozen=True)
class Problem:
    """One finding. ``where`` is the HDF5 path it concerns ("" for the whole file).

    Error messages read ``expected X, got Y`` so that one can become an ``InputError`` as is.
    """

    level: Literal["error", "warning", "info"]
    where: str
    message: str
    code: str = field(default="", compare=False)
    """What kind of finding, for programs that filter: ``missing``, ``kind``, ``dtype``, ``shape``,
    ``events``, ``objects``, ``empty``, ``nonfinite``, ``index_range``, ``index_padded``,
    ``index_repeated``, ``label``, ``unused``, ``converted``, ``mask_unmatched``; from the value checks
    (:mod:`.value_checks`) ``log_domain``, ``empty_mask``, ``weight``, ``label_gap``."""




@dataclass
class ValidationReport:
    """What :func:`validate_file` found.

    ``summary`` (JSON-able) holds ``events``; ``inputs`` (per input: kind, ``max_objects``,
    ``objects_mean``, ``objects_max``); ``particles`` (fractions ``fully_matched``,
    ``partially_matched``, ``not_matched``); ``regressions`` (``count`` of non-NaN values,
    ``nan_fraction``, ``mean``, ``std``); ``classifications`` (``class_counts``, ``missing``).
    Parts whose datasets are broken are left out of the summary.
    """

    source: str
    num_events: int
    max_objects: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there is no error (info notes do not count)."""
        return self.first_error() is None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def first_error(self) -> Problem | None:
        return next((p for p in self.problems if p.level == "error"), None)

    def warning_lines(self) -> list[str]:
        """Each warning as ``source: place: message``, the line training and predict print."""
        return [f"{self.source}: {p.where}: {p.message}" for p in self.problems if p.level == "warning"]

    def raise_for_errors(self) -> None:
        """Raise the first error as an :class:`InputError` (for loaders that cannot go on)."""
        problem = self.first_error()
        if problem is not None:
            more = len(self.errors) - 1
            suffix = f" ({more} more problem(s): run spanet-inspect --event-file)" if more else ""
            raise InputError(self.source, problem.where, problem.message + suffix)


# ----------------------------------------------------------------------------- opening


def open_h5(path: str | Path, *, chunk_cache_bytes: int | None = None) -> h5py.File:
    """Open ``path`` read-only; a missing, non-HDF5 or truncated file is a one-line InputError.

    ``chunk_cache_bytes`` sets HDF5's per-dataset chunk cache (None: HDF5's default); a reader
    that streams every chunk once gains nothing from it but memory (0 turns it off).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "", "an existing HDF5 file", "no such file")
    if path.is_dir():
        raise InputError(path, "", "an HDF5 file", "a directory")
    cache = {} if chunk_cache_bytes is None else {"rdcc_nbytes": chunk_cache_bytes}
    try:
        return h5py.File(path, "r", **cache)
    except OSError as error:
        raise InputError(path, "", "a readable HDF5 file", _describe_h5_error(error)) from None


IN_MEMORY_BYTES = 512 * 2**20
"""A file whose datasets, as the event file names them, take at most this much once decompressed
is read into memory once to be checked and then predicted on or tested (:func:`in_memory`): the
INPUTS of 2.5M all-hadronic ttbar events (10 jet slots), a modest addition to what torch itself
holds, so a prediction job sized for streaming still fits."""


@contextlib.contextmanager
def in_memory(
    file: h5py.File,
    spec: EventSpec,
    *,
    event_weight_dataset: str = EVENT_WEIGHT_DATASET,
    inputs_only: bool = False,
    budget: int | None = None,
) -> Iterator[h5py.File]:
    """The datasets of ``file`` that :func:`validate_h5` checks (same arguments), decompressed once
    into an HDF5 file held in memory, or ``file`` itself.

    ``spanet-predict`` and ``spanet-test`` check a file (:func:`validate_h5`, a full read) before
    they read it again batch by batch; a compressed file was then decompressed twice, which was
    most of what predict spends on the host, the part a GPU cannot shorten (docs/training.md).
    The copy holds the datasets the event file names, uncompressed, with their dtypes and shapes,
    so the check and the reader find there the values they find on disk (attributes stay behind:
    neither reads them; read those from ``file``). ``file`` itself is given when a named dataset
    is missing or not a dataset (the check then says so, with its suggestions), when they would
    take more than ``budget`` bytes, or when reading them fails (the check names the damage).
    ``budget`` defaults to :data:`IN_MEMORY_BYTES`.
    """
    layout = expected_layout(spec, event_weight_dataset=event_weight_dataset, inputs_only=inputs_only)
    copy = _copy_datasets(file, layout, IN_MEMORY_BYTES if budget is None else budget)
    if copy is None:
        yield file
        return
    try:
        yield copy
    finally:
        copy.close()


_COPIES = itertools.count()
"""Numbers the in-memory copies: two of one file open at once (``run.predict`` on it in two
threads, or spanet-test's check beside predict's) under one name failed with HDF5's "unable to
truncate a file which is already open", a traceback."""


def _copy_datasets(file: h5py.File, layout: Iterable[ExpectedDataset], budget: int) -> h5py.File | None:
    """The copy :func:`in_memory` gives, or None for anything but plain numeric datasets that
    fit and read: whatever else the file holds, the check reports from the file itself."""
    found: list[tuple[str, h5py.Dataset]] = []
    try:
        for expected in layout:
            node = file.get(expected.path)
            if node is None and not expected.required and _dangling_link(file, expected.path) is None \
                    and not _under_dataset(file, expected.path, links=True):
                continue  # absent, not blocked: a dataset or dead link at WEIGHTS is an error the check names
            if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "biuf" or node.shape is None:
                return None  # a null dataspace (h5py.Empty) has no size: the check names it
            found.append((expected.path, node))
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):  # a broken link, damaged metadata
        return None
    if sum(node.size * node.dtype.itemsize for _, node in found) > budget:
        return None
    name = f"{file.filename}#in-memory-{next(_COPIES)}"  # HDF5 refuses to create a name held open
    copy = h5py.File(name, "w", driver="core", backing_store=False)
    try:
        for path, node in found:
            copy.create_dataset(path, data=node[()])
    except (OSError, RuntimeError, ValueError, TypeError, MemoryError):  # a damaged chunk, no memory
        copy.close()
        return None
    return copy


def _describe_h5_error(error: OSError) -> str:
    text = str(error)
    if "signature not found" in text:
        return "not an HDF5 file (no HDF5 signature)"
    if "truncated" in text:
        detail = text[text.find("truncated"):].rstrip(")")
        return f"a truncated file ({detail})"
    return text


@dataclass(frozen=True)
class TreeItem:
    """One place in an HDF5 file's tree, as :func:`walk_tree` finds it."""

    path: str
    depth: int
    """1 for the top level."""
    kind: Literal["group", "dataset", "link", "loop"]
    """``link``: a dangling soft or external link (``node`` None); ``loop``: a link to a group
    that holds it, not followed."""
    node: h5py.Group | h5py.Dataset | None


def walk_tree(root: h5py.Group) -> Iterator[TreeItem]:
    """Every group and dataset under ``root`` in h5py's order, links followed, so that a dataset
    reached through a soft or external link is found where the link is (``visititems`` skips it).

    A link back to a group that encloses it (``INFO/back -> /``, soft or hard) would be followed
    forever, until Python's RecursionError: it is yielded once as a ``loop`` and not entered.
    The walk keeps its own stack, so no nesting depth exhausts Python's.
    """
    stack: list[tuple[str, Iterator[str], h5py.Group]] = [("", iter(root), root)]
    while stack:
        prefix, names, group = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        node = group.get(name)
        path, depth = prefix + name, len(stack)
        if isinstance(node, h5py.Group):
            if any(node.id == enclosing.id for _, _, enclosing in stack):
                yield TreeItem(path, depth, "loop", node)
            else:
                yield TreeItem(path, depth, "group", node)
                stack.append((path + "/", iter(node), node))
        elif isinstance(node, h5py.Dataset):
            yield TreeItem(path, depth, "dataset", node)
        else:
            yield TreeItem(path, depth, "link", None)


# ----------------------------------------------------------------------------- validation


def validate_file(
    path: str | Path,
    spec: EventSpec | str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
    event_weight_dataset: str = EVENT_WEIGHT_DATASET,
    inputs_only: bool = False,
) -> ValidationReport:
    """Check the file at ``path`` against ``spec``; see the module docstring for the layout.

    ``spec`` is an :class:`EventSpec` or the event file naming one (as every API that takes a
    topology accepts: the path was an AttributeError deep inside).
    ``inputs_only`` checks the INPUTS alone (see :func:`expected_layout`). Raises
    :class:`InputError` only when the file (or the event file) cannot be opened or read.
    """
    spec = event_spec_of(spec)
    with open_h5(path) as file:
        return validate_h5(file, spec, source=str(path), chunk_size=chunk_size, progress=progress,
                           event_weight_dataset=event_weight_dataset, inputs_only=inputs_only)


def validate_h5(
    file: h5py.File,
    spec: EventSpec,
    *,
    source: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
    event_weight_dataset: str = EVENT_WEIGHT_DATASET,
    inputs_only: bool = False,
) -> ValidationReport:
    """Like :func:`validate_file`, for a file that is already open (``source`` names it)."""
    chunk_size = check_chunk_size(chunk_size, "chunk_size")
    layout = expected_layout(spec, event_weight_dataset=event_weight_dataset, inputs_only=inputs_only)
    problems: list[Problem] = []
    try:
        usable, num_events, max_objects = _check_structure(file, spec, layout, problems, inputs_only)
        if not inputs_only:  # a file to predict on may hold anything besides its INPUTS
            problems += _unused_datasets(file, layout)
        report = ValidationReport(source, num_events, max_objects, problems)
        if num_events == 0 and usable:
            problems.insert(0, Problem("error", "", "expected at least one event, got 0", "empty"))
        scan = _ContentScan(file, spec, usable, num_events, max_objects, training_rules=not inputs_only)
        findings = scan.run(chunk_size, progress)
        report.summary = scan.summary()
    except (OSError, RuntimeError) as error:  # h5py: damaged metadata or chunks, a soft-link loop
        raise InputError(source, "", "a readable HDF5 file", str(error)) from None
    # Content errors go after the structural ones, then warnings, info notes last.
    errors = [p for p in problems if p.level == "error"] + [p for p in findings if p.level == "error"]
    report.problems = errors + [p for p in findings if p.level == "warning"] + [
        p for p in problems if p.level == "info"]
    return report


def _near_miss(file: h5py.File, path: str) -> str:
    """`` (did you mean 'btag'?)`` when the missing dataset's group holds one of a close name (an
    event file's ``btg`` against the file's ``btag``), else ``""``."""
    parent, _, name = path.rpartition("/")
    group = file.get(parent) if parent else None
    if not isinstance(group, h5py.Group):
        return ""
    return did_you_mean(name, [key for key, node in group.items() if isinstance(node, h5py.Dataset)])


def _dangling_link(file: h5py.File, path: str) -> str | None:
    """How a link at ``path`` that leads nowhere is named, or None when there is none there. A
    dangling link at an optional dataset (the event weights) was read as "no weights": a run
    trained unweighted and a test scored with weight 1, without a word."""
    try:
        link = file.get(path, getlink=True)
    except (KeyError, OSError, RuntimeError, ValueError):
        return None
    if isinstance(link, h5py.SoftLink):
        return f"a soft link to nothing ({link.path})"
    if isinstance(link, h5py.ExternalLink):
        return f"an external link to nothing ({link.path} in {link.filename})"
    return None


def _check_structure(
    file: h5py.File,
    spec: EventSpec,
    layout: Iterable[ExpectedDataset],
    problems: list[Problem],
    inputs_only: bool = False,
) -> tuple[dict[str, ExpectedDataset], int, dict[str, int]]:
    """Check presence, kind, rank, dtype and shape from metadata alone.

    Returns the datasets that are fit for reading (keyed by path), the number of events and
    the width of each SEQUENTIAL input whose MASK is usable.
    """
    missing_groups = _missing_groups(file, spec, problems, inputs_only)
    usable: dict[str, ExpectedDataset] = {}
    for expected in layout:
        node = file.get(expected.path)
        if node is None:
            # optional or not, a link someone made, or a dataset where a group above it belongs
            # (WEIGHTS itself a dataset), means the data was meant to be there
            got = _dangling_link(file, expected.path)
            if got is None and not any(expected.path.startswith(g + "/") for g in missing_groups):
                blocked = _under_dataset(file, expected.path, links=True)
                if expected.required or blocked:
                    got = "nothing" + (blocked or _near_miss(file, expected.path))
            if got is not None:
                wanted = _describe_role(expected)
                problems.append(Problem("error", expected.path, f"expected {wanted}, got {got}", "missing"))
            continue
        if not isinstance(node, h5py.Dataset):
            got = _node_kind(node)
            problems.append(Problem("error", expected.path, f"expected a dataset, got {got}", "kind"))
            continue
        if _dtype_ok(expected, node.dtype, problems) and _rank_ok(expected, node.shape, problems):
            usable[expected.path] = expected

    # Every usable dataset must agree with the first one on the number of events, and every
    # SEQUENTIAL feature with its MASK on the number of slots.
    num_events = 0
    reference: str | None = None
    max_objects: dict[str, int] = {}
    for path, expected in list(usable.items()):
        shape = file[path].shape
        if reference is None:
            reference, num_events = path, shape[0]
        elif shape[0] != num_events:
            message = f"expected {num_events} events like {reference}, got {shape[0]}"
            problems.append(Problem("error", path, message, "events"))
            del usable[path]
            continue
        if expected.role == "mask":
            max_objects[expected.input or ""] = shape[1]
        elif expected.role == "feature":
            width = max_objects.get(expected.input or "")
            if width is None:
                del usable[path]  # no usable MASK: already reported
            elif shape[1] != width or (len(shape) == 3 and shape[2] != width):
                like = mask_path(expected.input or "")
                got = shape[1] if shape[1] != width else f"{shape[2]} partners per object"
                message = f"expected {width} objects per event like {like}, got {got}"
                problems.append(Problem("error", path, message, "objects"))
                del usable[path]
    return usable, num_events, max_objects


def _missing_groups(
    file: h5py.File, spec: EventSpec, problems: list[Problem], inputs_only: bool = False
) -> set[str]:
    """Report a whole missing input or particle group once instead of each dataset in it."""
    missing: set[str] = set()
    groups = [(f"INPUTS/{s.name}", f"the {s.kind} input {s.name} ({s.num_features} features"
               + (" and a MASK)" if s.has_objects else ")")) for s in spec.inputs]
    groups += [(f"TARGETS/{p.name}", f"the targets of particle {p.name} ({', '.join(p.product_names)})")
               for p in spec.particles if not inputs_only]
    for path, what in groups:
        node = file.get(path)
        if isinstance(node, h5py.Group):
            continue
        missing.add(path)
        if node is not None:
            got = _node_kind(node)
        else:
            got = _dangling_link(file, path) or "nothing" + _under_dataset(file, path)
        problems.append(Problem("error", path, f"expected a group with {what}, got {got}",
                                "kind" if node is not None else "missing"))
    return missing


def _node_kind(node: object) -> str:
    """What an HDF5 object found where another kind belongs is: a named datatype
    (``file["x"] = np.dtype("f4")``) is neither the dataset nor the group it is easily taken for."""
    if isinstance(node, h5py.Dataset):
        return "a dataset"
    if isinstance(node, h5py.Group):
        return "a group"
    return "a named datatype" if isinstance(node, h5py.Datatype) else "an HDF5 object"


def _under_dataset(file: h5py.File, path: str, *, links: bool = False) -> str:
    """`` (INPUTS is a dataset)`` when a dataset (or a named datatype) stands where a group above
    ``path`` should be, else ``""``: h5py finds nothing below it, and "nothing" alone sends a
    user looking for a missing group rather than a wrong one. ``links``: also name a link above
    ``path`` that leads nowhere, `` (WEIGHTS is a soft link to nothing (/gone))``: a dangling link
    at WEIGHTS hid the optional event weights below it, and spanet-test scored with weight 1
    without a word; a link someone made means the data was meant to be there."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        above = "/".join(parts[:depth])
        node = file.get(above)
        if node is None:  # nothing exists below a missing place
            link = _dangling_link(file, above) if links else None
            return f" ({above} is {link})" if link else ""
        if not isinstance(node, h5py.Group):
            return f" ({above} is {_node_kind(node)})"
    return ""


def _describe_role(expected: ExpectedDataset) -> str:
    name = expected.path.rsplit("/", 1)[-1]
    return {
        "mask": f"the bool MASK of {_kind(expected)} input {expected.input} (True = real object)",
        "feature": f"feature {name} of {_kind(expected)} input {expected.input}, shape (N_events, max_objects"
                   + (") or (N_events, max_objects, max_objects)" if expected.pairwise else ")"),
        "global": f"feature {name} of GLOBAL input {expected.input}, shape (N_events,)",
        "target": "an integer object index per event (-1 = not matched)",
        "regression": "a float regression target per event (NaN = missing)",
        "classification": "an integer class label per event (-1 = missing)",
        "event_weight": 'a float weight per event, named by the option event_weight_dataset ("" for none)',
    }.get(expected.role, "a dataset")


def _kind(expected: ExpectedDataset) -> str:
    return "RELATIVE" if expected.pairwise else "SEQUENTIAL"


def _dtype_ok(expected: ExpectedDataset, dtype: np.dtype, problems: list[Problem]) -> bool:
    right, converted, words = _DTYPES[expected.role]
    if dtype.kind in right:
        return True
    if dtype.kind in converted:
        into = _CONVERTED_TO.get(expected.role, "float32")
        problems.append(Problem("info", expected.path, f"stored as {dtype}; read as {into}", "converted"))
        return True
    problems.append(Problem("error", expected.path, f"expected {words}, got {dtype}", "dtype"))
    return False


def _rank_ok(expected: ExpectedDataset, shape: tuple[int, ...] | None, problems: list[Problem]) -> bool:
    """``shape`` is None for HDF5's null dataspace (``h5py.Empty``): a dataset without a shape."""
    pairs_allowed = expected.pairwise and expected.role == "feature"
    if shape is not None and (len(shape) == expected.rank or (pairs_allowed and len(shape) == 3)):
        return True
    if pairs_allowed:
        wanted = "a 2-D dataset (N_events, max_objects) or a 3-D one (N_events, max_objects, max_objects)"
    elif expected.rank == 2:
        wanted = "a 2-D dataset (N_events, max_objects)"
    elif expected.role in ("global", "global_mask"):
        wanted = "a 1-D dataset (N_events,): GLOBAL inputs hold one value per event"
    else:
        wanted = "a 1-D dataset (N_events,)"
    got = ("an empty dataset without a shape (HDF5's null dataspace)" if shape is None
           else f"shape {tuple(shape)}")
    problems.append(Problem("error", expected.path, f"expected {wanted}, got {got}", "shape"))
    return False


def _unused_datasets(file: h5py.File, layout: Iterable[ExpectedDataset]) -> list[Problem]:
    """Datasets the spec does not read: harmless (SPANet ignores them too), so only info."""
    known = {expected.path for expected in layout}
    unused: list[Problem] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset) and name not in known:
            unused.append(Problem("info", name, "not used by the event file (ignored)", "unused"))

    file.visititems(visit)
    return unused


# ----------------------------------------------------------------------------- content scan


class _Count(int):
    """An int that formats with its noun: ``f"{_Count(3):event}"`` is ``3 events``."""

    def __format__(self, noun: str) -> str:
        if int(self) == 1 or not noun:
            return f"{int(self)} {noun}".rstrip()
        return f"{int(self)} {noun[:-2] + 'ices' if noun.endswith('ex') else noun + 's'}"


class _Tally:
    """One kind of bad value, counted across chunks: how many values, in how many events, the first."""

    def __init__(self, where: str, code: str, expected: str, got: str) -> None:
        self.where, self.code, self.expected, self.got = where, code, expected, got
        self.values = 0
        self.events = 0
        self.first: tuple[int, str] | None = None

    def add(
        self, bad: np.ndarray, start: int, example: np.ndarray | None = None, label: str = "value"
    ) -> None:
        """``bad`` is (B,) or (B, k) bool for the chunk starting at event ``start``;
        ``example`` (same shape) gives the value shown, as ``label``, for the first bad entry."""
        per_event = bad if bad.ndim == 1 else bad.any(axis=1)
        events = int(np.count_nonzero(per_event))
        if events == 0:
            return
        self.values += int(np.count_nonzero(bad))
        self.events += events
        if self.first is None:
            row = int(np.argmax(per_event))
            shown = ""
            if example is not None:
                value = example[row] if bad.ndim == 1 else example[row][int(np.argmax(bad[row]))]
                shown = f", {label} {value.item() if hasattr(value, 'item') else value}"
            self.first = (start + row, shown)

    def problem(self) -> Problem | None:
        if self.first is None:
            return None
        event, shown = self.first
        got = self.got.format(values=_Count(self.values), events=_Count(self.events))
        message = f"expected {self.expected}, got {got} (first: event {event}{shown})"
        return Problem("error", self.where, message, self.code)



class _ContentScan:
    """Reads the usable datasets chunk by chunk, finding bad values and building the summary."""

    def __init__(
        self,
        file: h5py.File,
        spec: EventSpec,
        usable: dict[str, ExpectedDataset],
        num_events: int,
        max_objects: dict[str, int],
        *,
        training_rules: bool = True,
    ) -> None:
        self.file, self.spec, self.usable, self.num_events = file, spec, usable, num_events
        self.max_objects = max_objects
        complete = all(s.name in max_objects for s in spec.sequential)
        # Padding and repeat checks work in the combined space: they need every input's MASK.
        self.offsets = target_index_offsets(spec, max_objects) if complete else None
        self.total_width = sum(max_objects.values()) if complete else None
        self.tallies: dict[tuple[str, str, str], _Tally] = {}
        self.objects = {name: [0, 0] for name in max_objects}  # input -> [sum, max] of objects per event
        self.matched = {p.name: [0, 0, 0] for p in spec.particles  # particle -> [full, partial, none]
                        if all(target_path(p.name, q.name) in usable for q in p.products)}
        self.masked_unmatched = {p: 0 for p in self.matched if target_mask_path(p) in usable}
        """Particle -> events whose TARGETS/<p>/MASK says usable while a product is -1."""
        self.regressions = {t.key: (RunningMoments(1), [0]) for t in spec.regressions
                            if regression_path(t.key) in usable}
        self.classes: dict[str, dict[int, int]] = {t.key: {} for t in spec.classifications
                                                    if classification_path(t.key) in usable}
        self.missing_classes = dict.fromkeys(self.classes, 0)
        self.values = ValueChecks(spec, self.tally, training_rules=training_rules)

    def tally(self, where: str, code: str, expected: str, got: str) -> _Tally:
        key = (where, expected, got)
        if key not in self.tallies:
            self.tallies[key] = _Tally(where, code, expected, got)
        return self.tallies[key]

    def read(self, path: str, start: int, stop: int) -> np.ndarray:
        return read_rows(self.file[path], start, stop)

    def run(self, chunk_size: int, progress: bool) -> list[Problem]:
        chunk_size = min(chunk_size, self.rows_within(SCAN_BLOCK_BYTES))
        starts = range(0, self.num_events, chunk_size)
        if progress and self.num_events > chunk_size:
            from rich.console import Console
            from rich.progress import track

            starts = track(starts, description="validating", console=Console(stderr=True), transient=True)
        for start in starts:
            self.scan_chunk(start, min(start + chunk_size, self.num_events))
        found = [p for p in (t.problem() for t in self.tallies.values()) if p is not None]
        found += [Problem("warning", target_mask_path(particle), MASKED_UNMATCHED.format(count=count),
                          "mask_unmatched")
                  for particle, count in self.masked_unmatched.items() if count]
        return found + self.values.finish(self.objects, self.classes, self.num_events)

    def rows_within(self, budget: int) -> int:
        """How many events one block may hold so that its widest dataset stays within ``budget``
        bytes: a file of millions of slots per event would otherwise take gigabytes per block."""
        widest = max((int(np.prod(self.file[path].shape[1:], dtype=np.int64)) * self.file[path].dtype.itemsize
                      for path in self.usable), default=1)
        return max(1, budget // max(1, widest))

    def scan_chunk(self, start: int, stop: int) -> None:
        masks = {name: mask_values(self.read(mask_path(name), start, stop)) for name in self.max_objects}
        for name, mask in masks.items():
            counts = mask.sum(axis=1)
            self.objects[name][0] += int(counts.sum())
            self.objects[name][1] = max(self.objects[name][1], int(counts.max(initial=0)))
        for path, expected in self.usable.items():
            if expected.role in ("feature", "global", "target_weight", "event_weight"):
                self.check_finite(path, expected, start, stop, masks.get(expected.input or ""))
        self.values.chunk(lambda path: self.read(path, start, stop), self.usable, masks, start)
        combined = np.concatenate([masks[s.name] for s in self.spec.sequential], axis=1) \
            if self.offsets is not None else None
        indices = {p: self.check_targets(p, start, stop, combined) for p in self.matched}
        self.check_repeats(indices, start)
        for key, (moments, nan_count) in self.regressions.items():
            self.scan_regression(key, moments, nan_count, start, stop)
        for key in self.classes:
            self.scan_classification(key, start, stop)

    def check_finite(self, path: str, expected: ExpectedDataset, start: int, stop: int,
                     mask: np.ndarray | None) -> None:
        values = self.read(path, start, stop)
        if values.dtype.kind != "f":
            return
        if values.dtype.itemsize > 4:  # read as float32: a value beyond its range reaches the network as inf
            with np.errstate(over="ignore"):
                values = values.astype(np.float32)
        if expected.role == "feature":
            assert mask is not None
            bad = nonfinite_real(values[..., None], mask).reshape(len(values), -1)
            tally = self.tally(path, "nonfinite", FINITE_REAL, "NaN/inf in {values:object} of {events:event}")
        elif expected.role == "global":
            bad = nonfinite_real(values[..., None], None)
            tally = self.tally(path, "nonfinite", "finite values", "NaN/inf in {events:event}")
        else:
            bad = ~np.isfinite(values)
            tally = self.tally(path, "nonfinite", "finite weights", "NaN/inf in {events:event}")
        tally.add(bad, start)

    def check_targets(self, particle: str, start: int, stop: int, combined: np.ndarray | None) -> np.ndarray:
        """Check one particle's indices; return them (B, k) in the combined space, -1 where unusable."""
        products = self.spec.particle(particle).products
        raw = np.stack([self.read(target_path(particle, p.name), start, stop).astype(np.int64, copy=False)
                        for p in products], axis=1)  # (B, k)
        present = raw >= 0
        full, some = present.all(axis=1), present.any(axis=1)
        counts = self.matched[particle]
        counts[0] += int(full.sum())
        counts[1] += int((some & ~full).sum())
        counts[2] += int((~some).sum())
        if particle in self.masked_unmatched:
            explicit = mask_values(self.read(target_mask_path(particle), start, stop))
            self.masked_unmatched[particle] += int((explicit & ~full).sum())

        result = np.full_like(raw, -1)
        for j, product in enumerate(products):
            path = target_path(particle, product.name)
            if product.input is not None:
                bound = self.max_objects.get(product.input)
                space = f"-1..{bound - 1} (slots of input {product.input})" if bound is not None else ""
            else:
                bound = self.total_width
                kinds = "SEQUENTIAL and RELATIVE" if self.spec.relative else "SEQUENTIAL"
                space = f"-1..{bound - 1} (all {kinds} inputs combined)" if bound is not None else ""
            if bound is None:
                continue  # the MASK that defines the range is broken: already reported
            index = raw[:, j]
            outside = (index < -1) | (index >= bound)
            self.tally(path, "index_range", f"an object index in {space}", "{values:index} out of range").add(
                outside, start, index)
            if combined is None or self.offsets is None:
                continue
            valid = present[:, j] & ~outside
            shifted = index + (self.offsets[product.input] if product.input is not None else 0)
            rows = np.flatnonzero(valid)
            padded = np.zeros_like(valid)
            padded[rows] = ~combined[rows, shifted[rows]]
            self.tally(path, "index_padded", "the index of a real object (MASK True)",
                       "{values:index} of padded (masked-out) slots").add(padded, start, index)
            result[:, j] = np.where(valid & ~padded, shifted, -1)
        return result

    def check_repeats(self, indices: dict[str, np.ndarray], start: int) -> None:
        """One object may be the decay product of at most one parton per event (docs/formats.md section 2)."""
        if self.offsets is None:
            return
        names = list(indices)
        for p, particle in enumerate(names):
            index = indices[particle]  # (B, k)
            product_names = self.spec.particle(particle).product_names
            for a in range(index.shape[1]):
                for b in range(a + 1, index.shape[1]):
                    repeated = (index[:, a] == index[:, b]) & (index[:, a] >= 0)
                    self.tally(f"TARGETS/{particle}", "index_repeated", "a different object for each product",
                               f"{product_names[a]} and {product_names[b]} on the same object in "
                               "{events:event}").add(repeated, start, index[:, a], "combined index")
            for other in names[p + 1:]:
                shared = (index[:, :, None] == indices[other][:, None, :]) & (index[:, :, None] >= 0)
                self.tally(f"TARGETS/{particle}", "index_repeated", f"no object shared with TARGETS/{other}",
                           "shared objects in {events:event}").add(shared.any(axis=(1, 2)), start)

    def scan_regression(
        self, key: str, moments: RunningMoments, nan_count: list[int], start: int, stop: int
    ) -> None:
        values = self.read(regression_path(key), start, stop)
        with np.errstate(over="ignore"):  # read as float32 (as check_finite): beyond its range is inf
            values = values.astype(np.float32, copy=False).astype(np.float64)
        nan = np.isnan(values)
        nan_count[0] += int(nan.sum())
        infinite = np.isinf(values)
        self.tally(regression_path(key), "nonfinite", "finite values or NaN (missing)",
                   "inf in {events:event}").add(infinite, start)
        moments.update(values[~nan & ~infinite].reshape(-1, 1))

    def scan_classification(self, key: str, start: int, stop: int) -> None:
        labels = self.read(classification_path(key), start, stop).astype(np.int64, copy=False)
        self.tally(classification_path(key), "label", "class labels >= 0, or -1 for missing",
                   "{values:label} below -1").add(labels < -1, start, labels)
        # Labels travel as int32 from here on (DataModule.setup): 2**32 read as class 0 before this.
        self.tally(classification_path(key), "label", f"class labels below 2**31 = {CLASS_LABEL_LIMIT:,}",
                   "{values:label} at or above it").add(labels >= CLASS_LABEL_LIMIT, start, labels)
        self.missing_classes[key] += int((labels == -1).sum())
        classes, counts = np.unique(labels[labels >= 0], return_counts=True)
        table = self.classes[key]
        for label, count in zip(classes.tolist(), counts.tolist()):
            table[label] = table.get(label, 0) + count

    def summary(self) -> dict[str, Any]:
        n = self.num_events
        scale = 1.0 / n if n else 0.0
        inputs: dict[str, Any] = {}
        for source in self.spec.sequential:
            if source.name in self.objects:
                total, most = self.objects[source.name]
                inputs[source.name] = {"kind": source.kind, "max_objects": self.max_objects[source.name],
                                       "objects_mean": total * scale, "objects_max": most}
                if source.is_relative:
                    pairwise = pair_features(self.file, self.spec)[source.name]
                    inputs[source.name]["pair_features"] = list(pairwise)
        for source in self.spec.global_inputs:
            inputs[source.name] = {"kind": "GLOBAL", "features": source.num_features}
        particles = {name: {"fully_matched": c[0] * scale, "partially_matched": c[1] * scale,
                            "not_matched": c[2] * scale} for name, c in self.matched.items()}
        regressions = {key: _regression_summary(m, nan[0] * scale)
                       for key, (m, nan) in self.regressions.items()}
        classifications = {key: {"class_counts": dict(sorted(table.items())),
                                 "missing": self.missing_classes[key]} for key, table in self.classes.items()}
        return {"events": n, "inputs": inputs, "particles": particles, "regressions": regressions,
                "classifications": classifications}


def _regression_summary(moments: RunningMoments, nan_fraction: float) -> dict[str, Any]:
    """The raw population std (0 for a constant target), not the normalisation's guarded one."""
    count = int(moments.count[0])
    if not count:
        return {"count": 0, "nan_fraction": nan_fraction, "mean": None, "std": None}
    return {"count": count, "nan_fraction": nan_fraction, "mean": float(moments.mean[0]),
            "std": float(np.sqrt(moments.m2[0] / count))}
