"""`spanet-train`: train a network from a SPANet options file.

    spanet-train OPTIONS.json [overrides]       (or SPANet's spelling: -of OPTIONS.json)
    spanet-train --resume RUN_DIR [overrides]

Exit codes: 0 finished (or stopped by --time-limit, resumable), 2 bad input (one line, before
anything is written), 74 an OS failure such as a full disk (one line; the run directory is marked
INCOMPLETE), 128 + N stopped by signal N with a resumable checkpoint saved: 130 Ctrl-C, 143
SIGTERM, 138 SIGUSR1 (see docs/training.md for batch systems).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_INPUT_ERROR, EXIT_OK, run_cli

PROGRAM = "spanet-train"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line and exit 2 (its own convention too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROGRAM}: error: {message}\n")
        raise SystemExit(EXIT_INPUT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description="Train a symmetry-preserving attention network. Command-line values override the "
        "options file and are marked 'command line' in the options table.",
    )
    parser.add_argument("options_file", nargs="?", metavar="OPTIONS.json", help="SPANet options file")
    parser.add_argument(
        "-of",
        "--options-file",
        dest="options_flag",
        metavar="OPTIONS.json",
        help="the options file, SPANet's spelling",
    )
    files = parser.add_argument_group("files")
    files.add_argument("-ef", "--event-file", help="event file (YAML); overrides event_info_file")
    files.add_argument("-tf", "--training-file", help="training HDF5 file; overrides training_file")
    files.add_argument(
        "-vf",
        "--validation-file",
        help="validation HDF5 file; overrides validation_file (default: split off training)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--epochs", type=int, help="number of epochs")
    run.add_argument("--batch-size", "-b", type=int, help="events per batch (per process)")
    run.add_argument("--learning-rate", "--lr", type=float, help="peak learning rate")
    run.add_argument("--seed", type=int, help="random seed (weights, data order, dropout)")
    run.add_argument("--precision", help="32-true (default on CPU), bf16-mixed, 16-mixed, 64-true, ...")
    run.add_argument(
        "--time-limit", metavar="DURATION", help="stop cleanly (resumable) after e.g. 3600, 45m, 2h, 01:30:00"
    )
    run.add_argument(
        "--fast-dev-run", action="store_true", help="one training and one validation batch; writes nothing"
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR_or_CKPT",
        help="continue a run (its last.ckpt or interrupted.ckpt, or the given checkpoint)",
    )
    devices = parser.add_argument_group("devices")
    devices.add_argument("--gpus", type=int, help="CUDA devices per node (default: CPU); > 1 uses DDP")
    devices.add_argument("--nodes", type=int, default=1, help="number of nodes (SLURM / torchrun), default 1")
    devices.add_argument(
        "--processes", type=int, help="CPU processes per node for data-parallel training without GPUs (gloo)"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "-l", "--log-dir", "--log_dir", default="runs", help="parent of run directories (default: ./runs)"
    )
    output.add_argument(
        "-n", "--name", help="run name: <log-dir>/<name>/version_N (default: event file name)"
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no options table or progress bars; one line per epoch"
    )
    return parser


def _body(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad command line already reported as one line
        return int(done.code or 0)
    if args.options_file and args.options_flag and args.options_file != args.options_flag:
        from spanet_lite.errors import InputError

        raise InputError(
            None,
            "OPTIONS",
            "one options file (positional or -of)",
            f"{args.options_file} and {args.options_flag}",
        )
    options = args.options_file or args.options_flag

    from rich.console import Console

    from spanet_lite.training.run import train

    console = Console()
    result = train(
        options,
        event_file=args.event_file,
        training_file=args.training_file,
        validation_file=args.validation_file,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        gpus=args.gpus,
        nodes=args.nodes,
        processes=args.processes,
        log_dir=args.log_dir,
        name=args.name,
        resume=args.resume,
        fast_dev_run=args.fast_dev_run,
        precision=args.precision,
        seed=args.seed,
        time_limit=args.time_limit,
        quiet=args.quiet,
        console=console,
    )
    if result.signal_number is not None:  # 130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1: never a success
        return 128 + int(result.signal_number)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
