"""`spanet-tune OPTIONS.json --trials N`: hyperparameter search with Optuna.

    spanet-tune options_files/full_hadronic_ttbar/example.json --trials 20 --space space.yaml

Each trial is a normal run directory under ``--dir``; the study is a SQLite file there unless
``--storage`` names another database, and re-running the same command continues it. See
:mod:`spanet_lite.tuning.search` and docs/tools.md (several machines, SLURM arrays).
Exit codes: 0 done; 1 a ``--jobs`` worker failed; 2 bad input (one line) or Optuna missing;
128 + N when signal N stopped a trial (130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1); the same command
continues the study.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from spanet_lite.cli.common import (
    EXIT_INPUT_ERROR,
    EXIT_OK,
    EXIT_PROBLEMS,
    error_line,
    flags_for,
    new_parser,
    run_cli,
)
from spanet_lite.errors import InputError
from spanet_lite.outputs import output

PROGRAM = "spanet-tune"
FLAGS = {
    "trials": "--trials", "jobs": "--jobs", "pruner": "--pruner", "epochs": "--epochs", "directory": "--dir",
    "warmup_epochs": "--warmup-epochs", "startup_trials": "--startup-trials", "seed": "--seed",
}
"""The flag of each value ``tuning.search.check_config`` checks (its ``names``)."""


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Search training options with Optuna. Every trial is an ordinary run directory, "
        "pruned by validation event purity per epoch; the best options are written to "
        "DIR/best_options.json.",
    )
    parser.add_argument("options_file", type=Path, metavar="OPTIONS.json",
                        help="the options every trial starts from")
    parser.add_argument("--trials", type=int, required=True, metavar="N",
                        help="size of the study: every worker stops once N trials have finished "
                        "(completed or pruned), counting those of earlier runs")
    parser.add_argument("--space", type=Path, metavar="YAML",
                        help="search space: option -> [choices] or {low, high[, log, step]} (default: "
                        "hidden_dim, num_encoder_layers, learning_rate, batch_size, dropout)")
    parser.add_argument("--dir", metavar="DIR",
                        help="where the trials' run directories, the SQLite study, best_options.json and "
                        "trials.csv go (default: runs/tune_<study name>)")
    parser.add_argument("--study-name", metavar="NAME", help="default: the options file's name")
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL shared by all workers, e.g. postgresql://user@host/db "
                        "(default: sqlite:///DIR/study.db)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="worker processes on this machine (default: %(default)s)")
    parser.add_argument("--pruner", choices=("median", "halving", "none"), default="median",
                        help="median: stop a trial below the median of earlier trials at the same epoch; "
                        "halving: successive halving (default: %(default)s)")
    parser.add_argument("--startup-trials", type=int, default=3, metavar="N",
                        help="trials that run to the end before the median pruner compares (default: "
                        "%(default)s)")
    parser.add_argument("--warmup-epochs", type=int, default=1, metavar="N",
                        help="epochs every trial runs before it can be pruned (default: %(default)s)")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="epochs per trial (default: the options file's)")
    parser.add_argument("--seed", type=int, help="seed of the sampler (reproducible; each worker and "
                                                 "each continuation of a study draws anew)")
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise InputError(None, "", "cannot run without Optuna: pip install 'spanet-lite[tune]'") from None
    from rich.console import Console

    from spanet_lite.tuning.search import StudyStopped, TuneConfig, check_config, summary_table, tune
    from spanet_lite.tuning.space import DEFAULT_SPACE, load_space

    space = load_space(args.space) if args.space is not None else DEFAULT_SPACE
    name = args.study_name or args.options_file.stem
    directory = output(args.dir, "--dir", directory=True)  # "" (an unset $DIR) is no '.'
    config = TuneConfig(
        options_file=args.options_file, trials=args.trials,
        directory=directory.path if directory is not None else Path("runs") / f"tune_{name}",
        space=space, study_name=name, storage=args.storage, pruner=args.pruner,
        startup_trials=args.startup_trials, warmup_epochs=args.warmup_epochs, jobs=args.jobs,
        epochs=args.epochs, seed=args.seed,
        space_source=str(args.space) if args.space is not None else "the default search space",
    )
    check_config(config, FLAGS)  # tune() checks again, naming the fields
    console = Console()
    try:
        with flags_for({"storage": "--storage", "study_name": "--study-name"}):  # refused as the study opens
            result = tune(config, console=console)  # says what it searches once the inputs are checked
    except StudyStopped as stop:  # 130 Ctrl-C, 143 SIGTERM: never a success, as in spanet-train
        console.print(f"study stopped by signal {stop.signal_number}; the same command continues it",
                      highlight=False, markup=False)
        return 128 + stop.signal_number
    console.print(summary_table(result))
    if result.best is not None:
        console.print(f"best: trial {result.best.number}, {result.monitor} {result.best.value:.4f} "
                      f"({result.best.run_dir}); options: {result.best_options}",
                      highlight=False, markup=False)
    else:
        console.print("no trial completed yet", highlight=False)
    if result.failed_workers:
        error_line(PROGRAM, f"{result.failed_workers} of {config.jobs} worker processes failed (see above)")
        return EXIT_PROBLEMS
    failures = [row for row in result.rows if row.error is not None]
    if result.rows and len(failures) == len(result.rows):  # the base options or data, not the search
        error_line(PROGRAM, f"every trial was refused; the first: {failures[0].error}")
        return EXIT_INPUT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
