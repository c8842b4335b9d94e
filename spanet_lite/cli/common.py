"""What every console script shares: one-line errors and exit codes.

Exit codes: 0 success, 1 "ran, but found problems" (e.g. ``spanet-inspect``), 2 bad input
(an :class:`InputError`, bad arguments, a command not yet available), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spanet_lite.errors import InputError, SpanetWarning

if TYPE_CHECKING:
    from spanet_lite.evaluation.run import Run

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def error_line(program: str, message: str) -> None:
    """Print ``program: error: message`` as one line on stderr."""
    sys.stderr.write(f"{program}: error: {' '.join(str(message).split())}\n")


def _one_line_warnings(program: str) -> None:
    """Print our warnings about user inputs as ``program: warning: ...`` lines, without source context."""
    default = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, SpanetWarning):
            return f"{program}: warning: {' '.join(str(message).split())}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def run_cli(program: str, body: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run ``body(argv)``, turning user-input errors into one line and exit 2."""
    _one_line_warnings(program)
    try:
        return body(argv)
    except InputError as error:
        error_line(program, str(error))
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        error_line(program, "interrupted")
        return EXIT_INTERRUPTED


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint``, ``--device``, ``--threads``: how a command that runs a trained network
    (``spanet-test``, ``spanet-predict``) loads it and where it runs it."""
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="checkpoint file (default: best.ckpt, else last.ckpt)")
    parser.add_argument("--device", default="cpu",
                        help="torch device, e.g. cpu or cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (default: torch's choice; 1 is often fastest on a "
                        "machine shared with other jobs)")


def load_network(args: argparse.Namespace) -> Run:
    """The trained run named by ``args.run_dir`` and :func:`add_network_arguments`'s options.

    Imports torch (late, so that ``--help`` stays fast). Raises InputError for a bad ``--threads``.
    """
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(None, "--threads", "a positive number of threads", str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    from spanet_lite.evaluation.run import load_run

    return load_run(args.run_dir, checkpoint=args.checkpoint, device=args.device)
