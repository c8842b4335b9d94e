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

from spanet_lite.cli.common import EXIT_OK, flags_for, new_parser, run_cli
from spanet_lite.errors import InputError
from spanet_lite.outputs import add_overwrite_argument, check_outputs, output

if TYPE_CHECKING:
    from rich.console import Console

    from spanet_lite.io import OutputGroup
    from spanet_lite.physics.generator import PhysicsConfig, Selection, Summary
    from spanet_lite.physics.generator.processes import Process

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
    parser.add_argument("--output", "-o", required=True, help="HDF5 file to write")
    parser.add_argument("--event-file-output", default=None, help="also write the matching event file here")
    add_overwrite_argument(parser)
    parser.add_argument("--min-jets", type=int, default=None, help="selection: minimum accepted jets")
    parser.add_argument("--min-btags", type=int, default=None, help="selection: minimum b-tagged jets")
    parser.add_argument("--max-objects", type=int, default=None, help="padded width of the SEQUENTIAL input")
    parser.add_argument(
        "--signal-fraction",
        type=float,
        default=None,
        help="ttH_semilep only (the one process with a background): ttH share; fast backend: among "
             "candidates before selection (default 0.2: about half of the selected events, the tt + bb "
             "background being accepted less often), Pythia backend: among selected events (default 0.5)",
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
    parser.add_argument(
        "--jobs", "-j", type=int, default=1,
        help="worker processes for --backend pythia, at least 1 (default: %(default)s); the fast "
             "backend is vectorised in one process and gives the same file with any value",
    )
    return parser


FLAGS = {
    "events": "--events",
    "seed": "--seed",
    "config": "--set",
    "min_jets": "--min-jets",
    "min_btags": "--min-btags",
    "max_objects": "--max-objects",
    "signal_fraction": "--signal-fraction",
    "chunk_size": "--chunk-size",
    "jobs": "--jobs",
}
"""The flag of each value the backends check (``generator.request.Request``'s ``names``)."""

VALUE_KINDS = {int: "an integer", float: "a number"}
"""What a ``--set`` value must look like, by the type of the parameter's default."""


def _overrides(items: list[str]) -> dict[str, float | int]:
    from spanet_lite.config.suggest import did_you_mean
    from spanet_lite.physics.generator.config import PhysicsConfig

    names = PhysicsConfig.names()
    defaults = PhysicsConfig()
    changes: dict[str, float | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            got = (f"no '=' in {item!r}" if not sep
                   else f"unknown parameter {name!r}{did_you_mean(name, names)}")
            raise InputError(None, f"--set {item}", f"NAME=VALUE with NAME one of {', '.join(names)}", got)
        kind = type(getattr(defaults, name))
        try:
            changes[name] = kind(value)
        except ValueError:
            expected = VALUE_KINDS.get(kind, f"a {kind.__name__} value")
            raise InputError(None, f"--set {item}", expected) from None
    return changes


def _body(argv: Sequence[str] | None) -> int:
    """Parse, check every value by the backends' rule (``generator.request.Request``) naming its
    flag, then call the backend (which checks them again, by keyword, for a notebook)."""
    args = build_parser().parse_args(argv)
    from rich.console import Console

    from spanet_lite.io import all_or_nothing, atomic_write_text
    from spanet_lite.physics.generator import PROCESSES, PhysicsConfig, Selection
    from spanet_lite.physics.generator.request import Request

    process = PROCESSES[args.process]
    config = PhysicsConfig().with_overrides(**_overrides(args.overrides))
    default = process.selection
    selection = Selection(
        min_jets=default.min_jets if args.min_jets is None else args.min_jets,
        min_btags=default.min_btags if args.min_btags is None else args.min_btags,
        leptons=default.leptons,
    )
    Request(process, args.events, args.seed, config, selection, args.max_objects, args.signal_fraction,
            args.chunk_size, args.jobs, names=FLAGS)
    check_outputs([output(args.output, "--output"), output(args.event_file_output, "--event-file-output")],
                  overwrite=args.overwrite)

    console = Console(stderr=True)
    show_progress = not args.quiet and console.is_terminal
    with (
        all_or_nothing() as group,  # the events and their event file, or neither
        flags_for({"selection": "--min-jets/--min-btags/--set"}),  # one that accepts (almost) nothing
    ):
        summary = _generate(args, process, config, selection, console, show_progress, group)
        if args.event_file_output is not None:
            atomic_write_text(args.event_file_output, process.event_file_text, group=group)
    if not args.quiet:
        _print_summary(Console(), summary, args.output)
    return EXIT_OK


def _generate(args: argparse.Namespace, process: Process, config: PhysicsConfig, selection: Selection,
              console: Console, show_progress: bool, group: OutputGroup) -> Summary:
    """Run the chosen backend on the values :func:`_body` has checked, its output staged in ``group``."""
    from spanet_lite.physics.generator import write_file

    if args.backend == "pythia":
        from spanet_lite.physics.pythia import generate, require_pythia

        require_pythia("--backend pythia")
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
            group=group,
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
            signal_fraction=args.signal_fraction,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
            group=group,
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
    return summary


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
