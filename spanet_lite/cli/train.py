"""`spanet-train`: train a network from a SPANet options file.

    spanet-train OPTIONS.json [overrides]       (or SPANet's spelling: -of OPTIONS.json)
    spanet-train --resume RUN_DIR [overrides]
    spanet-train -of OPTIONS.json -e 1 -g 0 -t 00:01:00:00 ...   (SPANet's flags, SPANet's meaning)

Every flag of ``python -m spanet.train`` is accepted; docs/migrating_from_spanet.md
says, flag by flag, which keep SPANet's meaning, which are mapped and the two that have no
equivalent (``-ts`` is ignored with a warning, ``--profile`` is refused). Prefixes of long
flags are not accepted (``-e`` is ``--epochs``, never an abbreviation of ``-ef``).

Exit codes: 0 finished (or stopped by --time-limit, resumable), 2 bad input (one line, before
anything is written), 74 an OS failure such as a full disk (one line; the run directory is marked
INCOMPLETE), 128 + N stopped by signal N with a resumable checkpoint saved: 130 Ctrl-C, 143
SIGTERM, 138 SIGUSR1 (see docs/training.md for batch systems).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_INPUT_ERROR, EXIT_OK, new_parser, run_cli

PROGRAM = "spanet-train"
FLAGS = {
    "options": "OPTIONS", "event_file": "-ef/--event_file", "gpus": "-g/--gpus", "nodes": "--nodes",
    "processes": "--processes", "log_dir": "-l/--log_dir", "name": "-n/--name", "resume": "--resume",
    "fast_dev_run": "--fast-dev-run", "time_limit": "-t/--time_limit", "checkpoint": "-cf/--checkpoint",
    "state_dict": "-sf/--state_dict", "freeze_state_dict": "-fsf/--freeze_state_dict",
}
"""The flag of each ``train()`` argument ``training.plan.check_arguments`` checks (its ``names``):
both spellings of a SPANet flag as SPANet writes them (``-l/--log_dir``), so that a user of
either finds what they typed."""

OPTION_FLAGS = {
    "training_file": "-tf/--training_file", "validation_file": "-vf/--validation_file",
    "epochs": "-e/--epochs", "batch_size": "-b/--batch_size", "learning_rate": "--learning-rate/--lr",
    "seed": "--seed", "dataset_limit": "-p/--limit_dataset", "dataset_randomization": "-r/--random_seed",
    "num_gpu": "-g/--gpus",
}
"""The flag that sets each option key (or ``train()`` keyword of the same name), for a value
refused only once the options are merged (``-b 0``, a ``-tf`` file not found)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line and exit 2 (its own convention too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROGRAM}: error: {message}\n")
        raise SystemExit(EXIT_INPUT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Train a symmetry-preserving attention network. Command-line values override the "
        "options file and are marked 'command line' in the options table. SPANet's spellings "
        "(python -m spanet.train ...) are accepted with SPANet's meaning.",
        kind=_Parser,
    )
    parser.add_argument("options_file", nargs="?", metavar="OPTIONS.json", help="SPANet options file")
    parser.add_argument(
        "-of",
        "--options-file",
        "--options_file",
        dest="options_flag",
        metavar="OPTIONS.json",
        help="the options file, SPANet's spelling",
    )
    parser.add_argument(
        "--allow-unknown-keys",
        action="store_true",
        help="ignore unknown keys in the options file (with a warning) instead of refusing it",
    )
    files = parser.add_argument_group("files")
    files.add_argument("-ef", "--event-file", "--event_file", dest="event_file",
                       help="event file (YAML); overrides event_info_file")
    files.add_argument("-tf", "--training-file", "--training_file", dest="training_file",
                       help="training HDF5 file; overrides training_file")
    files.add_argument(
        "-vf",
        "--validation-file",
        "--validation_file",
        dest="validation_file",
        help="validation HDF5 file; overrides validation_file (default: split off training)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("-e", "--epochs", type=int, help="number of epochs")
    run.add_argument("-b", "--batch-size", "--batch_size", dest="batch_size", type=int,
                     help="events per batch and per process, as in SPANet (DDP: processes x this per step)")
    run.add_argument("--learning-rate", "--lr", type=float, help="peak learning rate")
    run.add_argument("--seed", type=int, help="random seed (weights, data order, dropout)")
    run.add_argument("-r", "--random_seed", "--random-seed", dest="random_seed", type=int, metavar="SEED",
                     help="SPANet's -r: sets dataset_randomization (shuffle the file with this seed before "
                     "the training/validation split); 0 or below leaves the options' value, as in SPANet")
    run.add_argument("-p", "--limit_dataset", "--limit-dataset", dest="limit_dataset", type=float,
                     metavar="PERCENT", help="use only the first PERCENT %% of the training file (0-100], "
                     "SPANet's -p; sets dataset_limit = PERCENT / 100")
    run.add_argument("-f", "--full_events", "--full-events", dest="full_events", action="store_true",
                     help="SPANet's -f: partial_events = false and balance_particles = false")
    run.add_argument("--precision",
                     help="auto (default: 32-true on CPU, mixed on GPU), 32-true, bf16-mixed, ...")
    run.add_argument("-fp16", "--fp16", action="store_true",
                     help="16-bit mixed precision (same as --precision 16-mixed; needs a GPU)")
    run.add_argument(
        "-t", "--time-limit", "--time_limit", dest="time_limit", metavar="DURATION",
        help="stop cleanly (resumable) after DD:HH:MM:SS (SPANet's format), HH:MM:SS, MM:SS (as SLURM: "
        "10:00 is ten minutes), 3600 (seconds), 45m, 2h",
    )
    run.add_argument(
        "--fast-dev-run", action="store_true", help="one training and one validation batch; writes nothing"
    )
    start = parser.add_argument_group("starting point")
    start.add_argument(
        "--resume",
        metavar="RUN_DIR_or_CKPT",
        help="continue a run in its own directory, with its own options "
        "(its last.ckpt or interrupted.ckpt, or the given checkpoint)",
    )
    start.add_argument(
        "-cf", "--checkpoint", metavar="CKPT",
        help="SPANet's -cf: restore the full training state (weights, optimiser, epoch) from CKPT into a "
        "new run (-l/-n) with the options given; without options, with the checkpoint's own",
    )
    start.add_argument(
        "-sf", "--state_dict", "--state-dict", dest="state_dict", metavar="CKPT",
        help="start from the weights of CKPT (every tensor whose name and shape match; fresh optimiser; "
        "normalisation from this run's training data, where SPANet's -sf copies the checkpoint's)",
    )
    start.add_argument(
        "-fsf", "--freeze_state_dict", "--freeze-state-dict", dest="freeze_state_dict", action="store_true",
        help="keep the weights loaded with -sf fixed (fine-tuning the rest)",
    )
    devices = parser.add_argument_group("devices")
    devices.add_argument("-g", "--gpus", type=int,
                         help="CUDA devices per node, recorded as num_gpu as in SPANet (default: the options'"
                         " num_gpu; 0: CPU); > 1 uses DDP")
    devices.add_argument("--nodes", type=int, default=1, help="number of nodes (SLURM / torchrun), default 1")
    devices.add_argument(
        "--processes", type=int, help="CPU processes per node for data-parallel training without GPUs (gloo)"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "-l", "--log-dir", "--log_dir", dest="log_dir", default="runs",
        help="parent of run directories (default: ./runs)",
    )
    output.add_argument(
        "-n", "--name", help="run name: <log-dir>/<name>/version_N (default: event file name)"
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no options table or progress bars; one line per epoch"
    )
    output.add_argument("-v", "--verbose", action="store_true",
                        help="SPANet's -v: verbose_output = true, without it false as in SPANet (recorded; "
                        "no extra output here)")
    spanet = parser.add_argument_group("SPANet flags without an equivalent")
    spanet.add_argument("-ts", "--torch_script", "--torch-script", dest="torch_script", action="store_true",
                        help="accepted and ignored (no TorchScript compilation here), with a warning")
    spanet.add_argument("--profile", action="store_true", help="not supported: refused with an error")
    return parser


def _option_values(args: argparse.Namespace) -> dict[str, object]:
    """Option keys that SPANet's flags set (their SPANet meaning), besides train()'s own arguments."""
    from spanet_lite.config.options_validation import SEED_EXPECTED, is_seed
    from spanet_lite.errors import InputError

    values: dict[str, object] = {}
    if args.limit_dataset is not None:
        if not 0 < args.limit_dataset <= 100:
            raise InputError(None, "-p/--limit_dataset", "a percentage in (0, 100]", str(args.limit_dataset))
        values["dataset_limit"] = args.limit_dataset / 100.0
    if args.random_seed is not None and args.random_seed > 0:
        # SPANet: 0 or below leaves dataset_randomization as the options file says.
        if not is_seed(args.random_seed):
            raise InputError(None, "-r/--random_seed", SEED_EXPECTED, str(args.random_seed))
        values["dataset_randomization"] = args.random_seed
    if args.full_events:
        values["partial_events"] = False
        values["balance_particles"] = False
    # SPANet's train.py sets both from its flags whatever the options file says.
    values["verbose_output"] = bool(args.verbose)
    if args.gpus is not None:
        values["num_gpu"] = args.gpus
    return values


def _body(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad command line already reported as one line
        return int(done.code or 0)
    from spanet_lite.errors import InputError

    if args.options_file and args.options_flag and args.options_file != args.options_flag:
        raise InputError(
            None,
            "OPTIONS",
            "one options file (positional or -of)",
            f"{args.options_file} and {args.options_flag}",
        )
    if args.profile:
        raise InputError(None, "--profile", "a flag spanet_lite supports (it has no profiler run; "
                         "--fast-dev-run trains one batch as a quick check)", "--profile")
    from spanet_lite.config.options import full_precision

    if args.fp16 and args.precision and full_precision(args.precision) != "16-mixed":  # "16" is -fp16 too
        raise InputError(None, "-fp16", "either -fp16 or --precision", f"both ({args.precision})")
    options = args.options_file or args.options_flag
    option_values = _option_values(args)

    from rich.console import Console

    from spanet_lite.cli.common import flags_for
    from spanet_lite.training.plan import check_arguments
    from spanet_lite.training.run import train

    check_arguments(  # train() checks them again, naming its keywords
        options, event_file=args.event_file, gpus=args.gpus, nodes=args.nodes, processes=args.processes,
        log_dir=args.log_dir, name=args.name, resume=args.resume, fast_dev_run=args.fast_dev_run,
        time_limit=args.time_limit, checkpoint=args.checkpoint, state_dict=args.state_dict,
        freeze_state_dict=args.freeze_state_dict, names=FLAGS,
    )
    found_later = {key: FLAGS[key]
                   for key in ("event_file", "freeze_state_dict", "name", "log_dir", "resume")}
    # Only flags typed: else the value is the options file's (num_gpu, epochs), and the line names
    # the file and its key. A typed one is refused under train()'s keyword or the option key it sets.
    typed = {"gpus": args.gpus, "processes": args.processes,
             **{key: getattr(args, key) for key in OPTION_FLAGS if key in vars(args)}}
    found_later |= {key: FLAGS.get(key) or OPTION_FLAGS[key]
                    for key, value in typed.items() if value is not None}
    found_later |= {key: OPTION_FLAGS[key] for key in option_values.keys() & OPTION_FLAGS.keys()}
    if args.fp16 or args.precision is not None:  # e.g. 16-bit precision on a machine without a GPU
        found_later["precision"] = "-fp16" if args.fp16 else "--precision"
    console = Console()
    if args.torch_script:
        console.print(f"{PROGRAM}: warning: -ts/--torch_script has no effect here (no TorchScript "
                      "compilation); training continues", highlight=False)
    with flags_for(found_later):
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
            precision="16-mixed" if args.fp16 else args.precision,
            seed=args.seed,
            time_limit=args.time_limit,
            quiet=args.quiet,
            console=console,
            option_values=option_values,
            checkpoint=args.checkpoint,
            state_dict=args.state_dict,
            freeze_state_dict=args.freeze_state_dict,
            allow_unknown_keys=args.allow_unknown_keys,
        )
    if result.signal_number is not None:  # 130 Ctrl-C, 143 SIGTERM, 138 SIGUSR1: never a success
        return 128 + int(result.signal_number)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
