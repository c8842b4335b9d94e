"""``train()``: the Python API behind ``spanet-train``.

Order of work, so that bad input costs nothing and leaves nothing behind:

1. read the options (file or checkpoint), apply command-line overrides, check every value;
2. check the files, read the event file, open the dataset and compute its statistics
   (the dataset checks itself against the event file);
3. only then create ``<log_dir>/<name>/version_N/`` and train.

Every failure in 1-2 is an :class:`~spanet_lite.errors.InputError`; nothing is written before
step 3. The run directory layout is described in :mod:`spanet_lite.training.recorder`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from spanet_lite.config.options import Options
from spanet_lite.errors import InputError

DEFAULT_LOG_DIR = "runs"


@dataclass
class RunResult:
    """What a finished (or stopped) run left behind."""

    run_dir: Path | None
    """``<log_dir>/<name>/version_N`` (None for ``fast_dev_run``, which writes nothing)."""
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    monitor: str
    """The validation metric that chose ``best.ckpt`` (e.g. ``val/event_purity``)."""
    best_value: float | None
    best_epoch: int | None
    """0-based epoch of the best checkpoint."""
    epochs_completed: int
    stopped: str | None = None
    """None when the run finished; otherwise why it stopped ("interrupted", "time limit reached")."""
    resume_checkpoint: Path | None = None
    """The checkpoint ``--resume`` continues from when the run stopped early."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The last epoch's row of ``metrics.csv``."""
    seconds: float = 0.0


@dataclass
class _Plan:
    """Everything decided before training starts."""

    options: Options
    sources: dict[str, str]
    event_file_text: str
    event_file: Path | None
    training_file: Path
    validation_file: Path | None
    resume_checkpoint: Path | None
    run_dir: Path | None
    statistics: dict[str, Any] | None


def train(
    options: Options | str | Path | None = None,
    *,
    event_file: str | Path | None = None,
    training_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    gpus: int | None = None,
    nodes: int = 1,
    processes: int | None = None,
    log_dir: str | Path = DEFAULT_LOG_DIR,
    name: str | None = None,
    resume: str | Path | None = None,
    fast_dev_run: bool = False,
    precision: str | None = None,
    seed: int | None = None,
    time_limit: str | float | None = None,
    quiet: bool = False,
    console: Console | None = None,
    callbacks: Sequence[Any] = (),
    option_values: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
    state_dict: str | Path | None = None,
    freeze_state_dict: bool = False,
    allow_unknown_keys: bool = False,
) -> RunResult:
    """Train a network and record the run; see the module docstring.

    ``options`` is an options file (SPANet JSON) or an :class:`Options`; it may be left out
    with ``resume``, which continues ``RUN_DIR/checkpoints/last.ckpt`` (or the newer
    ``interrupted.ckpt``) or a given ``.ckpt`` with that run's options. Keyword arguments
    override the options (the options table marks them as ``command line``). ``gpus`` > 0
    trains on CUDA devices; ``processes`` > 1 runs CPU data-parallel processes (gloo);
    more than one device or node uses DDP. ``console`` receives the options table, progress
    and the summary; nothing is printed without it. ``callbacks`` are extra Lightning
    callbacks, run after ours. ``option_values`` overrides any other option key (e.g.
    ``{"dataset_limit": 0.1}``), marked ``command line`` like the keyword arguments.

    Starting points (SPANet's ``-cf``, ``-sf``, ``-fsf``):

    * ``checkpoint``: restore the full training state (weights, optimiser, schedule, epoch)
      from a ``.ckpt`` into a *new* run directory, with the options given here (SPANet's
      ``-cf``). Without ``options`` it is the same as ``resume``.
    * ``state_dict``: start from another run's weights (every tensor whose name and shape
      match, :func:`~spanet_lite.training.weights.load_initial_weights`), with a fresh
      optimiser and schedule; ``freeze_state_dict`` keeps those weights fixed (fine-tuning).

    ``allow_unknown_keys`` turns unknown keys in the options file from an error into a warning.
    """
    from spanet_lite.training.interrupt import parse_time_limit

    started = time.monotonic()
    overrides = {
        key: value
        for key, value in {
            "event_info_file": None if event_file is None else str(event_file),
            "training_file": None if training_file is None else str(training_file),
            "validation_file": None if validation_file is None else str(validation_file),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "precision": precision,
            "seed": seed,
            **(option_values or {}),
        }.items()
        if value is not None
    }
    if checkpoint is not None and resume is not None:
        raise InputError(None, "-cf/--checkpoint", "either -cf CKPT or --resume, not both")
    if checkpoint is not None and options is None:
        resume, checkpoint = checkpoint, None
    if state_dict is not None and (resume is not None or checkpoint is not None):
        raise InputError(
            None, "-sf/--state_dict",
            "either initial weights (-sf) or a checkpoint to continue (-cf/--resume), not both",
        )
    if freeze_state_dict and state_dict is None:
        raise InputError(
            None, "-fsf/--freeze_state_dict", "a -sf/--state_dict checkpoint whose weights to freeze"
        )
    try:
        limit = parse_time_limit(time_limit)
    except ValueError:
        raise InputError(
            None, "--time-limit", "a duration such as 3600, 45m, 2h or 01:30:00", repr(time_limit)
        ) from None
    plan = _plan(options, resume, overrides, checkpoint, allow_unknown_keys=allow_unknown_keys)
    accelerator, devices, gpu_note = _devices(plan.options, gpus, processes)
    if nodes < 1:
        raise InputError(None, "--nodes", "a positive number of nodes", str(nodes))
    precision_value = _precision(plan.options, accelerator, explicit=precision is not None)

    rank = _rank_from_environment()
    show = console if (console is not None and rank == 0) else None
    datamodule, spec, statistics = _open_data(plan)
    if show is not None and not quiet:
        _print_options(show, plan)
    if show is not None:
        from spanet_lite.config.options import without_effect_summary

        summary = without_effect_summary(plan.options)
        if summary is not None:
            show.print(summary, highlight=False, soft_wrap=True)
    if show is not None and gpu_note:
        show.print(gpu_note, highlight=False)
    for note in datamodule.notes if show is not None else ():
        show.print(note, highlight=False, soft_wrap=True)

    return _fit(
        plan,
        spec,
        datamodule,
        statistics,
        accelerator=accelerator,
        devices=devices,
        nodes=nodes,
        precision=precision_value,
        log_dir=Path(log_dir),
        name=name,
        fast_dev_run=fast_dev_run,
        time_limit=limit,
        quiet=quiet,
        console=show,
        started=started,
        extra_callbacks=list(callbacks),
        initial_weights=(Path(state_dict), freeze_state_dict) if state_dict is not None else None,
    )


# --------------------------------------------------------------------------- planning
def _plan(
    options: Options | str | Path | None,
    resume: str | Path | None,
    overrides: dict[str, Any],
    checkpoint: str | Path | None = None,
    *,
    allow_unknown_keys: bool = False,
) -> _Plan:
    """Options + overrides + files, checked; reads the checkpoint when resuming.

    ``checkpoint`` (with ``options``): a new run that restores its training state from that
    file; the network's normalisation comes from the checkpoint, as its weights were trained
    against it.
    """
    from spanet_lite import config as options_module

    statistics = None
    resume_checkpoint = run_dir = None
    event_text: str | None = None
    if resume is not None:
        if options is not None:
            raise InputError(
                None,
                "--resume",
                "no options file together with --resume "
                "(the run's own options are used; override single values instead)",
            )
        if "event_info_file" in overrides:
            raise InputError(
                None,
                "--event-file",
                "no --event-file with --resume (the network is built from the run's own event file)",
            )
        resume_checkpoint, run_dir = _resume_target(Path(resume))
        hyper = _checkpoint_hyper_parameters(resume_checkpoint)

        loaded = Options.from_dict(hyper["options"])
        event_text = hyper["event_file_text"]
        statistics = hyper["statistics"]
        options_path = None
    elif options is None:
        raise InputError(None, "OPTIONS", "an options file (or --resume RUN_DIR)")
    elif isinstance(options, Options):
        loaded, options_path = options, None
    else:
        options_path = Path(options)
        loaded = options_module.load_options(options_path, allow_unknown_keys=allow_unknown_keys)
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise InputError(
                Path(checkpoint), "-cf/--checkpoint", "a checkpoint file (.ckpt)", "no such file"
            )
        resume_checkpoint = Path(checkpoint).resolve()
        statistics = _checkpoint_hyper_parameters(resume_checkpoint)["statistics"]

    sources = {key: "command line" for key in overrides}
    merged = loaded.replace(**overrides) if overrides else loaded
    options_module.validate_options(merged, options_path, command_line=tuple(overrides))

    def locate(key: str, required: bool) -> Path | None:
        value = getattr(merged, key)
        if not value and not required:
            return None
        where = None if key in overrides else options_path
        path = options_module.resolve_path(value, key, where)
        if not path.is_file():
            raise InputError(where, key, "a file", f"{value!r}: not a regular file")
        return path.resolve()

    event_path = None
    if event_text is None:
        event_path = locate("event_info_file", required=True)
        assert event_path is not None
        event_text = event_path.read_text(encoding="utf-8")
    training = locate("training_file", required=True)
    assert training is not None
    validation = locate("validation_file", required=False)
    # options.json records resolved absolute paths, so a run resumes from any directory.
    resolved = {"training_file": str(training), "validation_file": str(validation) if validation else ""}
    if event_path is not None:
        resolved["event_info_file"] = str(event_path)
    merged = _with_values(merged, resolved)
    return _Plan(
        merged, sources, event_text, event_path, training, validation, resume_checkpoint, run_dir, statistics
    )


def _with_values(options: Options, values: dict[str, Any]) -> Options:
    """Like ``Options.replace`` without marking ``values`` as explicitly set."""
    updated = options.replace(**values)
    updated.explicit = options.explicit
    return updated


def _resume_target(path: Path) -> tuple[Path, Path | None]:
    """(checkpoint to load, run directory to continue or None) for ``--resume PATH``."""
    from spanet_lite.training.interrupt import INTERRUPTED_CHECKPOINT
    from spanet_lite.training.recorder import CHECKPOINTS, LAST

    if path.is_dir():
        last = path / CHECKPOINTS / LAST
        interrupted = path / CHECKPOINTS / INTERRUPTED_CHECKPOINT
        candidates = [p for p in (interrupted, last) if p.is_file()]
        if not candidates:
            raise InputError(
                path,
                "",
                f"a run directory with {CHECKPOINTS}/{LAST} or {INTERRUPTED_CHECKPOINT}",
                "no checkpoint",
            )
        checkpoint = max(candidates, key=lambda p: p.stat().st_mtime_ns)
        return checkpoint, path.resolve()
    if not path.is_file():
        raise InputError(path, "--resume", "a run directory or a .ckpt file", "nothing at that path")
    run_dir = path.resolve().parent.parent
    in_run = path.resolve().parent.name == CHECKPOINTS and (run_dir / "options.json").is_file()
    return path.resolve(), run_dir if in_run else None


def _checkpoint_hyper_parameters(path: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file
        raise InputError(path, "", "a spanet_lite checkpoint", type(error).__name__) from None
    hyper = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    missing = [k for k in ("event_file_text", "options", "statistics") if k not in hyper]
    if missing:
        raise InputError(path, "hyper_parameters", "a spanet_lite checkpoint", f"no {', '.join(missing)}")
    return hyper


def _devices(options: Options, gpus: int | None, processes: int | None) -> tuple[str, int, str | None]:
    """(accelerator, devices per node, note for the user).

    ``--gpus N`` must be satisfiable; the options file's ``num_gpu`` is a wish (SPANet files
    say ``"num_gpu": 1``), so without CUDA it falls back to the CPU with a note.
    """
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus is not None:
        if gpus < 0:
            raise InputError(None, "--gpus", "a number of GPUs >= 0", str(gpus))
        if gpus > available:
            raise InputError(None, "--gpus", f"at most {available} (CUDA devices visible here)", str(gpus))
        wanted, note = gpus, None
    else:
        wanted = max(0, int(options.num_gpu or 0))
        note = None
        if wanted > available:
            # SPANet's default (1) is no wish of the user's: only a num_gpu the file sets gets a note.
            if "num_gpu" in options.explicit:
                note = (
                    f"num_gpu = {wanted} in the options, but {available} CUDA device(s) are visible: "
                    f"using {'the CPU' if available == 0 else f'{available} GPU(s)'}"
                )
            wanted = available
    if processes is not None and processes < 1:
        raise InputError(None, "--processes", "a number of processes >= 1", str(processes))
    if wanted > 0:
        return "gpu", wanted, note
    return "cpu", processes or 1, note


def _precision(options: Options, accelerator: str, *, explicit: bool) -> str:
    """The options' precision; on a GPU, mixed precision unless the user chose otherwise."""
    chosen = str(options.precision)
    if accelerator == "cpu" and chosen in ("16-mixed", "16"):
        raise InputError(
            None, "precision",
            "32-true or bf16-mixed on the CPU (16-bit mixed precision, -fp16, needs a GPU)", chosen,
        )
    if accelerator == "gpu" and not explicit and "precision" not in options.explicit:
        import torch

        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return chosen


def _rank_from_environment() -> int:
    """Global rank of this process as set by torchrun / SLURM / Lightning's launcher (0 if none)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(key)
        if value and value.isdigit():
            if key == "SLURM_PROCID" and int(os.environ.get("SLURM_NTASKS", "1") or 1) <= 1:
                continue
            return int(value)
    return 0


def _open_data(plan: _Plan) -> tuple[Any, Any, Any]:
    """Event spec, data module (set up: files checked, statistics computed) and statistics."""
    from spanet_lite.config.event_file import parse_event_spec
    from spanet_lite.dataset.datamodule import SpanetDataModule
    from spanet_lite.dataset.statistics import DatasetStatistics

    spec = parse_event_spec(plan.event_file_text, source=str(plan.event_file or "event_file.yaml"))
    given = None if plan.statistics is None else DatasetStatistics.from_dict(plan.statistics)
    datamodule = SpanetDataModule(
        spec,
        plan.options,
        training_file=plan.training_file,
        validation_file=plan.validation_file,
        testing_file=None,
        statistics=given,
    )
    datamodule.setup("fit")
    statistics = datamodule.statistics
    return datamodule, spec, statistics


def _print_options(console: Console, plan: _Plan) -> None:
    from spanet_lite.config.options_table import options_table

    console.print(options_table(plan.options, overrides=plan.sources))


# ---------------------------------------------------------------------------- fitting
def _monitor(spec: Any) -> tuple[str, str]:
    """Best checkpoint by validation event purity when there are particles, else validation loss."""
    return ("val/event_purity", "max") if spec.particles else ("val/total_loss", "min")


def _fit(
    plan: _Plan,
    spec: Any,
    datamodule: Any,
    statistics: Any,
    *,
    accelerator: str,
    devices: int,
    nodes: int,
    precision: str,
    log_dir: Path,
    name: str | None,
    fast_dev_run: bool,
    time_limit: float | None,
    quiet: bool,
    console: Console | None,
    started: float,
    extra_callbacks: list[Any],
    initial_weights: tuple[Path, bool] | None = None,
) -> RunResult:
    import lightning.pytorch as pl
    import torch

    from spanet_lite.dataset.datamodule import SpanetDataModule
    from spanet_lite.training.interrupt import RunData, StopController, TrainingStopped
    from spanet_lite.training.module import SpanetModule
    from spanet_lite.training.progress import ProgressDisplay
    from spanet_lite.training.recorder import BEST, CHECKPOINTS, LAST, AtomicCheckpointIO, RunRecorder

    options = plan.options
    distributed = devices * nodes > 1
    _quiet_lightning()
    if accelerator == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices))
    pl.seed_everything(options.seed, workers=True, verbose=False)
    module = SpanetModule(plan.event_file_text, options, statistics)
    if initial_weights is not None:
        from spanet_lite.training.weights import load_initial_weights

        loaded = load_initial_weights(module, initial_weights[0], freeze=initial_weights[1])
        if console is not None:
            console.print(loaded.summary(), highlight=False)
    if plan.resume_checkpoint is not None:
        _check_checkpoint_fits(module, plan.resume_checkpoint)

    monitor, mode = _monitor(spec)
    run_name = name or Path(plan.event_file or "spanet").stem or "spanet"
    options_json = json.dumps(options.to_dict(), indent=2) + "\n"
    recorder = RunRecorder(
        parent=log_dir / run_name,
        files={
            "options.json": options_json,
            "event_file.yaml": plan.event_file_text,
            "statistics.json": json.dumps(statistics.to_dict(), indent=2) + "\n",
        },
        monitor=monitor,
        mode=mode,
        run_dir=plan.run_dir,
        clock=lambda: time.monotonic() - started,
    )
    stopper = StopController(lambda: recorder.checkpoint_dir, time_limit, started)
    callbacks: list[Any] = [stopper]
    live = console is not None and console.is_terminal and not quiet
    display = None
    if console is not None:
        display = ProgressDisplay(
            console, epochs=options.epochs, monitor=monitor, live=live, recorder=recorder
        )
        callbacks.append(display)
    if not fast_dev_run:
        callbacks.insert(0, recorder)
    callbacks.extend(extra_callbacks)

    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=nodes,
        strategy="ddp" if distributed else "auto",
        precision=precision,  # type: ignore[arg-type]
        max_epochs=options.epochs,
        gradient_clip_val=options.gradient_clip or None,
        gradient_clip_algorithm="norm",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        fast_dev_run=fast_dev_run,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(log_dir),
        use_distributed_sampler=False,
    )
    if distributed:
        # The shares of each process are cut once the process group exists (inside fit);
        # statistics were computed above over the whole training split.
        datamodule = SpanetDataModule(
            spec,
            options,
            training_file=plan.training_file,
            validation_file=plan.validation_file,
            testing_file=None,
            statistics=statistics,
        )
    data = RunData(datamodule, options.seed)
    stopped: str | None = None
    resume_from: Path | None = None
    stopper.install_signal_handler()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*The number of training batches.*")
            warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)`? is deprecated.*")
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(plan.resume_checkpoint) if plan.resume_checkpoint else None,
            )
    except TrainingStopped as stop:
        stopped, resume_from = stop.reason, stop.checkpoint
    finally:
        stopper.restore_signal_handler()
        if display is not None:
            display.close()

    run_dir = None if fast_dev_run else recorder.run_dir
    checkpoints = None if run_dir is None else run_dir / CHECKPOINTS
    result = RunResult(
        run_dir=run_dir,
        best_checkpoint=checkpoints / BEST if checkpoints and (checkpoints / BEST).is_file() else None,
        last_checkpoint=checkpoints / LAST if checkpoints and (checkpoints / LAST).is_file() else None,
        monitor=monitor,
        best_value=recorder.best_value,
        best_epoch=recorder.best_epoch,
        epochs_completed=len(recorder.rows),
        stopped=stopped,
        resume_checkpoint=resume_from,
        metrics={
            k: v for k, v in (recorder.rows[-1] if recorder.rows else {}).items() if isinstance(v, float)
        },
        seconds=time.monotonic() - started,
    )
    if console is not None:
        from spanet_lite.training.progress import summary_table

        console.print(summary_table(result))
    return result


def _check_checkpoint_fits(module: Any, path: Path) -> None:
    """One line instead of Lightning's traceback when a checkpoint's weights do not fit the network
    (``-cf`` with options that build another network)."""
    from spanet_lite.training.weights import read_state_dict

    given = read_state_dict(path)
    own = module.state_dict()
    reshaped = [k for k in own if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    if reshaped or missing or unexpected:
        example = reshaped[0] if reshaped else (missing or unexpected)[0]
        raise InputError(
            path, "state_dict", "weights of the network these options build",
            f"{len(reshaped)} tensors of another shape, {len(missing)} missing, {len(unexpected)} unexpected "
            f"(e.g. {example})",
        )


def _quiet_lightning() -> None:
    """Lightning's start-up chatter (GPU available..., seed set...) is noise in our output."""
    for logger_name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning"):
        logging.getLogger(logger_name).setLevel(logging.WARNING)
