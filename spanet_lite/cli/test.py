"""`spanet-test RUN_DIR -tf FILE.h5 [--plots DIR] [--json FILE]`: evaluate a trained run.

Accepts ``python -m spanet.test``'s command line unchanged (``-tf/--test_file``, ``-ef``,
``-bs/--batch_size``, ``-l/--lines``, ``-g/--gpu``, ``-fp16``, ``-tex/--latex``).

Needs only the run directory and the test file (never the training file). Prints SPANet's
tables first (per event type ``*t``, ``0t``, ``1t``... by jet multiplicity, SPANet's columns
and definitions: :func:`~spanet_lite.evaluation.metrics.spanet_tables`), then rich tables:
event purity and the purity tables by number of jets and of reconstructable particles,
per-particle efficiency/purity and detection quality, regressions (with the analytic
neutrino baseline where it applies) and classifications. Where the event file's
``SPANET_LITE`` section or ``--masses FILE`` gives particle masses, the chi-square
assignment baseline is shown next to the network in the purity tables. ``--json`` writes
every number,
with the headline ``event_purity`` at the top level; ``--plots`` writes PNG figures.

Exit codes: 0 done, 2 bad input (one line on stderr), 74 an OS failure such as a full disk (one
line naming the file), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, add_network_arguments, autocast, load_network, new_parser, run_cli
from spanet_lite.config.options import DECODINGS
from spanet_lite.outputs import add_overwrite_argument

PROGRAM = "spanet-test"


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Evaluate a trained run on a labelled HDF5 file.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="run directory written by spanet-train (version_N)")
    parser.add_argument("-tf", "--testing-file", "--test_file", dest="testing_file", metavar="FILE.h5",
                        help="labelled HDF5 file (default: the run's testing_file option)")
    parser.add_argument("--plots", metavar="DIR", help="write PNG plots into this directory")
    parser.add_argument("--json", metavar="FILE", help="write all numbers as JSON to this file")
    parser.add_argument("-b", "-bs", "--batch-size", "--batch_size", dest="batch_size", type=int,
                        default=1024, metavar="N", help="events per forward pass (default: %(default)s)")
    parser.add_argument("-l", "--lines", type=int, default=2, metavar="N",
                        help="rows '== m' ... '== m+N-1' of SPANet's tables before '>= m+N' "
                        "(default: %(default)s)")
    parser.add_argument("-tex", "--latex", action="store_true", help="print SPANet's tables as LaTeX")
    parser.add_argument("--decoding", choices=DECODINGS, help="decoding mode (default: the run's)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="detection threshold for the 'with detection' numbers (default: the run's)")
    parser.add_argument("--masses", metavar="FILE.yaml",
                        help="particle masses for the chi-square baseline, e.g. 't1: {all: 172.5 +- 20, "
                             "q1 q2: 80.4 +- 10}' (default: the SPANET_LITE section of -ef's event file, "
                             "else of the run's)")
    add_network_arguments(parser)
    add_overwrite_argument(parser)
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from spanet_lite.config.options_validation import check_batch_size, check_threshold
    from spanet_lite.errors import InputError
    from spanet_lite.evaluation.evaluate import check_evaluation_outputs, check_lines, evaluate_file
    from spanet_lite.evaluation.report import render

    # The API checks these too; here first, so a bad flag is named as typed, before any loading.
    check_batch_size(args.batch_size, "-bs/--batch_size")  # as SPANet spells it
    check_lines(args.lines, "-l/--lines")
    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    run = load_network(args)
    test_file = args.testing_file or run.options.testing_file
    if not test_file:
        raise InputError(None, "-tf/--test_file", "a labelled HDF5 file to test on", "none given")
    masses = None
    if args.masses:
        from spanet_lite.config.masses import load_masses_file

        masses = load_masses_file(args.masses, {p.name: p.product_names for p in run.spec.particles})
    elif args.event_file:  # load_network accepted it: the run's topology, perhaps other masses
        from spanet_lite.config import load_event_spec

        # SPANet's -ef replaces the event file; its SPANET_LITE masses were silently ignored for
        # the run's copy's. One without them (SPANet's own) leaves the run's copy's in place.
        masses = list(load_event_spec(args.event_file).masses) or None
    read = [args.event_file, args.masses]
    check_evaluation_outputs(run, test_file, args.json, args.plots, overwrite=args.overwrite, inputs=read,
                             names=("--json", "--plots"))
    with autocast(args, run):
        evaluation = evaluate_file(
            run, test_file, batch_size=args.batch_size, threshold=args.threshold, mode=args.decoding,
            progress=sys.stderr.isatty(), lines=args.lines, masses=masses, json_file=args.json,
            plots=args.plots, overwrite=args.overwrite, inputs=read,
        )
    console = Console()
    render(evaluation.metrics, console, latex=args.latex)
    if args.json:
        console.print(f"numbers written to {args.json}", markup=False)
    if args.plots:
        names = ", ".join(p.name for p in evaluation.plots)
        console.print(f"{len(evaluation.plots)} plots written to {args.plots}: {names}", markup=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
