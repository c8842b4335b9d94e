"""Planning a run: options (file, checkpoint or both) plus overrides, checked, and the files found.

Nothing here writes anything or opens a dataset, so every mistake in what the user asked for
is an :class:`~spanet_lite.errors.InputError` before any work starts. :func:`check_arguments`
checks ``train()``'s arguments on their own, naming them as the caller spells them (``train``'s
keywords, or ``spanet-train``'s flags: the command calls it first); the rest needs the options
or the checkpoint read and names the keyword (``spanet-train`` translates it).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spanet_lite.config.options import Options
from spanet_lite.config.suggest import describe
from spanet_lite.errors import InputError
from spanet_lite.io import read_checkpoint, read_user_text
from spanet_lite.outputs import check_writable_folder, is_run_directory
from spanet_lite.training.hardware import check_devices

KEYWORDS: Mapping[str, str] = MappingProxyType({key: key for key in (
    "options", "event_file", "gpus", "nodes", "processes", "log_dir", "name", "resume", "fast_dev_run",
    "time_limit", "checkpoint", "state_dict", "freeze_state_dict", "callbacks",
)})
"""How :func:`check_arguments` names ``train()``'s arguments by default: its keywords."""


def check_arguments(
    options: object,
    *,
    event_file: str | Path | None,
    gpus: int | None,
    nodes: int,
    processes: int | None,
    log_dir: str | Path,
    name: str | None,
    resume: str | Path | None,
    fast_dev_run: bool,
    time_limit: str | float | None,
    checkpoint: str | Path | None,
    state_dict: str | Path | None,
    freeze_state_dict: bool,
    callbacks: object = (),
    names: Mapping[str, str] = KEYWORDS,
) -> Arguments:
    """``train()``'s arguments on their own, before any file is read; each mistake one line
    naming the argument as ``names`` spells it. Returns what the run uses of them, in the types
    it uses (an ``int`` device count, the time limit in seconds)."""
    from spanet_lite.training.interrupt import parse_time_limit

    paths = (("name", name, "a folder name"), ("log_dir", log_dir, "a folder path"),
             ("resume", resume, "a run directory or a .ckpt file"),
             ("checkpoint", checkpoint, "a .ckpt file"), ("state_dict", state_dict, "a .ckpt file"))
    for key, value, wanted in paths:
        # Path(5) or Path(None) would be a TypeError traceback; None is the default of all but log_dir.
        if not isinstance(value, (str, os.PathLike)) and not (key != "log_dir" and value is None):
            raise InputError(None, names[key], wanted, describe(value))
    if name is not None:
        name = os.fspath(name)
    if name and (Path(name).name != name or name in (".", "..")):  # "" means the default, as before
        wanted = "a folder name without / or .. (runs go to <log_dir>/<name>/version_N)"
        raise InputError(None, names["name"], wanted, repr(name))
    if checkpoint is not None and resume is not None:
        wanted = f"either {names['checkpoint']} or {names['resume']}, not both"
        raise InputError(None, names["checkpoint"], wanted)
    if state_dict is not None and (resume is not None or checkpoint is not None):
        raise InputError(
            None, names["state_dict"], f"either initial weights ({names['state_dict']}) or a checkpoint to "
            f"continue ({names['checkpoint']} or {names['resume']}), not both",
        )
    if freeze_state_dict and state_dict is None:
        wanted = f"a {names['state_dict']} checkpoint whose weights to freeze"
        raise InputError(None, names["freeze_state_dict"], wanted)
    try:
        limit = parse_time_limit(time_limit)
    except ValueError:
        raise InputError(
            None, names["time_limit"],
            "a duration above 0 such as 3600, 45m, 2h, 01:30:00 or SPANet's DD:HH:MM:SS", repr(time_limit),
        ) from None
    for key, path in (("checkpoint", checkpoint), ("state_dict", state_dict)):
        if path is not None:
            _check_checkpoint_file(Path(path), names[key])
    run_dir = None
    if resume is not None:
        if options is not None:
            raise InputError(None, names["resume"], f"no options file together with {names['resume']} (the "
                             "run's own options are used; override single values instead)")
        if event_file is not None:
            raise InputError(None, names["event_file"], f"no {names['event_file']} with {names['resume']} "
                             "(the network is built from the run's own event file)")
        if not Path(resume).exists():
            wanted = "a run directory or a .ckpt file"
            raise InputError(Path(resume), names["resume"], wanted, "nothing at that path")
        run_dir = resume_target(Path(resume), names["resume"])[1]
    elif options is None and checkpoint is None:
        raise InputError(None, names["options"], f"an options file (or {names['resume']} with a run "
                         f"directory, or {names['checkpoint']} with a checkpoint file)")
    if fast_dev_run and (resume is not None or checkpoint is not None):
        continued = names["resume"] if resume is not None else names["checkpoint"]
        raise InputError(
            None, names["fast_dev_run"],
            f"a new run ({names['fast_dev_run']} trains one batch; it cannot continue a run)",
            f"a checkpoint to continue ({continued})",
        )
    gpus, processes, nodes = check_devices(gpus, processes, nodes, names)
    extra = _check_callbacks(callbacks, names.get("callbacks", "callbacks"))  # spanet-train has none
    if not fast_dev_run:
        check_writable_folder(run_dir or log_dir, names["resume"] if run_dir else names["log_dir"])
    return Arguments(limit, gpus, processes, nodes, extra)


def _check_callbacks(callbacks: object, where: str) -> tuple[Any, ...]:
    """Extra Lightning callbacks as a tuple. One ``Callback`` is taken as Lightning's ``Trainer``
    takes it (``callbacks=MyCallback()`` was a TypeError traceback from ``tuple()``); anything
    else than callbacks is one line, not a failure deep inside Lightning."""
    if isinstance(callbacks, (tuple, list)) and not callbacks:
        return ()  # the default: no Lightning import for a command-line check
    from lightning.pytorch.callbacks import Callback

    if isinstance(callbacks, Callback):
        return (callbacks,)
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise InputError(None, where, "a list of Lightning callbacks", describe(callbacks))
    given = tuple(callbacks)
    for index, callback in enumerate(given):
        if not isinstance(callback, Callback):
            raise InputError(None, f"{where}[{index}]", "a Lightning callback (lightning.pytorch.Callback)",
                             describe(callback))
    return given


@dataclass(frozen=True)
class Arguments:
    """``train()``'s arguments as :func:`check_arguments` passed them, for the run to use (not
    the values given: ``gpus=1.0`` is the device count 1)."""

    time_limit: float | None
    """Seconds (None: no limit)."""
    gpus: int | None
    processes: int | None
    nodes: int
    callbacks: tuple[Any, ...] = ()
    """The extra Lightning callbacks, as a tuple."""


@dataclass
class Plan:
    """Everything decided before training starts: checked options, the files, where to resume."""

    options: Options
    sources: dict[str, str]
    event_file_text: str
    event_file: Path | None
    training_file: Path
    validation_file: Path | None
    run_dir: Path | None
    resumed: CheckpointFacts | None = None
    """The checkpoint a resumed run (--resume) or a restored one (-cf) continues from."""

    @property
    def resume_checkpoint(self) -> Path | None:
        return None if self.resumed is None else self.resumed.path

    @property
    def statistics(self) -> dict[str, Any] | None:
        """The normalisation the checkpoint's weights were trained against (None: compute it)."""
        return None if self.resumed is None else self.resumed.statistics

    @property
    def epochs_done(self) -> int:
        """Epochs the resumed checkpoint has finished (0 for a new run)."""
        return 0 if self.resumed is None else self.resumed.epochs_done

    @property
    def frozen(self) -> tuple[str, ...]:
        """Parameters the resumed run keeps fixed (a fine-tuning run started with -sf ... -fsf)."""
        return () if self.resumed is None else self.resumed.frozen


def _check_checkpoint_file(path: Path, where: str) -> None:
    """A checkpoint a run starts from, before anything is read (named as the caller names it)."""
    from spanet_lite.io import checkpoint_path_problem

    problem = checkpoint_path_problem(path)
    if problem is not None:
        raise InputError(path, where, "a checkpoint file (.ckpt)", problem)


def plan_run(
    options: Options | Mapping[str, Any] | str | Path | None,
    resume: str | Path | None,
    overrides: dict[str, Any],
    checkpoint: str | Path | None = None,
    *,
    allow_unknown_keys: bool = False,
    names: Mapping[str, str] | None = None,
) -> Plan:
    """Options + overrides + files, checked; reads the checkpoint when resuming. The arguments
    on their own have passed :func:`check_arguments`. A refusal of an override names it as the
    caller did: by its key, or by its entry in ``names`` (``train()``'s ``event_file`` sets
    ``event_info_file``).

    ``checkpoint`` (SPANet's ``-cf``): a new run that restores its training state from that
    file; the network's normalisation comes from the checkpoint, as its weights were trained
    against it. Without ``options`` the options are the checkpoint's own (SPANet would build its
    default network, which the checkpoint's weights fit only if it had been trained so); an
    event file given with it must describe the same topology.
    """
    from spanet_lite import config as options_module

    given = {key: (names or {}).get(key, key) for key in overrides}  # each override as the caller named it
    overrides = options_module.typed_overrides(overrides, given)
    resumed: CheckpointFacts | None = None
    resume_checkpoint = run_dir = None
    event_text: str | None = None
    if checkpoint is not None:
        resume_checkpoint = Path(checkpoint).resolve()
        resumed = read_checkpoint_facts(resume_checkpoint)
    if resume is not None:
        resume_checkpoint, run_dir = resume_target(Path(resume))
        resumed = read_checkpoint_facts(resume_checkpoint)
        loaded = Options.from_dict(resumed.options)
        event_text = resumed.event_file_text
        options_path = None
    elif options is None and resumed is not None:  # -cf alone: a new run, the checkpoint's options
        loaded, options_path = Options.from_dict(resumed.options), None
        event_text = resumed.event_file_text
        if "event_info_file" in overrides:
            _check_same_topology(Path(overrides["event_info_file"]), event_text, resumed.path)
    elif isinstance(options, Options):
        loaded, options_path = options_module.typed_options(options), None
    elif isinstance(options, Mapping):  # a notebook's dict, typed like a file's JSON object
        loaded = options_module.parse_options(dict(options), "options", allow_unknown_keys=allow_unknown_keys)
        options_path = None
    elif not isinstance(options, (str, os.PathLike)):
        raise InputError(None, "options", "an options file path, an Options or a dict",
                         type(options).__name__)
    else:
        options_path = Path(options)
        loaded = options_module.load_options(options_path, allow_unknown_keys=allow_unknown_keys)

    sources = {key: "command line" for key in overrides}
    merged = loaded.replace(**overrides) if overrides else loaded
    options_module.validate_options(merged, options_path, overrides=given)

    def locate(key: str, required: bool) -> Path | None:
        value = getattr(merged, key)
        if not value and not required:
            return None
        where, name = (None, given[key]) if key in given else (options_path, key)
        path = options_module.resolve_path(value, name, where)
        if not path.is_file():
            raise InputError(where, name, "a file", f"{value!r}: not a regular file")
        return path.resolve()

    event_path = None
    if event_text is None:
        event_path = locate("event_info_file", required=True)
        assert event_path is not None
        event_text = read_user_text(event_path, "event file", "YAML")
    training = locate("training_file", required=True)
    assert training is not None
    validation = locate("validation_file", required=False)
    # options.json records resolved absolute paths, so a run resumes (and spanet-test finds its
    # testing_file) from any directory. Training never reads testing_file: one not found now
    # stays as written, for spanet-test to look for (and name) when it is run.
    resolved = {"training_file": str(training), "validation_file": str(validation) if validation else ""}
    if merged.testing_file:
        where = None if "testing_file" in overrides else options_path
        try:
            testing = options_module.resolve_path(merged.testing_file, "testing_file", where)
            resolved["testing_file"] = str(testing.resolve())
        except InputError:
            pass
    if event_path is not None:
        resolved["event_info_file"] = str(event_path)
    merged = _with_values(merged, resolved)
    return Plan(merged, sources, event_text, event_path, training, validation, run_dir, resumed)


def _check_same_topology(event_file: Path, checkpoint_text: str, checkpoint: Path) -> None:
    """An event file with a checkpoint and no options (SPANet's ``-ef`` with ``-cf`` alone): the
    network comes from the checkpoint, so the event file may only repeat its topology (SPANet
    reads the file, then fails to load weights of another). Names ``event_file`` (found only
    once the checkpoint is read: ``spanet-train`` translates it)."""
    from spanet_lite.config import load_event_spec, parse_event_spec

    if load_event_spec(event_file) != parse_event_spec(checkpoint_text, source=str(checkpoint)):
        raise InputError(event_file, "event_file",
                         f"the topology of the event file {checkpoint.name}'s network was built for",
                         "another topology (to train on it, start a new run from an options file with "
                         "the checkpoint as initial weights)")


def check_resume_epochs(plan: Plan) -> None:
    """A resumed run cannot go back: ``epochs`` below what it did is a one-line error
    naming ``epochs`` (the keyword or the option; ``spanet-train -e`` translates it), and so is
    continuing its directory from a checkpoint behind the epochs it recorded (its ``best.ckpt``,
    say), naming ``resume``: the run trained on from there over its later ``last.ckpt`` and
    ``metrics.csv`` rows."""
    from spanet_lite.training.interrupt import INTERRUPTED_CHECKPOINT

    if plan.resume_checkpoint is None:
        return
    done = plan.epochs_done
    recorded = 0 if plan.run_dir is None else _recorded_epochs(plan.run_dir)
    if recorded > done:
        raise InputError(
            plan.resume_checkpoint, "resume",
            f"a checkpoint as far as the run got ({recorded} epochs in its metrics.csv; resume the run "
            "directory itself)",
            f"one after {done} epoch(s), from which the run would train over its later epochs' last.ckpt "
            "and metrics.csv rows (to train on from it, start a new run with checkpoint, -cf)",
        )
    mid_epoch = plan.resume_checkpoint.name == INTERRUPTED_CHECKPOINT
    needed = done + 1 if mid_epoch else done
    if plan.run_dir is None and plan.options.epochs <= done:  # -cf: a new run with nothing to train
        raise InputError(
            None, "epochs", f"more than {done} epochs: the checkpoint has done {done}, and a new run "
            "from it trains the epochs after those", str(plan.options.epochs),
        )
    if plan.options.epochs < needed:
        part = f" and part of epoch {done + 1}" if mid_epoch else ""
        raise InputError(
            None, "epochs", f"at least {needed} epochs: the run has done {done} epoch(s){part}",
            str(plan.options.epochs),
        )


def _recorded_epochs(run_dir: Path) -> int:
    """Epochs the run's ``metrics.csv`` records; 0 when it cannot be read (an incomplete run's
    may be missing: its checkpoint is then the record)."""
    try:
        with (run_dir / "metrics.csv").open(newline="", encoding="utf-8") as handle:
            return len({row.get("epoch") for row in csv.DictReader(handle)})
    except (OSError, UnicodeDecodeError, csv.Error):
        return 0


SELECTION_KEYS = (
    "dataset_limit", "train_validation_split", "dataset_randomization", "limit_to_num_jets",
    "partial_events", "drop_invalid_events",
)
"""Options that choose which events of the file train and which validate (the last two filter
them: changed on ``--resume`` they were refused as "the file changed since", which it had not)."""


def check_continued_options(plan: Plan) -> None:
    """Options a run continued from a checkpoint cannot change, each a one-line error naming it.

    ``optimizer`` (``--resume``, ``-cf``): the checkpoint's optimiser state is restored into the
    new one, which for another class failed with a traceback inside Lightning (``KeyError:
    'momentum'`` for AdamW into SGD). The event selection (``--resume`` only): with another
    ``dataset_randomization`` (``-r``), say, the split holds as many training events as before
    but other ones, so the run went on training on events it had validated on, and the best
    checkpoint was chosen on events it had trained on. ``normalize_features`` (``--resume``,
    ``-cf``): the normalisation comes from the checkpoint, but the switch from the options, so an
    options file edited to turn it off fed the restored weights raw inputs (SPANet keeps its
    normalisation among the weights, so there the checkpoint's stays).
    """
    resumed = plan.resumed
    if resumed is None:
        return
    before = Options.from_dict(resumed.options)
    restored = ("optimizer", "normalize_features")
    keys = (*restored, *SELECTION_KEYS) if plan.run_dir is not None else restored
    reasons = {"optimizer": "its state is restored",
               "normalize_features": "its weights were trained on inputs normalised so"}
    for key in keys:
        was, now = getattr(before, key), getattr(plan.options, key)
        if was == now:
            continue
        why = reasons.get(key, "the run's training and validation events must stay the ones it started with")
        raise InputError(
            None, key, f"{was!r}, as in the checkpoint's run ({why}; to train otherwise, start a new run "
            "from its weights with state_dict, -sf)", repr(now),
        )


def _with_values(options: Options, values: dict[str, Any]) -> Options:
    """Like ``Options.replace`` without marking ``values`` as explicitly set."""
    updated = options.replace(**values)
    updated.explicit = options.explicit
    return updated


def resume_target(path: Path, where: str = "resume") -> tuple[Path, Path | None]:
    """(checkpoint to load, run directory to continue or None) for ``resume``, an existing path
    (:func:`check_arguments`, which calls it first: a folder without checkpoints is refused there,
    naming the argument as ``where`` spells it)."""
    from spanet_lite.training.interrupt import INTERRUPTED_CHECKPOINT
    from spanet_lite.training.recorder import CHECKPOINTS, LAST, resumable_checkpoints

    if path.is_dir():
        candidates = resumable_checkpoints(path)
        if not candidates:
            raise InputError(
                path,
                where,
                f"a run directory with {CHECKPOINTS}/{LAST} or {INTERRUPTED_CHECKPOINT}",
                "no checkpoint",
            )
        checkpoint = max(candidates, key=lambda p: p.stat().st_mtime_ns)
        return checkpoint, path.resolve()
    run_dir = path.resolve().parent.parent
    in_run = path.resolve().parent.name == CHECKPOINTS and is_run_directory(run_dir)
    return path.resolve(), run_dir if in_run else None


@dataclass(frozen=True)
class CheckpointFacts:
    """What planning needs from a spanet_lite checkpoint, read once: the run's own settings, how
    far it got, and the shapes of its weights (checked against the network these options build
    before Lightning loads it, which would otherwise fail with a traceback)."""

    path: Path
    options: dict[str, Any]
    event_file_text: str
    statistics: dict[str, Any]
    frozen: tuple[str, ...]
    epochs_done: int
    weight_shapes: dict[str, tuple[int, ...]]
    steps_per_epoch: int | None = None
    """Optimiser steps per epoch of the run that wrote it (None: not known, an early checkpoint of
    an older version): its schedule and its place in an epoch count these steps."""
    processes: int | None = None
    """DDP processes of the run that wrote it, which share its training split (None: not known,
    an older version)."""


def read_checkpoint_facts(path: Path) -> CheckpointFacts:
    """The facts of the checkpoint at ``path``; a file spanet-train did not write is a one-line error."""
    checkpoint = read_checkpoint(path, "a spanet_lite checkpoint")
    if not isinstance(checkpoint, dict):
        raise InputError(path, "", "a spanet_lite checkpoint", type(checkpoint).__name__)
    hyper = checkpoint.get("hyper_parameters", {})
    missing = [k for k in ("event_file_text", "options", "statistics") if k not in hyper]
    if missing:
        raise InputError(path, "hyper_parameters", "a spanet_lite checkpoint", f"no {', '.join(missing)}")
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise InputError(path, "state_dict", "a checkpoint with a state_dict", "none in the file")
    callbacks = checkpoint.get("callbacks", {})
    rows = next((value.get("rows", []) for key, value in callbacks.items()
                 if "RunRecorder" in str(key) and isinstance(value, dict)), [])
    return CheckpointFacts(
        path=path,
        options=hyper["options"],
        event_file_text=hyper["event_file_text"],
        statistics=hyper["statistics"],
        frozen=tuple(hyper.get("frozen", ())),
        epochs_done=len({row.get("epoch") for row in rows if isinstance(row, dict)}),
        weight_shapes={k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")},
        steps_per_epoch=_steps_per_epoch(checkpoint.get("steps_per_epoch"), rows),
        processes=checkpoint.get("processes") if isinstance(checkpoint.get("processes"), int) else None,
    )


def _steps_per_epoch(saved: object, rows: list[Any]) -> int | None:
    """The checkpoint's steps per epoch: saved with it, or (older checkpoints) the ``step`` column
    of its last whole epoch in ``metrics.csv``'s rows; None when neither tells."""
    if isinstance(saved, int) and saved > 0:
        return saved
    steps = {row.get("epoch"): row.get("step") for row in rows if isinstance(row, dict)}
    last = max((e for e in steps if isinstance(e, int)), default=None)
    if last is None or not isinstance(steps[last], int):
        return None
    before = 0 if last == 0 else steps.get(last - 1)
    return steps[last] - before if isinstance(before, int) and steps[last] > before else None
