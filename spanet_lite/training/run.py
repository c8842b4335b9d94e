"""``train()``: the Python API behind ``spanet-train``.

Order of work, so that bad input costs nothing and leaves nothing behind:

1. read the options (file or checkpoint), apply command-line overrides, check every value;
2. check the files, read the event file, open the dataset and compute its statistics
   (the dataset checks itself against the event file);
3. only then create ``<log_dir>/<name>/version_N/`` and train.

Every failure in 1-2 is an :class:`~spanet_lite.errors.InputError`; nothing is written before
step 3. Step 1 is :mod:`~spanet_lite.training.plan` (with the devices from
:mod:`~spanet_lite.training.hardware`), steps 2-3 :mod:`~spanet_lite.training.fit`; this module
only puts them in order. The run directory layout is in :mod:`spanet_lite.training.recorder`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from spanet_lite.config.options import Options
from spanet_lite.outputs import check_writable_folder
from spanet_lite.training.fit import FitRequest, OpenedData, RunResult, fit, open_data, run_parent
from spanet_lite.training.hardware import Hardware, choose_hardware, rank_from_environment
from spanet_lite.training.losses import kl_pairs
from spanet_lite.training.plan import (
    Plan,
    check_arguments,
    check_continued_options,
    check_resume_epochs,
    plan_run,
)

DEFAULT_LOG_DIR = "runs"


def train(
    options: Options | Mapping[str, Any] | str | Path | None = None,
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

    ``options`` is an options file (SPANet JSON), an :class:`Options` or a dict of option keys
    (typed like the file's JSON object); it may be left out with ``resume``, which continues
    ``RUN_DIR/checkpoints/last.ckpt`` (or the newer
    ``interrupted.ckpt``) or a given ``.ckpt`` with that run's options. Keyword arguments
    override the options (the options table marks them as ``command line``; a bad one is refused
    under its keyword's name). ``gpus`` > 0
    trains on CUDA devices; ``processes`` > 1 runs CPU data-parallel processes (gloo);
    more than one device or node uses DDP. ``console`` receives the options table, progress
    and the summary; nothing is printed without it (the notes it would show before training, such
    as SPANet keys without effect or a CPU run where ``num_gpu`` asked for a GPU, are
    :attr:`RunResult.notes <spanet_lite.training.fit.RunResult.notes>` too). ``callbacks`` are extra Lightning
    callbacks, run after ours. ``option_values`` overrides any other option key (e.g.
    ``{"dataset_limit": 0.1}``), marked ``command line`` like the keyword arguments.

    Starting points (SPANet's ``-cf``, ``-sf``, ``-fsf``):

    * ``checkpoint``: restore the full training state (weights, optimiser, schedule, epoch)
      from a ``.ckpt`` into a *new* run directory, with the options given here (SPANet's
      ``-cf``). Without ``options`` the new run takes the checkpoint's own options (SPANet
      would build its default network); the run the checkpoint came from is left as it is.
    * ``state_dict``: start from another run's weights (every tensor whose name and shape
      match, :func:`~spanet_lite.training.weights.load_initial_weights`), with a fresh
      optimiser and schedule; ``freeze_state_dict`` keeps those weights fixed (fine-tuning).

    ``allow_unknown_keys`` turns unknown keys in the options file from an error into a warning.

    A mistake in the arguments is one :class:`~spanet_lite.errors.InputError` line naming the
    keyword (:func:`~spanet_lite.training.plan.check_arguments`), before any file is read.

    Like SPANet, training seeds Python's, numpy's and torch's global generators from the
    ``seed`` option (Lightning's ``seed_everything``), so in a notebook, random numbers drawn
    after a run follow from that seed; draw from your own ``numpy.random.default_rng`` to keep
    them independent.
    """
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
    arguments = check_arguments(
        options, event_file=overrides.get("event_info_file"), gpus=gpus, nodes=nodes, processes=processes,
        log_dir=log_dir, name=name, resume=resume, fast_dev_run=fast_dev_run, time_limit=time_limit,
        checkpoint=checkpoint, state_dict=state_dict, freeze_state_dict=freeze_state_dict,
        callbacks=callbacks,
    )
    from_keyword = event_file is not None and "event_info_file" not in (option_values or {})
    plan = plan_run(options, resume, overrides, checkpoint, allow_unknown_keys=allow_unknown_keys,
                    names={"event_info_file": "event_file"} if from_keyword else None)
    if checkpoint is not None and options is None and console is not None:
        console.print("a checkpoint without an options file: the new run takes the checkpoint's own options "
                      "(SPANet would build its default network)", highlight=False, markup=False)
    check_resume_epochs(plan)
    check_continued_options(plan)
    if plan.run_dir is None and not fast_dev_run:
        # check_arguments checked log_dir; <log_dir>/<name> (the default name needs the plan)
        # being a file failed only once the data was read, as an OS error (exit 74).
        check_writable_folder(run_parent(plan, Path(log_dir), name), "name" if name else "log_dir")
    hardware = choose_hardware(
        plan.options, gpus=arguments.gpus, processes=arguments.processes, nodes=arguments.nodes
    )
    initial = None
    if state_dict is not None:
        from spanet_lite.training.weights import read_initial_weights

        initial = read_initial_weights(state_dict, freeze=freeze_state_dict)

    rank = rank_from_environment()
    show = console if (console is not None and rank == 0) else None
    data = open_data(plan, hardware)
    if show is not None and not quiet:
        _print_options(show, plan)
    notes = _run_notes(plan, data, hardware)
    if show is not None:
        for note in notes:
            show.print(note, highlight=False, soft_wrap=True, markup=False)

    request = FitRequest(
        log_dir=Path(log_dir),
        name=name,
        started=started,
        fast_dev_run=fast_dev_run,
        time_limit=arguments.time_limit,
        quiet=quiet,
        console=show,
        extra_callbacks=arguments.callbacks,
        initial_weights=initial,
        notes=notes,
    )
    return fit(plan, data, hardware, request)


def _run_notes(plan: Plan, data: OpenedData, hardware: Hardware) -> tuple[str, ...]:
    """What this run does differently from the options as written (SPANet keys without effect,
    the hardware it falls back to) or chose for them (pair features, event weights, data), one
    line each: printed on a console and kept in ``RunResult.notes`` for a notebook without one."""
    from spanet_lite.config.options import without_effect_summary
    from spanet_lite.dataset.pair_features import auto_note

    notes = (
        without_effect_summary(plan.options),
        auto_note(data.spec, plan.options.pair_features),
        hardware.note,
        _event_weights_note(data.datamodule.event_weights, data.datamodule.event_weight_range,
                            plan.options.kl_loss_scale > 0 and bool(kl_pairs(data.spec))),
        *data.datamodule.notes,
    )
    return tuple(note for note in notes if note is not None)


def _event_weights_note(
    dataset: str | None, weight_range: tuple[float, float] | None, kl_applies: bool
) -> str | None:
    """What the per-event weights of the training and validation events do to this run, when it
    differs from SPANet's (which reads no per-event weights); None when it does not. Validation
    events count: their metrics are weighted too and choose the best checkpoint.

    Every loss and metric is a weighted mean, so equal weights change nothing, and weights that
    are all 1 (what spanet-generate writes) need no line at all. A constant other than 1 (a
    sample's cross-section over its event count, say) gets one saying it changes nothing but the
    scale of kl_loss, the one term normalised by counts (as SPANet's is), where kl applies
    (``kl_applies``: a positive kl_loss_scale and an EVENT symmetry to compare, else the term is 0).
    Varying weights change the objective: the line gives their range.
    """
    if dataset is None or weight_range is None:
        return None
    low, high = weight_range
    switch = 'event_weight_dataset; SPANet reads no per-event weights; "" turns them off'
    if low != high:
        return (f"{dataset}: training and validation event weights from {low:.4g} to {high:.4g}; "
                f"every event's losses and metrics are weighted by them ({switch})")
    if low == 1:
        return None
    kl = f", except kl_loss, which they scale by {low:.4g}" if kl_applies else ""
    return (f"{dataset}: every training and validation event has weight {low:.4g}; equal weights leave "
            f"the losses and metrics (weighted means) as without them{kl} ({switch})")


def _print_options(console: Console, plan: Plan) -> None:
    from spanet_lite.config.options_table import options_table

    console.print(options_table(plan.options, overrides=plan.sources))
