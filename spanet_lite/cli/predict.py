"""`spanet-predict`: write a trained run's predictions in SPANet's prediction-file layout.

    spanet-predict RUN_DIR IN.h5 OUT.h5 [options]          (spanet_lite's form)
    spanet-predict RUN_DIR OUT.h5 -tf IN.h5 [options]      (SPANet's form, python -m spanet.predict)
    spanet-predict RUN_DIR OUT.h5                          (input: the run's testing_file option)

OUT.h5 holds exactly SPANet's datasets with SPANet's meaning (INPUTS copied; TARGETS with the
best assignment and its assignment, detection and marginal probabilities; REGRESSIONS;
CLASSIFICATIONS as class probabilities; EMBEDDINGS with -v), and spanet_lite's additions
(detection-gated assignments in per-input indices, argmax classes) under SPANET_LITE/; see
:mod:`spanet_lite.evaluation.predict`. It streams through the file, writes atomically and
refuses to overwrite IN.h5.

Exit codes: 0 done, 2 bad input (one line on stderr), 74 an OS failure such as a full disk (one
line naming OUT.h5), 130 interrupted; OUT.h5 is untouched unless the command succeeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite import outputs
from spanet_lite.cli.common import EXIT_OK, add_network_arguments, autocast, load_network, new_parser, run_cli
from spanet_lite.config.options import DECODINGS

PROGRAM = "spanet-predict"


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Run a trained network over an HDF5 file.",
        usage="%(prog)s RUN_DIR IN.h5 OUT.h5 [options]\n       %(prog)s RUN_DIR OUT.h5 [-tf IN.h5] [options]",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by spanet-train")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="input and output file, or only the output file with -tf IN.h5")
    parser.add_argument("-tf", "--test_file", "--testing-file", dest="test_file", metavar="IN.h5",
                        help="the file to predict (SPANet's form; default: the run's testing_file option)")
    parser.add_argument("-b", "-bs", "--batch-size", "--batch_size", dest="batch_size", type=int,
                        default=1024, metavar="N",
                        help="events per forward pass and per write (default: %(default)s)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="SPANET_LITE/TARGETS report a particle only if its detection probability is at "
                        "least P (default: the run's detection_threshold); TARGETS are never gated")
    parser.add_argument("--decoding", choices=DECODINGS, help="decoding mode (default: the run's)")
    parser.add_argument("-v", "--output_vectors", "--embeddings", dest="embeddings", action="store_true",
                        help="also write the EMBEDDINGS group (event, particle and product vectors)")
    add_network_arguments(parser)
    outputs.add_overwrite_argument(parser)
    return parser


def _files(args: argparse.Namespace) -> tuple[str | None, str]:
    """(input or None for the run's testing_file, output) from the positional files and -tf."""
    from spanet_lite.errors import InputError

    if len(args.files) > 2:
        raise InputError(None, "files", "[IN.h5] OUT.h5", " ".join(args.files))
    if len(args.files) == 2:
        if args.test_file:
            raise InputError(None, "-tf", "the input file either as -tf or as a positional, not both",
                             f"{args.test_file} and {args.files[0]}")
        return args.files[0], args.files[1]
    return args.test_file, args.files[0]


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from rich.console import Console

    from spanet_lite.config.options_validation import check_batch_size, check_threshold
    from spanet_lite.errors import InputError
    from spanet_lite.evaluation.predict import check_prediction_output, write_predictions

    # The API checks these too; here first, so a bad flag is named as typed, before any loading.
    if args.threshold is not None:
        check_threshold(args.threshold, "--threshold")
    check_batch_size(args.batch_size, "-bs/--batch_size")  # as SPANet spells it
    given_input, output = _files(args)
    run = load_network(args)
    given_input = given_input or run.options.testing_file
    if not given_input:
        raise InputError(None, "-tf", "a file to predict (the run has no testing_file)", "none given")
    input_file, output_file = Path(given_input), Path(output)
    check_prediction_output(run, input_file, output_file, overwrite=args.overwrite, inputs=[args.event_file],
                            name="output")
    with autocast(args, run):
        count = write_predictions(
            run, input_file, output_file, batch_size=args.batch_size, threshold=args.threshold,
            mode=args.decoding, embeddings=args.embeddings, progress=sys.stderr.isatty(),
            overwrite=args.overwrite, inputs=[args.event_file], output_name="output",
        )
    Console(stderr=True).print(f"{count:,} events predicted into {output_file}", markup=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
