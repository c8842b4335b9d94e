"""`spanet-inspect FILE.h5 [--event-file YAML] [--json]`: show an HDF5 file, and check it.

Exit codes: 0 the file is readable (and, with ``--event-file``, valid); 1 validation found errors;
2 the HDF5 file or the event file cannot be read (one line on stderr, no traceback).
Start-up stays fast: nothing here imports torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, EXIT_PROBLEMS, new_parser, run_cli

PROGRAM = "spanet-inspect"


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Print the structure of a SPANet HDF5 dataset; with --event-file, check it against "
        "the event file and summarise its contents.",
    )
    parser.add_argument("file", help="HDF5 dataset (.h5)")
    parser.add_argument("-e", "-ef", "--event-file", "--event_file", dest="event_file", metavar="YAML",
                        help="event file to validate the dataset against (SPANet spells it -ef/--event_file)")
    parser.add_argument("--json", action="store_true", help="print everything as one JSON object on stdout")
    parser.add_argument("--chunk-size", type=int, default=65536, metavar="N",
                        help="events read at a time while validating (default: %(default)s)")
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from spanet_lite.config.options_validation import check_chunk_size
    from spanet_lite.dataset.inspect import render_report, report_to_dict, structure_entries, structure_lines
    from spanet_lite.dataset.schema import open_h5, validate_h5

    chunk_size = check_chunk_size(args.chunk_size, "--chunk-size")
    spec = None
    if args.event_file is not None:
        from spanet_lite.config import load_event_spec

        spec = load_event_spec(args.event_file)

    with open_h5(args.file) as file:
        report = None
        if spec is not None:
            report = validate_h5(file, spec, source=args.file, chunk_size=chunk_size,
                                 progress=not args.json and sys.stderr.isatty())
        if args.json:
            document: dict = {"file": args.file, "structure": structure_entries(file)}
            if report is not None:
                document["event_file"] = args.event_file
                document.update(report_to_dict(report))
            sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
        else:
            sys.stdout.write("\n".join(structure_lines(file, args.file)) + "\n")
            if report is not None:
                from rich.console import Console

                sys.stdout.write("\n")
                render_report(report, Console(soft_wrap=False))
    return EXIT_OK if report is None or report.ok else EXIT_PROBLEMS


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
