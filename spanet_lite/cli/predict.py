"""`spanet-predict RUN_DIR IN.h5 OUT.h5 [--batch-size N]`: write a trained run's predictions.

OUT.h5 has the layout of a labelled SPANet file (TARGETS in per-input indices, REGRESSIONS,
CLASSIFICATIONS, INPUTS copied), plus a PREDICTIONS group with assignment and detection
probabilities, class probabilities and, with ``--embeddings``, the event embedding; see
:mod:`spanet_lite.evaluation.predict`. It streams through the file, writes atomically and
refuses to overwrite IN.h5.

Exit codes: 0 done, 2 bad input (one line on stderr), 130 interrupted (OUT.h5 untouched).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, add_network_arguments, load_network, run_cli
from spanet_lite.outputs import add_overwrite_argument, check_outputs, output

PROGRAM = "spanet-predict"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Run a trained network over an HDF5 file.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by spanet-train")
    parser.add_argument("input_file", metavar="IN.h5", help="HDF5 file with the INPUTS of the event file")
    parser.add_argument("output_file", metavar="OUT.h5", help="where to write the predictions")
    parser.add_argument("--batch-size", "-b", type=int, default=1024, metavar="N",
                        help="events per forward pass and per write (default: %(default)s)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="report a particle only if its detection probability is at least P "
                        "(default: the run's detection_threshold; 0 reports every particle)")
    parser.add_argument("--decoding", choices=("greedy", "exact"), help="decoding mode (default: the run's)")
    parser.add_argument("--embeddings", action="store_true", help="also write the event embedding")
    add_network_arguments(parser)
    add_overwrite_argument(parser)
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from rich.console import Console

    from spanet_lite.errors import InputError
    from spanet_lite.evaluation.predict import write_predictions

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise InputError(None, "--threshold", "a probability between 0 and 1", str(args.threshold))
    if args.batch_size < 1:
        raise InputError(None, "--batch-size", "a positive number of events", str(args.batch_size))
    input_file, output_file = Path(args.input_file), Path(args.output_file)
    check_outputs([output(output_file, "OUT.h5")], inputs=[input_file, args.checkpoint],
                  overwrite=args.overwrite)
    run = load_network(args)
    count = write_predictions(
        run, input_file, output_file, batch_size=args.batch_size, threshold=args.threshold,
        mode=args.decoding, embeddings=args.embeddings, progress=sys.stderr.isatty(),
    )
    Console(stderr=True).print(f"{count:,} events predicted into {output_file}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)
