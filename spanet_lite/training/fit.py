"""Fitting a planned run: the Lightning module and trainer, signals, the run directory, the result.

:func:`open_data` reads the training data for a :class:`~spanet_lite.training.plan.Plan`;
:func:`fit` trains on it with the chosen :class:`~spanet_lite.training.hardware.Hardware`.
The run directory layout is described in :mod:`spanet_lite.training.recorder`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.errors import InputError
from spanet_lite.training.hardware import Hardware
from spanet_lite.training.plan import CheckpointFacts, Plan

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from spanet_lite.config.options import Options
    from spanet_lite.dataset.datamodule import SpanetDataModule
    from spanet_lite.dataset.statistics import DatasetStatistics
    from spanet_lite.training.interrupt import RunData, StopController
    from spanet_lite.training.module import SpanetModule
    from spanet_lite.training.recorder import RunRecorder
    from spanet_lite.training.weights import InitialWeights


@dataclass
class RunResult:
    """What a finished (or stopped) run left behind."""

    run_dir: Path | None
    """``<log_dir>/<name>/version_N``, absolute and resolved, for a new run as for a resumed one
    (None for ``fast_dev_run``, which writes nothing)."""
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
    resume_flags: str = ""
    """The device flags ``--resume`` must repeat (e.g. ``--processes 2``): the processes share the
    training split, so another count takes other steps per epoch, which a resume refuses."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The last epoch's row of ``metrics.csv``."""
    seconds: float = 0.0
    signal_number: int | None = None
    """The signal that stopped the run (SIGINT, SIGTERM, SIGUSR1), None otherwise; ``spanet-train``
    exits with 128 + this number, as a shell reports a process ended by that signal."""
    notes: tuple[str, ...] = ()
    """The lines the run said about itself before training, in order: SPANet option keys without
    effect here, the hardware chosen (e.g. ``num_gpu`` asked for and no CUDA device), pair features,
    event weights, data and compile choices, weights loaded from another run. A console shows them
    as they happen; without one (a notebook) this is where to read them."""


@dataclass
class OpenedData:
    """The training data of a plan, opened and checked, with its statistics computed."""

    spec: EventSpec
    datamodule: SpanetDataModule
    statistics: DatasetStatistics


@dataclass
class FitRequest:
    """How to run the fit: where to record it, what to show, when to stop."""

    log_dir: Path
    name: str | None
    started: float
    """``time.monotonic()`` when the command started (the time limit counts from there)."""
    fast_dev_run: bool = False
    time_limit: float | None = None
    quiet: bool = False
    console: Console | None = None
    extra_callbacks: Sequence[Any] = ()
    initial_weights: InitialWeights | None = None
    """Another run's weights to start from (SPANet's -sf / -fsf)."""
    notes: tuple[str, ...] = ()
    """What the caller already said about the run (``RunResult.notes`` starts with them)."""


def open_data(plan: Plan, hardware: Hardware) -> OpenedData:
    """Event spec, data module (set up: files checked, statistics computed) and statistics."""
    from spanet_lite.config.event_file import parse_event_spec
    from spanet_lite.dataset.statistics import DatasetStatistics

    spec = parse_event_spec(plan.event_file_text, source=str(plan.event_file or "event_file.yaml"))
    given = None if plan.statistics is None else DatasetStatistics.from_dict(plan.statistics)
    datamodule = _datamodule(plan, spec, given, hardware)
    datamodule.setup("fit")
    if plan.run_dir is not None and given is not None:
        _check_same_training_data(plan, given.num_training_events, datamodule.num_training_events)
    statistics = datamodule.statistics
    return OpenedData(spec, datamodule, statistics)


def _check_same_training_data(plan: Plan, recorded: int, found: int | None) -> None:
    """``--resume`` continues a run on the data it started from: a training file replaced since
    (same path, other events) would otherwise train on silently, normalised by the old data's
    statistics. Runs recorded before the count was kept (0) are not checked."""
    if recorded and found is not None and found != recorded:
        raise InputError(
            plan.training_file, "", f"the training data this run started from ({recorded:,} training events)",
            f"{found:,} training events: the file changed since (to train on it, start a new run with "
            f"initial weights from {plan.run_dir}/checkpoints/last.ckpt to keep the weights)",
        )


def monitor_for(spec: EventSpec) -> tuple[str, str]:
    """Best checkpoint by validation event purity when there are particles, else validation loss."""
    return ("val/event_purity", "max") if spec.particles else ("val/total_loss", "min")


def fit(plan: Plan, data: OpenedData, hardware: Hardware, request: FitRequest) -> RunResult:
    """Build the module and the trainer, train, and say what the run left behind.

    The process-wide settings a run needs (:func:`_run_settings`) hold while it trains and are
    put back when it returns, so a notebook's thread count and logging are its own again."""
    with _run_settings(hardware):
        return _fit(plan, data, hardware, request)


def run_parent(plan: Plan, log_dir: Path, name: str | None) -> Path:
    """``<log_dir>/<name>``, the folder a new run's ``version_N`` goes in; ``name`` defaults to
    the event file's name (a run from a checkpoint alone, -cf, has the one its options record)."""
    event_file = plan.event_file or plan.options.event_info_file or "spanet"
    return log_dir / (name or Path(event_file).stem or "spanet")


def _fit(plan: Plan, data: OpenedData, hardware: Hardware, request: FitRequest) -> RunResult:
    from spanet_lite.training.interrupt import RunData, StopController
    from spanet_lite.training.progress import ProgressDisplay, summary_table
    from spanet_lite.training.recorder import RunRecorder, incomplete_note

    options, console = plan.options, request.console
    notes = list(request.notes)
    module = _build_module(plan, data, hardware, request, notes)
    monitor, mode = monitor_for(data.spec)
    recorder = RunRecorder(
        parent=run_parent(plan, request.log_dir, request.name),
        files={
            "options.json": json.dumps(options.to_dict(), indent=2) + "\n",
            "event_file.yaml": plan.event_file_text,
            "statistics.json": data.statistics.to_json(),
        },
        monitor=monitor,
        mode=mode,
        run_dir=plan.run_dir,
        clock=lambda: time.monotonic() - request.started,
    )
    stopper = StopController(lambda: recorder.checkpoint_dir, request.time_limit, request.started)
    callbacks: list[Any] = [stopper]
    display = None
    if console is not None:
        live = console.is_terminal and not request.quiet
        display = ProgressDisplay(console, epochs=options.epochs, monitor=monitor, live=live,
                                  recorder=recorder)
        callbacks.append(display)
    if not request.fast_dev_run:
        callbacks.insert(0, recorder)
    callbacks.extend(request.extra_callbacks)
    trainer = _build_trainer(hardware, options, callbacks, request)

    datamodule = data.datamodule
    if hardware.distributed:
        # The shares of each process are cut once the process group exists (inside fit);
        # statistics were computed above over the whole training split.
        datamodule = _datamodule(plan, data.spec, data.statistics, hardware)
    if plan.run_dir is not None and console is not None:
        note = incomplete_note(plan.run_dir)
        if note:
            console.print(f"{plan.run_dir} was left incomplete ({note}); its files are rewritten "
                          "from the checkpoint as the run continues", highlight=False, markup=False)
    stopper.install_signal_handler()
    try:
        ending = _train(trainer, module, RunData(datamodule, options.seed), plan, hardware, recorder,
                        stopper, request)
    finally:
        stopper.restore_signal_handler()
        module.drop_compiled()
        if display is not None:
            display.close()

    result = _result(recorder, monitor, ending, request, tuple(notes), hardware)
    if console is not None:
        console.print(summary_table(result))
    return result


@dataclass
class _Ending:
    """How ``trainer.fit`` returned: None throughout when the run finished."""

    stopped: str | None = None
    checkpoint: Path | None = None
    signal_number: int | None = None


def _datamodule(
    plan: Plan, spec: EventSpec, statistics: DatasetStatistics | None, hardware: Hardware
) -> SpanetDataModule:
    from spanet_lite.dataset.datamodule import SpanetDataModule

    return SpanetDataModule(spec, plan.options, training_file=plan.training_file,
                            validation_file=plan.validation_file, testing_file=None, statistics=statistics,
                            on_gpu=hardware.accelerator == "gpu")


def _build_module(
    plan: Plan, data: OpenedData, hardware: Hardware, request: FitRequest, notes: list[str]
) -> SpanetModule:
    """The LightningModule, seeded, with -sf weights loaded, a -cf/--resume checkpoint checked to
    fit, and the compile mode chosen for the steps this run has left; what it says about the
    weights and the compile mode, and a compile that fails mid-run, is added to ``notes`` (and
    shown on the console)."""
    import lightning.pytorch as pl

    from spanet_lite.devices import device_failure
    from spanet_lite.training.compilation import choose_compile
    from spanet_lite.training.module import SpanetModule

    options, console, accelerator = plan.options, request.console, hardware.accelerator
    pl.seed_everything(options.seed, workers=True, verbose=False)
    try:
        module = SpanetModule(plan.event_file_text, options, data.statistics, frozen=plan.frozen)
    except RuntimeError as error:  # the weights alone do not fit (hidden_dim 10^8, say)
        failure = device_failure(error)
        if failure is None:
            raise
        raise InputError(
            None, "hidden_dim and the layer counts", "a network whose weights fit in memory", failure
        ) from None

    def report(line: str) -> None:  # also what the module says mid-run: a compile that failed
        notes.append(line)
        if console is not None:
            console.print(line, highlight=False, soft_wrap=True, markup=False)

    module.report = report
    initial_weights = request.initial_weights
    if initial_weights is not None:
        from spanet_lite.training.weights import load_initial_weights

        loaded = load_initial_weights(module, initial_weights)
        if initial_weights.freeze:
            module.freeze_parameters(loaded.loaded)
        report(loaded.summary())
    if plan.resumed is not None:
        _check_checkpoint_fits(module, plan.resumed)

    processes = max(1, hardware.devices * hardware.nodes)
    # Each process takes an equal share of the training split (datamodule: equal_share).
    steps_per_epoch = math.ceil((data.datamodule.num_training_events or 0) // processes / options.batch_size)
    if plan.resumed is not None:
        check_steps_per_epoch(plan, steps_per_epoch, processes)
    # A resumed run (or one restored with -cf) plans only the epochs it has left.
    epochs_left = max(0, options.epochs - plan.epochs_done)
    choice = choose_compile(
        options, accelerator, planned_steps=epochs_left * steps_per_epoch, time_limit=request.time_limit
    )
    module.compile_mode = choice.mode
    if choice.note:
        report(choice.note)
    return module


def _build_trainer(
    hardware: Hardware, options: Options, callbacks: list[Any], request: FitRequest
) -> pl.Trainer:
    """Lightning's Trainer with our own checkpointing, progress and logging in place of its own."""
    import lightning.pytorch as pl

    from spanet_lite.training.recorder import AtomicCheckpointIO

    return pl.Trainer(
        accelerator=hardware.accelerator,
        devices=hardware.devices,
        num_nodes=hardware.nodes,
        strategy="ddp" if hardware.distributed else "auto",
        precision=hardware.precision,  # type: ignore[arg-type]
        max_epochs=options.epochs,
        gradient_clip_val=options.gradient_clip or None,
        gradient_clip_algorithm="norm",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        fast_dev_run=request.fast_dev_run,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(request.log_dir),
        use_distributed_sampler=False,
    )


def _train(trainer: pl.Trainer, module: SpanetModule, data: RunData, plan: Plan, hardware: Hardware,
           recorder: RunRecorder, stopper: StopController, request: FitRequest) -> _Ending:
    """``trainer.fit``, with a stop (signal, time limit) as an :class:`_Ending` and a full disk or
    a failing device as one line."""
    import signal

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from spanet_lite.devices import CPU_MEMORY_WORDS, device_failure
    from spanet_lite.training.interrupt import TrainingStopped
    from spanet_lite.training.recorder import mark_incomplete

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*The number of training batches.*")
            # Our IterableDatasets know their length exactly (every worker reads distinct blocks), so
            # Lightning's generic caution about ``__len__`` with several workers does not apply.
            warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)`? is deprecated.*")
            # The epoch metrics are computed from every process's gathered records (module.py), so
            # each process logs the same values: Lightning's advice to sync them does not apply.
            warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed.*")
            # Lightning's all_gather (validation records, module.py) calls a torch function that
            # torch 2.x deprecates: advice to Lightning, printed by every process of every DDP run.
            warnings.filterwarnings("ignore", message=r".*nn\.functional\.all_gather is deprecated")
            trainer.fit(
                module,
                datamodule=data,
                ckpt_path=str(plan.resume_checkpoint) if plan.resume_checkpoint else None,
            )
    except TrainingStopped as stop:
        return _Ending(stop.reason, stop.checkpoint, stop.signal_number)
    except SIGTERMException:  # Lightning's own SIGTERM exit, if the signal came before on_train_start
        reason = stopper.reason or "terminated (SIGTERM)"
        return _Ending(reason, None, stopper.signal_number or signal.SIGTERM)
    except OSError as error:  # a full disk or a folder gone read-only: say so in the run directory
        if recorder.run_dir is None or request.fast_dev_run:
            raise
        raise mark_incomplete(recorder.run_dir, error) from None
    except RuntimeError as error:  # a GPU that is busy, lost or out of memory: one line
        failure = device_failure(error)
        if failure is None:
            raise
        if hardware.accelerator == "cpu" and CPU_MEMORY_WORDS in failure:
            raise InputError(None, "batch_size", "training steps that fit in memory", failure) from None
        # The keyword the caller passed, else the option (spanet-train names the flag it was typed as).
        wanted = f"usable {hardware.accelerator.upper()} devices"
        raise InputError(None, hardware.chosen_by, wanted, failure) from None
    return _Ending()


def _result(
    recorder: RunRecorder, monitor: str, ending: _Ending, request: FitRequest, notes: tuple[str, ...],
    hardware: Hardware,
) -> RunResult:
    """What the run left behind, read from the recorder and the run directory."""
    from spanet_lite.training.recorder import BEST, CHECKPOINTS, LAST

    run_dir = None if request.fast_dev_run else recorder.run_dir
    checkpoints = None if run_dir is None else run_dir / CHECKPOINTS
    last = checkpoints / LAST if checkpoints and (checkpoints / LAST).is_file() else None
    resume_from = ending.checkpoint
    if ending.stopped is not None and resume_from is None and checkpoints is not None:
        resume_from = last
    return RunResult(
        run_dir=run_dir,
        best_checkpoint=checkpoints / BEST if checkpoints and (checkpoints / BEST).is_file() else None,
        last_checkpoint=last,
        monitor=monitor,
        best_value=recorder.best_value,
        best_epoch=recorder.best_epoch,
        epochs_completed=len(recorder.rows),
        stopped=ending.stopped,
        resume_checkpoint=resume_from,
        metrics={
            k: v for k, v in (recorder.rows[-1] if recorder.rows else {}).items() if isinstance(v, float)
        },
        seconds=time.monotonic() - request.started,
        signal_number=ending.signal_number,
        notes=notes,
        resume_flags=resume_flags(hardware),
    )


def resume_flags(hardware: Hardware) -> str:
    """The ``spanet-train`` flags that gave ``hardware`` its devices, when the options' ``num_gpu``
    (which a resume reads again from the run) did not: ``--processes``, ``--gpus``, ``--nodes``."""
    flags = []
    if hardware.chosen_by == "processes" and hardware.devices > 1:
        flags.append(f"--processes {hardware.devices}")
    elif hardware.chosen_by == "gpus":
        flags.append(f"--gpus {hardware.devices if hardware.accelerator == 'gpu' else 0}")
    if hardware.nodes > 1:
        flags.append(f"--nodes {hardware.nodes}")
    return " ".join(flags)


def _check_checkpoint_fits(module: SpanetModule, resumed: CheckpointFacts) -> None:
    """One line instead of Lightning's traceback when a checkpoint's weights do not fit the network
    (``-cf`` with options that build another network)."""
    given = resumed.weight_shapes
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    reshaped = [k for k in own if k in given and given[k] != own[k]]
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    if reshaped or missing or unexpected:
        example = reshaped[0] if reshaped else (missing or unexpected)[0]
        raise InputError(
            resumed.path, "state_dict", "weights of the network these options build",
            f"{len(reshaped)} tensors of another shape, {len(missing)} missing, {len(unexpected)} unexpected "
            f"(e.g. {example})",
        )


def check_steps_per_epoch(plan: Plan, steps_per_epoch: int, processes: int) -> None:
    """A run continued from a checkpoint (``--resume``, ``-cf``) must take the steps per epoch
    the checkpoint's run took: the restored learning-rate schedule counts optimiser steps (a
    resumed run with larger batches, or ``-cf`` on a smaller file, reached the schedule's end
    early and trained its last epochs at a learning rate of 0) and so does the position inside
    an interrupted epoch. One line naming ``batch_size`` when that changed, before anything is
    written; a checkpoint that does not say (older, stopped in its first epoch) is not checked."""
    resumed = plan.resumed
    if resumed is None or resumed.steps_per_epoch in (None, steps_per_epoch):
        return
    was, batch = resumed.options.get("batch_size"), plan.options.batch_size
    shares = f"batch_size {batch} x {processes} processes" if processes > 1 else f"batch_size {batch}"
    # Each process takes batch_size events of its share per step, so a run of 2 processes resumed
    # in 1 takes twice the steps with the same batch_size: say how many processes it had.
    had = resumed.processes
    theirs = f"batch_size {was} x {had} processes" if had is not None and had > 1 else f"batch_size {was}"
    raise InputError(
        resumed.path, "batch_size" if was != batch else "",
        f"the {resumed.steps_per_epoch} training steps per epoch of the checkpoint's run ({theirs}: "
        "its learning-rate schedule and its place in an epoch count steps; to train otherwise, start a "
        "new run from its weights with state_dict, -sf)",
        f"{steps_per_epoch} ({shares}, {plan.training_file.name})",
    )


LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")


@contextlib.contextmanager
def _run_settings(hardware: Hardware) -> Iterator[None]:
    """The process-wide settings of a run, for its duration only: Lightning's loggers at WARNING
    (its start-up chatter, GPU available... seed set..., is noise in our output), on the CPU one
    thread per core of the run's share (unless ``OMP_NUM_THREADS`` says otherwise), on a GPU TF32
    tensor cores (:func:`_tf32`). Each is restored on the way out: a notebook that set
    ``torch.set_num_threads(1)`` or Lightning's INFO logging keeps it after ``train()``. (The
    seeds are not restored: training seeds the global generators, as documented in
    :func:`~spanet_lite.training.run.train`.)"""
    import torch

    levels = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
    threads = torch.get_num_threads()
    try:
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        if hardware.accelerator == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // hardware.devices))
        with _tf32() if hardware.accelerator == "gpu" else contextlib.nullcontext():
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _tf32() -> Iterator[None]:
    """TF32 tensor cores for the fp32 matmuls and convolutions left outside autocast, while a GPU
    run trains, then the caller's settings back.

    Set through torch's legacy switches, which Lightning's CUDA accelerator reads back
    (``torch.get_float32_matmul_precision``). Since torch 2.9 a caller may have used the
    per-backend ``fp32_precision`` settings instead (``torch.backends.cuda.matmul.fp32_precision
    = "tf32"``), and then the legacy getters raise RuntimeError ("mix of the legacy and new
    APIs"): such a caller's settings are read and put back through ``fp32_precision``. Only a GPU
    run comes here; a CPU run reads none of them."""
    import torch

    backends = torch.backends
    try:
        matmul, cudnn = torch.get_float32_matmul_precision(), backends.cudnn.allow_tf32
        backends.cuda.matmul.allow_tf32  # noqa: B018 - read for its RuntimeError on a mix, as the two above
    except RuntimeError:
        switches = (backends.cuda.matmul, backends.mkldnn.matmul, backends.cudnn.conv, backends.cudnn.rnn)
        values = [switch.fp32_precision for switch in switches]

        def restore() -> None:
            for switch, value in zip(switches, values):
                switch.fp32_precision = value
    else:

        def restore() -> None:
            torch.set_float32_matmul_precision(matmul)
            backends.cudnn.allow_tf32 = cudnn

    torch.set_float32_matmul_precision("high")
    backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        restore()
