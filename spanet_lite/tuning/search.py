"""``tune()``: the Python API behind ``spanet-tune``, an Optuna study over training options.

Each trial is an ordinary training run (:func:`spanet_lite.training.run.train`) in
``<directory>/trial_NNNN/version_0``: ``spanet-test`` evaluates it like any other run. After
every epoch the trial reports its validation metric (event purity when the event file has
particles, else the validation loss), and the pruner (median or successive halving) may stop
it; a pruned trial keeps its run directory and checkpoints.

The study lives in a database: a SQLite file in ``directory`` unless ``storage`` names any
database Optuna accepts (e.g. ``postgresql://user@host/db``). Workers that share the storage
and the study name share the study, so re-running the same command continues it, ``jobs``
worker processes on one machine run trials side by side, and many machines (or a SLURM array)
can join in. ``trials`` is the size of the whole study: every worker stops once that many
trials have finished (completed or pruned).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from spanet_lite.config.options import PATH_KEYS, Options
from spanet_lite.config.options_file import as_integer
from spanet_lite.config.options_validation import check_seed
from spanet_lite.errors import InputError
from spanet_lite.outputs import Output, check_outputs, output
from spanet_lite.tuning.space import DEFAULT_SPACE, Parameter, parse_space

PRUNERS = ("median", "halving", "none")
KEYWORDS: Mapping[str, str] = MappingProxyType({
    name: name for name in ("trials", "jobs", "pruner", "epochs", "directory", "warmup_epochs",
                            "startup_trials", "seed")
})
"""How :func:`check_config`'s lines name each value by default: :class:`TuneConfig`'s fields. The
``storage`` and ``study_name``, refused only as the study opens, are named so too."""
STORAGE_FILE = "study.db"
BEST_OPTIONS = "best_options.json"
SUMMARY_CSV = "trials.csv"


@dataclass(frozen=True)
class TuneConfig:
    """What a study searches and how; the same values in every worker."""

    options_file: Path
    trials: int
    directory: Path
    space: tuple[Parameter, ...] | Mapping[str, Any] = DEFAULT_SPACE
    """The parameters, or a mapping in the search-space file's form (parsed on construction)."""
    study_name: str | None = None
    """Default: the options file's name without extension."""
    storage: str | None = None
    """An Optuna storage URL; default ``sqlite:///<directory>/study.db``."""
    pruner: str = "median"
    startup_trials: int = 3
    """Trials that run to the end before the pruner starts comparing."""
    warmup_epochs: int = 1
    """Epochs every trial runs before it can be pruned."""
    jobs: int = 1
    epochs: int | None = None
    """Epochs per trial (default: the options file's)."""
    seed: int | None = None
    """Seed of the sampler (TPE); each worker draws from (seed, worker, trials so far), see sampler_seed."""
    space_source: str = "the default search space"
    """Where ``space`` came from (its file), for error lines."""

    def __post_init__(self) -> None:
        # A notebook passes str paths and a search space as a mapping ({"hidden_dim": [16, 32]},
        # the YAML file's form); both become what the study works with.
        object.__setattr__(self, "options_file", Path(self.options_file))
        # Counts and the seed are ints from here on (their ranges are check_config's): a notebook's
        # jobs=2.0 or trials="3" was a TypeError traceback, trials=2.5 a study of 2.5 trials.
        for key in ("trials", "jobs", "warmup_epochs", "startup_trials", "epochs", "seed"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, as_integer(getattr(self, key), key))
        # Path("") is ".": an empty name (an unset variable) put the study in the current folder.
        output(self.directory, "directory", directory=True)
        object.__setattr__(self, "directory", Path(self.directory))
        if isinstance(self.space, Mapping):
            object.__setattr__(self, "space", parse_space(self.space, "space"))
            if self.space_source == "the default search space":
                object.__setattr__(self, "space_source", "space")

    @property
    def name(self) -> str:
        return self.study_name or self.options_file.stem

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.directory / STORAGE_FILE).resolve()}"


@dataclass
class TrialRow:
    """One trial as the summary shows it."""

    number: int
    state: str
    value: float | None
    epochs: int | None
    params: dict[str, Any]
    run_dir: str | None
    error: str | None = None
    planned_epochs: int | None = None
    """The epochs the trial was set to train (``--epochs`` of the command that ran it, or the
    options file's): what ``best_options.json`` asks for, whatever a continuing command's is."""


@dataclass
class TuneResult:
    monitor: str
    direction: str
    rows: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    best_options: Path | None = None
    failed_workers: int = 0
    """``--jobs`` worker processes that ended with an error (their output says why)."""


def base_options(config: TuneConfig) -> tuple[Options, dict[str, Any], str, str]:
    """The options every trial starts from (file paths made absolute), the options file's raw
    JSON object, the monitored metric and the study direction. Raises InputError early."""
    from spanet_lite.config import load_event_spec, load_options, resolve_path
    from spanet_lite.config.options_validation import validate_options
    from spanet_lite.training.fit import monitor_for

    options = load_options(config.options_file)
    if config.epochs is not None:
        options = options.replace(epochs=config.epochs)
    validate_options(options, config.options_file,
                     overrides={"epochs": "epochs"} if config.epochs is not None else None)
    paths = {key: str(resolve_path(getattr(options, key), key, config.options_file).resolve())
             for key in PATH_KEYS if getattr(options, key)}
    for key in ("event_info_file", "training_file"):
        if key not in paths:
            raise InputError(config.options_file, key, "a file name", "nothing")
    options = options.replace(**paths)
    spec = load_event_spec(paths["event_info_file"])
    monitor, mode = monitor_for(spec)
    raw = json.loads(config.options_file.read_text(encoding="utf-8-sig"))
    raw.update(paths)
    if config.epochs is not None:
        raw["epochs"] = config.epochs
    return options, raw, monitor, "maximize" if mode == "max" else "minimize"


def check_config(config: TuneConfig, names: Mapping[str, str] = KEYWORDS) -> None:
    """Values that are wrong before anything runs, each refused in one line naming it as
    ``names`` spells it (the fields by default; ``spanet-tune`` checks first with its flags)."""
    if config.seed is not None:
        check_seed(config.seed, names["seed"], bounded=True)
    if config.trials < 1:
        raise InputError(None, names["trials"], "a number of trials >= 1", str(config.trials))
    if config.jobs < 1:
        raise InputError(None, names["jobs"], "a number of worker processes >= 1", str(config.jobs))
    if config.pruner not in PRUNERS:
        raise InputError(None, names["pruner"], f"one of {', '.join(PRUNERS)}", repr(config.pruner))
    if config.epochs is not None and config.epochs < 1:
        raise InputError(None, names["epochs"], "a number of epochs >= 1", str(config.epochs))
    if config.directory.exists() and not config.directory.is_dir():
        raise InputError(config.directory, names["directory"], "a folder for the study", "a file")
    # The study's own files are replaced at every run, but never the options file it started from
    # (spanet-tune DIR/best_options.json --dir DIR wrote the winner over it).
    summaries = [Output(config.directory / BEST_OPTIONS, names["directory"]),
                 Output(config.directory / SUMMARY_CSV, names["directory"])]
    check_outputs(summaries, inputs=[config.options_file], overwrite=True)
    if config.warmup_epochs < 0:
        raise InputError(None, names["warmup_epochs"], "a number of epochs >= 0", str(config.warmup_epochs))
    if config.startup_trials < 0:
        raise InputError(None, names["startup_trials"], "a number of trials >= 0", str(config.startup_trials))


def tune(config: TuneConfig, *, console: Any = None, enqueue: Sequence[Mapping[str, Any]] = ()) -> TuneResult:
    """Run (or continue) the study until it holds ``config.trials`` finished trials.

    ``enqueue`` lists parameter sets to try first (Optuna's ``enqueue_trial``), e.g. the
    options file's own values as a baseline. Writes ``best_options.json`` and ``trials.csv``
    in ``config.directory`` and returns the summary. ``console`` (a ``rich.console.Console``)
    receives what the study searches and one line per trial (with ``jobs`` > 1, each worker
    prints its lines to its standard output instead); nothing is printed without it. Optuna's
    own log lines are held back while the study runs (:func:`_quiet_optuna`).
    """
    with _quiet_optuna():
        return _tune(config, console, enqueue)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna at ERROR for the study's duration, its level before restored after: its INFO lines
    (a study created, every trial finished) repeat what the trial lines say, and a notebook's own
    Optuna logging is its own again once ``tune()`` returns."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _tune(config: TuneConfig, console: Any, enqueue: Sequence[Mapping[str, Any]]) -> TuneResult:
    from spanet_lite.tuning.space import check_space

    check_config(config)
    options, raw, monitor, direction = base_options(config)
    check_space(config.space, options, config.space_source)
    if console is not None:
        console.print(f"study {config.name!r} in {config.storage_url}: {config.trials} trials, "
                      + ", ".join(f"{p.name} {p.describe()}" for p in config.space),
                      highlight=False, markup=False)
    created = not config.directory.exists()
    config.directory.mkdir(parents=True, exist_ok=True)
    try:
        study = _study(config, direction)
    except InputError:
        if created:  # a storage refused: leave nothing behind (rmdir only removes an empty folder)
            with contextlib.suppress(OSError):
                config.directory.rmdir()
        raise
    check_space_fits_study(study, config)
    for params in enqueue:
        study.enqueue_trial(dict(params), skip_if_exists=True)
    if config.jobs == 1:
        _optimize(config, 0, console)
    else:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_worker, args=(config, k, console is not None))
                   for k in range(config.jobs)]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except KeyboardInterrupt:
            for worker in workers:
                worker.join()
            raise
    study = _study(config, direction)
    result = summarize(study, monitor, direction)
    if config.jobs > 1:
        result.failed_workers = sum(1 for worker in workers if worker.exitcode != 0)
    if result.best is not None:
        from spanet_lite.io import atomic_write_text

        best = dict(raw)
        best.update(result.best.params)
        if result.best.planned_epochs is not None:
            best["epochs"] = result.best.planned_epochs
        result.best_options = config.directory / BEST_OPTIONS
        atomic_write_text(result.best_options, json.dumps(best, indent=4) + "\n")
    _write_csv(config.directory / SUMMARY_CSV, result)
    return result


# ----------------------------------------------------------------------------- study


def _storage(config: TuneConfig) -> Any:
    import optuna

    url = config.storage_url
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 120}}
    import warnings

    try:
        # Heartbeats let a worker fail the trials of a worker that died (killed job, lost node),
        # so a resumed study does not wait for them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30,
                                              grace_period=120)
    except Exception as error:  # sqlalchemy raises many types for a bad URL or an unreachable server
        raise InputError(None, "storage", "a database URL Optuna can open (e.g. sqlite:///study.db, "
                         "postgresql://user@host/db)", f"{url} ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:200]})") from None


def _pruner(config: TuneConfig) -> Any:
    import optuna

    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.startup_trials,
                                           n_warmup_steps=config.warmup_epochs)
    if config.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, config.warmup_epochs))
    return optuna.pruners.NopPruner()


def _study(config: TuneConfig, direction: str, worker: int = 0) -> Any:
    import optuna

    try:
        study = optuna.create_study(storage=_storage(config), study_name=config.name, direction=direction,
                                    pruner=_pruner(config), load_if_exists=True)
    except ValueError as error:  # an existing study with the other direction
        raise InputError(None, "study_name", f"a study that {direction}s", str(error)) from None
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed(config.seed, worker, len(study.trials)))
    return study


def _distribution(parameter: Parameter) -> Any:
    """The Optuna distribution ``parameter.suggest`` records for its value."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if parameter.choices is not None:
        return CategoricalDistribution(list(parameter.choices))
    if parameter.integer:
        return IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log,  # type: ignore[arg-type]
                               step=int(parameter.step or 1))
    return FloatDistribution(float(parameter.low), float(parameter.high), log=parameter.log,  # type: ignore[arg-type]
                             step=parameter.step)


def check_space_fits_study(study: Any, config: TuneConfig) -> None:
    """A continued study must draw every parameter as its earlier trials did: Optuna refuses other
    choices, another kind (integers for floats) or another scale (log) for a name it has
    recorded, and raised it from inside the next trial (a traceback, and a failed trial left in
    the study at every try). Ranges may change. Refused before any trial, naming the space's key."""
    from optuna.distributions import check_distribution_compatibility

    recorded: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            recorded.setdefault(name, distribution)
    for parameter in config.space:
        if parameter.name not in recorded:
            continue
        try:
            check_distribution_compatibility(recorded[parameter.name], _distribution(parameter))
        except ValueError:
            raise InputError(config.space_source, parameter.name,
                             f"{_described(recorded[parameter.name])}, as the study {config.name!r} drew "
                             "it so far (another study name or folder starts a new study)",
                             parameter.describe()) from None


def _described(distribution: Any) -> str:
    """An Optuna distribution as :meth:`Parameter.describe` writes a parameter."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return "{" + ", ".join(str(c) for c in distribution.choices) + "}"
    kind = "integers" if type(distribution).__name__ == "IntDistribution" else "floats"
    scale = ", log" if distribution.log else ""
    return f"{kind} [{distribution.low:g}, {distribution.high:g}{scale}]"


def sampler_seed(seed: int | None, worker: int, trials: int) -> int | None:
    """The sampler's seed for worker ``worker`` of a study that already holds ``trials`` trials:
    the same command continued (a resubmitted batch job) draws new parameters, not the first
    run's again, and is still reproducible from ``--seed``."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, worker, trials]).generate_state(1)[0])


class _WorkerLines:
    """A worker process's stand-in for the parent's console (which cannot cross processes): its
    trial lines on its own standard output, marked with the worker's number."""

    def __init__(self, worker: int) -> None:
        self.worker = worker

    def print(self, text: str, **_: Any) -> None:
        print(f"[worker {self.worker}] {text}", flush=True)  # noqa: T201 - the worker's output is its console


def _worker(config: TuneConfig, worker: int, announce: bool) -> None:
    """One of ``--jobs`` processes: its share of the CPU, then the same loop as a lone worker;
    ``announce``: the parent has a console, so the worker's trial lines are printed too."""
    threads = max(1, (os.cpu_count() or 1) // config.jobs)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    with contextlib.suppress(KeyboardInterrupt, StudyStopped), _quiet_optuna():
        _optimize(config, worker, _WorkerLines(worker) if announce else None)


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _optimize(config: TuneConfig, worker: int, console: Any) -> None:
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    options, _, monitor, direction = base_options(config)
    study = _study(config, direction, worker)
    remaining = config.trials - _finished(study)
    if remaining <= 0:
        return
    done = MaxTrialsCallback(config.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))

    def objective(trial: optuna.Trial) -> float:
        return _run_trial(trial, config, options, monitor, direction == "maximize", console)

    study.optimize(objective, n_trials=remaining, callbacks=[done], catch=(_TrialFailed,))


class _TrialFailed(Exception):
    """A trial whose options or data were refused (recorded as failed; the study goes on)."""


class StudyStopped(Exception):
    """A signal stopped a trial's training (its run saved a checkpoint): the study stops too,
    and the command exits with 128 + the signal's number, as spanet-train does. The same
    command continues the study."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by signal {signal_number}")
        self.signal_number = signal_number


def _run_trial(trial: Any, config: TuneConfig, options: Options, monitor: str, maximize: bool,
               console: Any) -> float:
    import optuna
    from lightning.pytorch.callbacks import Callback

    from spanet_lite.training.run import train

    params = {p.name: p.suggest(trial) for p in config.space}
    trial.set_user_attr("planned_epochs", options.replace(**params).epochs)

    class Report(Callback):
        """Report the monitored metric after every epoch; stop the run when the pruner says so."""

        pruned_at: int | None = None

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            value = trainer.callback_metrics.get(monitor)
            if value is None or trainer.sanity_checking:
                return
            number = float(value)
            trial.report(number if math.isfinite(number) else (-math.inf if maximize else math.inf),
                         trainer.current_epoch)
            if trial.should_prune():
                self.pruned_at = trainer.current_epoch
                trainer.should_stop = True

    report = Report()
    try:
        result = train(options.replace(**params), log_dir=config.directory, name=f"trial_{trial.number:04d}",
                       quiet=True, callbacks=[report])
    except InputError as error:
        trial.set_user_attr("error", str(error))
        _say(console, f"trial {trial.number}: failed: {error}")
        raise _TrialFailed(str(error)) from None
    if result.signal_number is not None:  # Ctrl-C, SIGTERM (a batch system's stop), SIGUSR1
        trial.set_user_attr("error", f"stopped by signal {result.signal_number}")
        raise StudyStopped(result.signal_number)
    trial.set_user_attr("run_dir", str(result.run_dir))
    trial.set_user_attr("epochs", result.epochs_completed)
    trial.set_user_attr("best_value", result.best_value)
    value = result.best_value if result.best_value is not None else math.nan
    shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
    if report.pruned_at is not None:
        _say(console, f"trial {trial.number}: pruned after epoch {report.pruned_at + 1} "
             f"({monitor} {value:.4f}; {shown})")
        raise optuna.TrialPruned()
    epochs = f"{result.epochs_completed} epoch{'' if result.epochs_completed == 1 else 's'}"
    _say(console, f"trial {trial.number}: {monitor} {value:.4f} in {epochs} ({shown})")
    return value


def _say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text, highlight=False, markup=False)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- summary


def summarize(study: Any, monitor: str, direction: str) -> TuneResult:
    """Every trial of ``study``, best first (finished trials by their best value, then the rest)."""
    from optuna.trial import TrialState

    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.user_attrs.get("best_value")
        attrs = trial.user_attrs
        rows.append(TrialRow(trial.number, trial.state.name.lower(), value, attrs.get("epochs"),
                             dict(trial.params), attrs.get("run_dir"), attrs.get("error"),
                             attrs.get("planned_epochs")))
    sign = -1.0 if direction == "maximize" else 1.0

    def order(row: TrialRow) -> tuple[int, float, int]:
        finished = row.state in ("complete", "pruned") and row.value is not None and math.isfinite(row.value)
        return (0 if finished else 1, sign * row.value if finished else 0.0, row.number)  # type: ignore[operator]

    rows.sort(key=order)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = None
    if complete:
        number = study.best_trial.number
        best = next(row for row in rows if row.number == number)
    return TuneResult(monitor, direction, rows, best)


def summary_table(result: TuneResult, limit: int = 20) -> Any:
    """The trials as a rich table (best first, at most ``limit`` rows)."""
    from rich.markup import escape
    from rich.table import Table

    names = sorted({k for row in result.rows for k in row.params})
    table = Table(title=f"Trials by best {result.monitor}", title_justify="left")
    for column in ("trial", "state", result.monitor, "epochs", *names, "run directory"):
        table.add_column(column, overflow="fold")
    for row in result.rows[:limit]:
        value = "-" if row.value is None else f"{row.value:.4f}"
        state = row.state if row.error is None else f"failed: {row.error}"
        table.add_row(str(row.number), escape(state), value, "-" if row.epochs is None else str(row.epochs),
                      *(_short(row.params[n]) if n in row.params else "-" for n in names),
                      escape(row.run_dir or "-"))
    return table


def _write_csv(path: Path, result: TuneResult) -> None:
    import csv
    import io

    from spanet_lite.io import atomic_write_text

    names = sorted({k for row in result.rows for k in row.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", result.monitor, "epochs", *names, "run_dir", "error"])
    for row in result.rows:
        writer.writerow([row.number, row.state, "" if row.value is None else row.value,
                         "" if row.epochs is None else row.epochs, *(row.params.get(n, "") for n in names),
                         row.run_dir or "", row.error or ""])
    atomic_write_text(path, buffer.getvalue())
