"""``spanet-generate --backend pythia``: chunked, parallel, resumable, deterministic generation.

The run is cut into chunks of ``chunk_size`` selected events. Chunk ``k`` depends only on
(process, seed, k, its size) (see :func:`~.engine.chunk_seeds`), so the output is the same for
any ``jobs`` and for a run that was interrupted and resumed. Finished chunks are written
atomically to ``<output>.chunks/`` beside the output, with a ``manifest.json`` naming the run;
re-running the same command skips the chunks that exist. When all chunks are there they are
copied, in order, into the output (atomically: a reader never sees a partial file) and the
chunk directory is removed.
"""

from __future__ import annotations

import importlib.metadata
import json
import multiprocessing
import queue
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from spanet_lite import outputs as outputs_rule
from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.errors import InputError
from spanet_lite.io import OutputGroup, atomic_hdf5, atomic_write_text, check_hdf5_writes
from spanet_lite.physics.generator.acceptance import AcceptanceGuard
from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.generator.engine import (
    Summary,
    _create_datasets,
    _stored,
    _Tally,
    create_weight_dataset,
)
from spanet_lite.physics.generator.processes import PROCESSES as FAST_PROCESSES
from spanet_lite.physics.generator.request import KEYWORDS, Request, get_process
from spanet_lite.physics.pythia.engine import ChunkResult, generate_chunk
from spanet_lite.physics.pythia.processes import PROCESSES

DEFAULT_CHUNK_SIZE = 500
MANIFEST = "manifest.json"
EXTRA_HINT = "pip install 'spanet-lite[pythia]'"
NAMES = {**KEYWORDS, "events": "n_events"}
"""How :func:`generate`'s lines name its values (its keywords; ``n_events`` for the events)."""


def require_pythia(where: str = "Pythia backend") -> str:
    """Import Pythia and FastJet or raise a one-line InputError naming ``where`` (what asked for
    them: ``spanet-generate`` passes ``--backend pythia``) and saying how to get them.

    Returns Pythia's version string (recorded in the output file).
    """
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as error:
        expected = f"the optional 'pythia' extra ({EXTRA_HINT})"
        raise InputError(None, where, expected, f"no module {error.name!r}") from None
    try:
        return importlib.metadata.version("pythia8mc")
    except importlib.metadata.PackageNotFoundError:  # built from source: no distribution metadata
        return "unknown"


def chunk_sizes(events: int, chunk_size: int) -> list[int]:
    """``events`` split into chunks of ``chunk_size`` (the last one smaller)."""
    full, rest = divmod(events, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def chunk_path(work_dir: Path, index: int) -> Path:
    return work_dir / f"chunk_{index:05d}.h5"


def work_dir_for(output: Path) -> Path:
    return output.with_name(output.name + ".chunks")


def _write_chunk(path: Path, result: ChunkResult) -> None:
    with atomic_hdf5(path) as f:
        for key, values in result.arrays.items():
            f.create_dataset(key, data=_stored(key, values))
        f.attrs["generated"] = result.generated
        f.attrs["selected"] = result.selected


PYTHIA_EMPTY_AFTER = 10_000
"""Showered candidates of one chunk with none selected after which its selection is refused
(a minute or so of one worker; an acceptance of 1e-3 passes this with probability 1 - 5e-5)."""
PYTHIA_FLOOR_AFTER = 100_000
"""Candidates of one chunk after which an acceptance below the fast backend's floor is refused."""


def _run_chunk(args: tuple[Any, ...]) -> tuple[int, int, int]:
    """Worker: generate chunk ``index`` and write it; returns (index, generated, selected)."""
    name, events, seed, index, path, options, updates = args
    spec = parse_event_spec(FAST_PROCESSES[name].event_file_text)
    guard = AcceptanceGuard(options.selection, empty_after=PYTHIA_EMPTY_AFTER, floor_after=PYTHIA_FLOOR_AFTER)

    def on_batch(generated: int, selected: int) -> None:
        guard.add(generated, selected)
        if updates is not None:
            updates.put((generated, selected))

    result = generate_chunk(
        PROCESSES[name],
        spec,
        options.max_objects,
        options.selection,
        events,
        seed,
        index,
        config=options.config,
        signal_fraction=options.signal_fraction,
        on_batch=on_batch,
    )
    _write_chunk(Path(path), result)
    return index, result.generated, result.selected


@dataclass(frozen=True)
class _Options:
    """What, besides process and seed, decides a chunk's content (recorded in the manifest)."""

    config: PhysicsConfig
    selection: Selection
    max_objects: int
    signal_fraction: float | None


def _manifest_differences(found: object, manifest: dict[str, Any]) -> str:
    """What makes the chunks in a folder another run's, for the refusal: the keys that differ
    (the options by name only: their record is the whole physics configuration, thousands of
    characters that hide the one setting that changed)."""
    if not isinstance(found, dict):
        return "an unreadable manifest"
    differences = []
    for key in sorted(set(found) | set(manifest), key=lambda key: (key not in manifest, key)):
        if found.get(key) == manifest.get(key):
            continue
        if key == "options":
            differences.append(
                "other --set, --min-jets, --min-btags, --max-objects or --signal-fraction values"
            )
        else:
            differences.append(f"{key} {found.get(key)!r} (this run: {manifest.get(key)!r})")
    return "chunks of another run: " + ", ".join(differences)


def _check_manifest(work_dir: Path, manifest: dict[str, Any]) -> None:
    path = work_dir / MANIFEST
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            found = None
        if found != manifest:
            raise InputError(
                path, "", f"chunks of this same run to resume (remove {work_dir} to start over)",
                _manifest_differences(found, manifest),
            )
    else:
        work_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def generate(
    process: str,
    n_events: int,
    seed: int,
    output: str | Path,
    jobs: int = 1,
    progress: bool = False,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    config: PhysicsConfig | None = None,
    selection: Selection | None = None,
    max_objects: int | None = None,
    signal_fraction: float | None = None,
    overwrite: bool = False,
    compression: str | None = "gzip",
    on_progress: Callable[[int, int], None] | None = None,
    group: OutputGroup | None = None,
) -> Summary:
    """Generate ``n_events`` selected events of ``process`` with Pythia into ``output``.

    ``jobs`` worker processes generate chunks in parallel; ``progress`` shows a rich progress
    bar on stderr (selected events, events/s, acceptance = selected / generated); off by default,
    as everywhere in the Python API (``spanet-generate`` turns it on at a terminal). ``on_progress(generated,
    selected)`` is called with increments instead when given. ``config``, ``selection`` and
    ``max_objects`` default to the fast backend's; ``signal_fraction`` (ttH_semilep) is the
    share of ttH among the *selected* events (default 0.5). Returns the same
    :class:`~spanet_lite.physics.generator.engine.Summary` as the fast backend. Values no run
    could use are refused, before Pythia is imported, as the fast backend refuses them (see
    :class:`~spanet_lite.physics.generator.request.Request`), naming the keyword passed.
    Given a ``group``, the output is staged in it, and the chunks are kept until the group moves
    it into place: an output discarded with the call's other outputs can still be resumed.
    """
    fast = get_process(process)
    request = Request(
        fast, n_events, seed, config or PhysicsConfig(), selection, max_objects, signal_fraction, chunk_size,
        jobs, names=NAMES,
    )
    n_events, seed, chunk_size, jobs = request.events, request.seed, request.chunk_size, request.jobs
    pythia_version = require_pythia()
    output = Path(output)
    outputs_rule.check_outputs([outputs_rule.output(output, "output")], overwrite=overwrite)
    sizes = chunk_sizes(n_events, chunk_size)
    work_dir = work_dir_for(output)
    options = _Options(request.config, request.cuts, request.width, request.signal_fraction)
    manifest = {
        "backend": "pythia",
        "pythia": pythia_version,
        "process": process,
        "seed": seed,
        "events": n_events,
        "chunk_size": chunk_size,
        "options": repr(options),
    }
    _check_manifest(work_dir, manifest)
    todo = [k for k in range(len(sizes)) if not chunk_path(work_dir, k).exists()]
    done_events = sum(sizes[k] for k in range(len(sizes)) if k not in todo)

    tasks = [(process, sizes[k], seed, k, str(chunk_path(work_dir, k)), options) for k in todo]
    bar = _Progress(process, n_events, done_events, progress, on_progress)
    try:
        if jobs == 1 or len(tasks) <= 1:
            with bar:
                for task in tasks:
                    _run_chunk((*task, bar))
        else:
            _run_parallel(tasks, jobs, bar)
    except InputError:  # an impossible selection: nothing worth resuming from
        if not any(chunk_path(work_dir, k).exists() for k in range(len(sizes))):
            shutil.rmtree(work_dir, ignore_errors=True)
        raise

    summary = _assemble(work_dir, sizes, output, process, seed, pythia_version, compression, group)
    if group is None:
        shutil.rmtree(work_dir)
    else:
        group.stage(lambda: shutil.rmtree(work_dir, ignore_errors=True), lambda: None)
    return summary


def _run_parallel(tasks: list[tuple[Any, ...]], jobs: int, bar: _Progress) -> None:
    """Run chunks in ``jobs`` worker processes, feeding the progress bar from a queue.

    Workers are forked (no re-import of the caller's ``__main__``) before the progress bar
    starts its refresh thread, so no thread exists at fork time; where fork is unavailable
    they are spawned.
    """
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with context.Manager() as manager:
        updates = manager.Queue()
        with context.Pool(min(jobs, len(tasks))) as pool, bar:
            pending = pool.map_async(_run_chunk, [(*task, updates) for task in tasks], chunksize=1)
            while not pending.ready():
                bar.drain(updates, timeout=0.2)
            bar.drain(updates)
            pending.get()  # re-raise a worker's exception here


def _assemble(work_dir: Path, sizes: list[int], output: Path, process: str, seed: int, pythia_version: str,
              compression: str | None, group: OutputGroup | None = None) -> Summary:
    """Copy the chunks into ``output`` in order (atomically; staged in ``group`` if given) and
    tally the summary."""
    fast = FAST_PROCESSES[process]
    tally = _Tally(fast)
    total = sum(sizes)
    generated = 0
    with atomic_hdf5(output, group=group) as out:
        datasets: dict[str, h5py.Dataset] = {}
        start = 0
        for k, size in enumerate(sizes):
            with h5py.File(chunk_path(work_dir, k), "r") as chunk:
                arrays: dict[str, Any] = {}
                chunk.visititems(lambda name, obj, arrays=arrays: arrays.__setitem__(name, obj[()])
                                 if isinstance(obj, h5py.Dataset) else None)
                generated += int(chunk.attrs["generated"])
            if not datasets:
                datasets = _create_datasets(out, arrays, total, compression)
                create_weight_dataset(out, total, compression)
            for key, values in arrays.items():
                datasets[key][start:start + size] = values
            check_hdf5_writes(out)
            tally.add(arrays)
            start += size
        out.attrs["generator"] = "spanet_lite"
        out.attrs["backend"] = "pythia"
        out.attrs["pythia_version"] = pythia_version
        out.attrs["process"] = process
        out.attrs["seed"] = seed
        out.attrs["candidates"] = generated
    return tally.summary(generated)


class _Progress:
    """A rich progress bar fed with (generated, selected) increments from the workers."""

    def __init__(self, process: str, total: int, done: int, show: bool,
                 callback: Callable[[int, int], None] | None) -> None:
        self.process, self.total, self.done, self.show, self.callback = process, total, done, show, callback
        self.generated = 0
        self.selected = 0
        self._bar: Any = None
        self._task: Any = None
        self._start = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} ev/s"), TextColumn("acceptance {task.fields[acceptance]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(f"pythia {self.process}", total=self.total, completed=self.done,
                                            rate="-", acceptance="-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def put(self, update: tuple[int, int]) -> None:
        """Apply one (generated, selected) increment (the in-process stand-in for a queue)."""
        generated, selected = update
        self.generated += generated
        self.selected += selected
        if self.callback is not None:
            self.callback(generated, selected)
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            self._bar.update(self._task, advance=selected, rate=f"{self.selected / elapsed:,.1f}",
                             acceptance=f"{self.selected / max(self.generated, 1):.1%}")

    def drain(self, source: Any, timeout: float = 0.0) -> None:
        """Apply every update waiting in the workers' queue, waiting up to ``timeout`` for the first."""
        block = timeout > 0
        while True:
            try:
                update = source.get(True, timeout) if block else source.get_nowait()
            except queue.Empty:
                return
            block = False
            self.put(update)
