"""`spanet-data concat|split|shuffle|select|convert-v1`: dataset operations that stream.

    spanet-data concat sig.h5 bkg.h5 -e E.yaml -o all.h5 --label signal=1 --label signal=0
    spanet-data split all.h5 -e E.yaml --fractions 0.8 0.1 0.1 -o train.h5 val.h5 test.h5 --shuffle
    spanet-data shuffle all.h5 -e E.yaml -o shuffled.h5 --seed 3
    spanet-data select all.h5 -e E.yaml -o six.h5 --min-jets 6 --max-jets 8 --limit 10000
    spanet-data convert-v1 old.h5 -e E.yaml -o new.h5

The Python API is :mod:`spanet_lite.dataset.operations`. Exit codes: 0 done; 2 bad input
(one line on stderr, nothing written). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spanet_lite.cli.common import EXIT_OK, flags_for, new_parser, run_cli
from spanet_lite.errors import InputError
from spanet_lite.outputs import add_overwrite_argument, check_outputs, output

if TYPE_CHECKING:
    from spanet_lite.config.event_spec import EventSpec

PROGRAM = "spanet-data"


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Concatenate, split, shuffle, select or convert SPANet HDF5 datasets, streaming in "
        "chunks (memory does not grow with the file). Inputs are validated against the event file first; "
        "outputs are written atomically and never over an input.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, many_inputs: bool = False, many_outputs: bool = False
                ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        sub.add_argument("inputs" if many_inputs else "input", nargs="+" if many_inputs else None,
                         metavar="IN.h5", help="input dataset(s)")
        sub.add_argument("-o", "--output", required=True, nargs="+" if many_outputs else None,
                         metavar="OUT.h5", help="output file(s)")
        sub.add_argument("-e", "-ef", "--event-file", "--event_file", dest="event_file", required=True,
                         metavar="YAML", help="event file the inputs are validated against (SPANet spells it "
                         "-ef/--event_file)")
        add_overwrite_argument(sub)
        sub.add_argument("--chunk-size", type=int, default=65536, metavar="N",
                         help="events moved at a time (default: %(default)s)")
        sub.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
        return sub

    concat = command("concat", "all events of several files (same event file) into one; padded widths "
                     "may differ and are re-padded to the largest", many_inputs=True)
    concat.add_argument("--label", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="one per input, in order: add classification target(s) "
                        "CLASSIFICATIONS/EVENT/KEY with this value for every event of that input "
                        "(e.g. --label signal=1 --label signal=0)")

    split = command("split", "cut a file into parts by fractions", many_outputs=True)
    split.add_argument("--fractions", type=float, nargs="+", required=True, metavar="F",
                       help="fraction of the events for each output, adding up to 1")
    split.add_argument("--shuffle", action="store_true", help="shuffle first (out of core, seeded)")
    split.add_argument("--seed", type=int, default=0, help="seed for --shuffle (default: %(default)s)")
    split.add_argument("--by-event-number", nargs="?", const="", default=None, metavar="DATASET",
                       help="deterministic split: each event goes where a hash of its number sends it "
                       "(the integer DATASET, e.g. INFO/event_number; without DATASET its position in "
                       "the file); fractions are met on average")
    _scratch_arguments(split)

    shuffle = command("shuffle", "the events in a random order (out of core, seeded)")
    shuffle.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _scratch_arguments(shuffle)

    select = command("select", "a subset by number of objects, and/or the first N events")
    counted = ("real objects of --input, every one counted: a lepton stored with the jets counts too "
               "(spanet-test's jet rows leave it out)")
    select.add_argument("--min-jets", type=int, metavar="N", help=f"keep events with at least N {counted}")
    select.add_argument("--max-jets", type=int, metavar="N", help="keep events with at most N such objects")
    select.add_argument("--input", dest="input_name", metavar="NAME",
                        help="the SEQUENTIAL input whose objects are counted (default: the first one)")
    select.add_argument("--limit", type=int, metavar="N", help="keep at most N events (the first that pass)")

    command("convert-v1", "a SPANet 1.x file (source/..., <particle>/...) in the current layout (INPUTS/..., "
            "TARGETS/...); the event file is the current YAML one and has one SEQUENTIAL input")
    return parser


def _scratch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scratch-dir", type=Path, metavar="DIR",
                        help="where the shuffle keeps its scratch file, about the size of the data "
                        "uncompressed (default: the output's folder)")
    parser.add_argument("--memory", type=float, default=64, metavar="MB",
                        help="memory for one shuffle bucket in MB (default: %(default)s)")


def parse_labels(values: Sequence[str], inputs: int) -> dict[str, list[int]]:
    """``["signal=1", "signal=0"]`` -> ``{"EVENT/signal": [1, 0]}``: one ``--label`` per input."""
    if not values:
        return {}
    from spanet_lite.dataset.operations.commands import check_label_count
    from spanet_lite.dataset.schema import CLASS_LABEL_LIMIT

    check_label_count(len(values), inputs, "--label")
    labels: dict[str, list[int]] = {}
    keys: list[str] | None = None
    for value in values:
        pairs = {}
        for item in value.split(","):
            key, sep, number = item.partition("=")
            key = key.strip()
            try:
                label = int(number)
            except ValueError:
                label = -2
            if not sep or not key or "/" in key or not 0 <= label < CLASS_LABEL_LIMIT:
                raise InputError(None, "--label",
                                 "KEY=VALUE with an integer class label from 0 to below 2**31", repr(item))
            if key in pairs:  # sig=1,sig=0: one of the two was silently dropped
                raise InputError(None, "--label", "each KEY once per --label", repr(value))
            pairs[key] = label
        if keys is None:
            keys = list(pairs)
        elif sorted(pairs) != sorted(keys):
            raise InputError(None, "--label", f"the same keys for every input ({', '.join(keys)})",
                             repr(value))
        for key, label in pairs.items():
            labels.setdefault(f"EVENT/{key}", []).append(label)
    return labels


def _progress(quiet: bool) -> tuple[Callable[[str, int], Callable[[int], None]], Callable[[], None]]:
    """A rich progress factory for long work on a terminal (nothing otherwise), and its closer."""
    from spanet_lite.dataset.operations.streams import no_progress

    if quiet or not sys.stderr.isatty():
        return no_progress, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)

    def factory(description: str, total: int) -> Callable[[int], None]:
        # Started on first use, after validation has shown (and closed) its own bar:
        # rich allows one live display at a time.
        if not bar.live.is_started:
            bar.start()
        task = bar.add_task(description, total=total)
        return lambda n: bar.advance(task, n)

    return factory, bar.stop


def _check_flags(args: argparse.Namespace, spec: EventSpec) -> float:
    """The operations' own rules, first, so that a refusal names the flag (the operations, which
    check the same values again, name their keywords). Returns a shuffle bucket's bytes (the rule
    turns --memory's MB into them, and refuses MB whose bytes are not finite)."""
    from spanet_lite.config.options_validation import check_chunk_size, check_seed
    from spanet_lite.dataset.operations import commands
    from spanet_lite.dataset.operations.shuffle import DEFAULT_BUCKET_MEMORY
    from spanet_lite.dataset.operations.streams import first_sequential_mask

    check_chunk_size(args.chunk_size, "--chunk-size")
    bucket_memory = float(DEFAULT_BUCKET_MEMORY)
    if args.command in ("split", "shuffle"):
        check_seed(args.seed, "--seed")
        bucket_memory = commands.check_bucket_memory(args.memory, "--memory", "MB", 2**20)
        commands.check_scratch_dir(args.scratch_dir, "--scratch-dir")
    if args.command == "split":
        commands.check_fractions(args.fractions, len(args.output), "--fractions")
        commands.check_one_order(args.shuffle, args.by_event_number is not None,
                                 ("--shuffle", "--by-event-number"))
    if args.command == "select":
        commands.check_selection(args.min_jets, args.max_jets, args.limit,
                                 ("--min-jets", "--max-jets", "--limit"))
        first_sequential_mask(spec, args.input_name, "--input")
    return bucket_memory


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from spanet_lite.config import load_event_spec
    from spanet_lite.dataset import operations

    spec = load_event_spec(args.event_file)
    # The operations check their outputs too, by keyword; here by flag, against the event file as well.
    targets = args.output if isinstance(args.output, list) else [args.output]
    sources = args.inputs if args.command == "concat" else [args.input]
    check_outputs([output(path, "-o/--output") for path in targets], inputs=[args.event_file, *sources],
                  overwrite=args.overwrite)
    bucket_memory = _check_flags(args, spec)
    factory, stop = _progress(args.quiet)
    streaming = operations.Streaming(
        chunk_size=args.chunk_size, progress=factory,
        validation_progress=not args.quiet and sys.stderr.isatty(),
        scratch_dir=getattr(args, "scratch_dir", None), bucket_memory=bucket_memory)
    common = {"overwrite": args.overwrite, "streaming": streaming}
    # An output the inputs' external links or virtual datasets lead to is found once they are open.
    names = ["output", *(f"outputs[{i}]" for i in range(len(targets)))]
    output_flags = dict.fromkeys(names, "-o/--output")
    try:
        with flags_for(output_flags):
            if args.command == "concat":
                labels = parse_labels(args.label, len(args.inputs))
                written = operations.concat(args.inputs, args.output, spec, labels=labels, **common)
            elif args.command == "split":
                number = args.by_event_number
                # A part of no event: found once the file is open.
                with flags_for({"fractions": "--fractions"}):
                    written = operations.split(args.input, args.output, args.fractions, spec,
                                               shuffle=args.shuffle, seed=args.seed,
                                               by_event_number=number is not None,
                                               event_number=number or None,
                                               **common)
            elif args.command == "shuffle":
                written = operations.shuffle(args.input, args.output, spec, seed=args.seed, **common)
            elif args.command == "select":
                written = operations.select(args.input, args.output, spec, min_objects=args.min_jets,
                                            max_objects=args.max_jets, limit=args.limit,
                                            input_name=args.input_name, **common)
            else:
                written = operations.convert_v1(args.input, args.output, spec, **common)
    finally:
        stop()
    if not args.quiet:
        for result in written:
            sys.stdout.write(f"{result.path}: {result.events:,} events\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
