"""`spanet-generate`: write synthetic events in SPANet's HDF5 layout, no download needed.

    spanet-generate ttbar_allhad --events 10000 --seed 1 --output data/full_hadronic_ttbar/example.h5

The matching event file is ``event_files/<name>.yaml`` (``--event-file-output`` writes a copy).
Exit codes: 0 done, 2 bad arguments or an existing output without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spanet_lite.cli.common import EXIT_OK, check_seed, new_parser, run_cli
from spanet_lite.errors import InputError
from spanet_lite.outputs import add_overwrite_argument, check_outputs, output

if TYPE_CHECKING:
    from rich.console import Console

    from spanet_lite.physics.generator import Summary

PROGRAM = "spanet-generate"
PROCESS_NAMES = ("ttbar_allhad", "ttbar_semilep", "ttH_semilep", "hh_4b")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Generate synthetic collider events (jets, leptons, MET, truth) as a SPANet HDF5 file.",
    )
    parser.add_argument("process", choices=PROCESS_NAMES, help="which process to generate")
    parser.add_argument("--events", "-n", type=int, required=True, help="number of selected events to write")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed and options give the same file"
    )
    parser.add_argument("--output", "-o", type=Path, required=True, help="HDF5 file to write")
    parser.add_argument(
        "--event-file-output", type=Path, default=None, help="also write the matching event file here"
    )
    add_overwrite_argument(parser)
    parser.add_argument("--min-jets", type=int, default=None, help="selection: minimum accepted jets")
    parser.add_argument("--min-btags", type=int, default=None, help="selection: minimum b-tagged jets")
    parser.add_argument("--max-objects", type=int, default=None, help="padded width of the SEQUENTIAL input")
    parser.add_argument(
        "--signal-fraction",
        type=float,
        default=None,
        help="ttH_semilep: ttH share; fast backend: among candidates before selection (default "
             "0.2: about half of the selected events, the tt + bb background being accepted less "
             "often), Pythia backend: among selected events (default 0.5)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a physics parameter (see spanet_lite.physics.generator.config), repeatable",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=65_536,
        help="events per HDF5 write, in whole 4,096-event chunks (default: %(default)s)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary table")
    parser.add_argument(
        "--backend",
        choices=("fast", "pythia"),
        default="fast",
        help="fast: vectorised parton-level model; pythia: Pythia 8 shower + hadronisation + "
        "FastJet (needs the 'pythia' extra)",
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, help="--backend pythia: worker processes")
    return parser


def _overrides(items: list[str]) -> dict[str, float | int]:
    from spanet_lite.physics.generator.config import PhysicsConfig

    names = PhysicsConfig.names()
    defaults = PhysicsConfig()
    changes: dict[str, float | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            raise InputError(None, f"--set {item}", f"NAME=VALUE with NAME one of {', '.join(names)}")
        kind = type(getattr(defaults, name))
        try:
            changes[name] = kind(value)
        except ValueError:
            raise InputError(None, f"--set {item}", f"a {kind.__name__} value") from None
    return changes


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_seed(args.seed)
    from rich.console import Console

    from spanet_lite.io import atomic_write_text
    from spanet_lite.physics.generator import PROCESSES, PhysicsConfig, Selection, write_file
    from spanet_lite.physics.generator.engine import SIGNAL_FRACTION

    if args.events < 1:
        raise InputError(None, "--events", "a positive number of events", str(args.events))
    for flag, value in (
        ("--min-jets", args.min_jets),
        ("--min-btags", args.min_btags),
        ("--chunk-size", args.chunk_size),
    ):
        if value is not None and value < (1 if flag == "--chunk-size" else 0):
            raise InputError(
                None,
                flag,
                "a non-negative number" if flag != "--chunk-size" else "a positive number",
                str(value),
            )
    if args.signal_fraction is not None and not 0.0 <= args.signal_fraction <= 1.0:
        raise InputError(None, "--signal-fraction", "a fraction between 0 and 1", str(args.signal_fraction))
    process = PROCESSES[args.process]
    minimum_width = max(process.selection.min_jets, 1) + (1 if process.has_lepton else 0)
    if args.max_objects is not None and args.max_objects < minimum_width:
        raise InputError(
            None, "--max-objects", f"at least {minimum_width} for {process.name}", str(args.max_objects)
        )
    config = PhysicsConfig().with_overrides(**_overrides(args.overrides))
    problems = config.problems()
    if problems:
        raise InputError(None, "--set", "usable physics parameters", "; ".join(problems))
    default = process.selection
    selection = Selection(
        min_jets=default.min_jets if args.min_jets is None else args.min_jets,
        min_btags=default.min_btags if args.min_btags is None else args.min_btags,
        leptons=default.leptons,
    )
    width = args.max_objects or process.max_objects
    jet_slots = width - (1 if process.has_lepton else 0)
    for flag, value in (("--min-jets", selection.min_jets), ("--min-btags", selection.min_btags)):
        if value > jet_slots:
            raise InputError(None, flag, f"at most {jet_slots}, the jet slots of --max-objects {width} "
                             "(every event would be cut to fewer jets)", str(value))
    check_outputs([output(args.output, "--output"), output(args.event_file_output, "--event-file-output")],
                  overwrite=args.overwrite)

    console = Console(stderr=True)
    show_progress = not args.quiet and console.is_terminal
    if args.backend == "pythia":
        from spanet_lite.physics.pythia import generate

        summary = generate(
            args.process,
            args.events,
            args.seed,
            args.output,
            jobs=args.jobs,
            progress=show_progress,
            config=config,
            selection=selection,
            max_objects=args.max_objects,
            signal_fraction=args.signal_fraction,
            overwrite=args.overwrite,
        )
    else:
        run = functools.partial(
            write_file,
            args.output,
            process,
            args.events,
            args.seed,
            config=config,
            selection=selection,
            max_objects=args.max_objects,
            signal_fraction=SIGNAL_FRACTION if args.signal_fraction is None else args.signal_fraction,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
        )
        if show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(
                TextColumn(f"generating {process.name}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("generate", total=args.events)
                summary = run(progress=lambda done: bar.update(task, completed=done))
        else:
            summary = run()
    if args.event_file_output is not None:
        atomic_write_text(args.event_file_output, process.event_file_text)
    if not args.quiet:
        _print_summary(Console(), summary, args.output)
    return EXIT_OK


def _print_summary(console: Console, summary: Summary, output: Path) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.process}: {summary.events:,} events -> {output}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("candidates simulated", f"{summary.candidates:,}")
    table.add_row("selection efficiency", f"{summary.efficiency:.1%}")
    table.add_row("mean jets per event", f"{summary.mean_jets:.2f}")
    scope = " (signal events)" if summary.signal_fraction is not None else ""
    table.add_row(f"all particles fully matched{scope}", f"{summary.matched_all:.1%}")
    table.add_row(f"some particles fully matched{scope}", f"{summary.matched_some:.1%}")
    table.add_row(f"no particle fully matched{scope}", f"{summary.matched_none:.1%}")
    for particle, fraction in summary.particle_matched.items():
        table.add_row(f"{particle} fully matched{scope}", f"{fraction:.1%}")
    if summary.signal_fraction is not None:
        table.add_row("signal fraction after selection", f"{summary.signal_fraction:.1%}")
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
