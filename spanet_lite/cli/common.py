"""What every console script shares: one-line errors and exit codes.

Exit codes: 0 success, 1 "ran, but found problems" (e.g. ``spanet-inspect``), 2 bad input
(an :class:`InputError`, bad arguments, a command not yet available), 74 an operating-system
failure while working (a full disk, a read-only file system; sysexits' EX_IOERR), 130
interrupted (Ctrl-C), 143 terminated (SIGTERM, e.g. a batch system's pre-emption).
"""

from __future__ import annotations

import _thread
import argparse
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from spanet_lite.errors import InputError, SpanetWarning

if TYPE_CHECKING:
    from spanet_lite.evaluation.run import Run

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_INPUT_ERROR = 2
EXIT_OS_ERROR = 74
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM (outside training, which saves a checkpoint first): unwinds like Ctrl-C, so that
    every ``finally`` runs and no temporary file is left behind."""


_TERMINATING = threading.Event()
"""Set by the SIGTERM handler, cleared when :func:`run_cli` has caught the :class:`Terminated`."""

INSIST_SECONDS = 2.0
"""How long a raised SIGTERM may go uncaught before it is raised again (see :func:`_on_sigterm`)."""


def _on_sigterm(signum: int, frame: object) -> None:
    """Raise :class:`Terminated`, and make sure it arrives.

    Python runs this wherever the main thread is, and code we do not control can drop the
    exception: a finaliser (printed as "Exception ignored", see
    :func:`_redeliver_swallowed_stops`), or an import inside a C extension (numpy.random's, seen
    once in about eighty SIGTERMs to ``spanet-generate`` on a loaded machine: the command wrote
    on). So a helper thread raises it again every :data:`INSIST_SECONDS` until ``run_cli`` has
    caught it. One that comes while the first is still unwinding is ignored, so that cleanups
    (removing a temporary file) finish.
    """
    if isinstance(sys.exc_info()[1], Terminated):
        return
    if not _TERMINATING.is_set():
        _TERMINATING.set()
        _thread.start_new_thread(_insist, (signum,))
    raise Terminated


def _insist(number: int) -> None:
    """Raise SIGTERM in the main thread again while it is uncaught and still ours to handle (a
    training run's handler, installed later in the same process, must not get a stray one)."""
    while True:
        time.sleep(INSIST_SECONDS)
        if not _TERMINATING.is_set() or signal.getsignal(number) is not _on_sigterm:
            return
        _thread.interrupt_main(number)


def _redeliver_swallowed_stops(previous: Callable[[object], None]) -> Callable[[object], None]:
    """A ``sys.unraisablehook`` that hands a lost SIGTERM or Ctrl-C back to the main thread.

    Python runs a signal handler wherever the main thread is, finalisers included (a weakref
    callback, a ``__del__``), and an exception raised there is printed and dropped: the command
    would go on as if no signal had come (seen in about one SIGTERM in thirty sent at random
    moments to ``spanet-generate``, which then wrote on for minutes). Here the signal is raised
    again from another thread, a moment later, so that it lands in the main thread's ordinary
    code (should it land in a finaliser again, this hook sends it once more).
    """

    def hook(unraisable: object) -> None:
        error = getattr(unraisable, "exc_value", None)
        for kind, number in ((Terminated, signal.SIGTERM), (KeyboardInterrupt, signal.SIGINT)):
            if isinstance(error, kind):
                _thread.start_new_thread(_interrupt_main_soon, (number,))  # returns at once
                return
        previous(unraisable)

    return hook


def _interrupt_main_soon(number: int) -> None:
    """Raise signal ``number`` in the main thread once it has left the hook (a handler run in the
    hook would be dropped again)."""
    time.sleep(0.01)
    _thread.interrupt_main(number)


@contextmanager
def flags_for(keywords: Mapping[str, str]) -> Iterator[None]:
    """Inside, an InputError naming one of the API's ``keywords`` names the command's flag for it.

    A command checks its flags by the API's own rule functions before calling it, so that a
    refusal names what the user typed; this is for the refusals only the work itself can make
    (they need the file's events, the checkpoint, the device, the database). ``keywords`` holds
    only those, so that no place in a file (an options file's ``epochs``) is taken for one."""
    try:
        yield
    except InputError as error:
        if error.where not in keywords:
            raise
        raise InputError(error.path, keywords[error.where], error.expected, error.got) from None


class _FullFlags(argparse.ArgumentParser):
    """An argument parser that, with ``allow_abbrev=False``, also refuses a prefix of a
    single-dash flag (``-c`` for ``-cf``, ``-o`` for ``-of``): argparse turns off only the long
    ones (``--epoch``) and still reads ``-c X`` as ``-cf X`` (Python 3.8 until gh-104860, 3.12.7
    and 3.13, which refuse it themselves). A one-letter flag with its value attached (``-e5``,
    ``-p10``) is still read, as SPANet reads it, unless the text also starts a longer flag
    (``-fp1``: ``-f -p 1`` or a cut ``-fp16``?), which is refused as SPANet refuses it."""

    def _get_option_tuples(self, option_string: str) -> list[tuple[Any, ...]]:
        found = super()._get_option_tuples(option_string)
        if self.allow_abbrev or option_string[1:2] in self.prefix_chars:
            return found
        # looked up here, not taken from ``found``: Python 3.12.7+ and 3.13 (CPython gh-104860) no
        # longer return the longer flags when allow_abbrev is False, so -fp1 would be read as -f -p 1
        longer = sorted(flag for flag in self._option_string_actions
                        if flag != option_string[:2] and flag.startswith(option_string))
        if longer:
            self.error(f"unrecognized argument {option_string} (flags are written in full: "
                       f"{' or '.join(longer)}?)")
        return found


def new_parser(
    program: str, description: str, *, kind: type[argparse.ArgumentParser] = argparse.ArgumentParser,
    **settings: str,
) -> argparse.ArgumentParser:
    """The argument parser of every ``spanet-*`` command: flags must be written out in full (no
    ``--epoch`` for ``--epochs``, no ``-c`` for ``-cf``; see :class:`_FullFlags`), so adding a flag
    later never changes what an old command line means. Subcommands' parsers are of the same kind."""
    full = kind if issubclass(kind, _FullFlags) else type(kind.__name__, (_FullFlags, kind), {})
    return full(prog=program, allow_abbrev=False, description=description, **settings)


def _one_line(message: object) -> str:
    """``message`` on one line, with control characters a user typed (a NUL in a file name)
    shown escaped rather than sent to the terminal."""
    text = " ".join(str(message).split())
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def error_line(program: str, message: str) -> None:
    """Print ``program: error: message`` as one line on stderr."""
    sys.stderr.write(f"{program}: error: {_one_line(message)}\n")


def _one_line_warnings(program: str) -> None:
    """Print our warnings about user inputs as ``program: warning: ...`` lines, without source context."""
    default = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, SpanetWarning):
            return f"{program}: warning: {_one_line(message)}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning


def run_cli(program: str, body: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run ``body(argv)``, turning user-input errors into one line and exit 2."""
    _one_line_warnings(program)
    previous = None
    unraisable_hook = sys.unraisablehook
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        sys.unraisablehook = _redeliver_swallowed_stops(unraisable_hook)
    _TERMINATING.clear()
    try:
        return body(argv)
    except Terminated:
        error_line(program, "terminated (SIGTERM)")
        return EXIT_TERMINATED
    except InputError as error:
        error_line(program, str(error))
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        error_line(program, "interrupted")
        return EXIT_INTERRUPTED
    except OSError as error:
        from spanet_lite.outputs import describe_os_error

        error_line(program, describe_os_error(error))
        return EXIT_OS_ERROR
    finally:
        _TERMINATING.clear()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = unraisable_hook


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """How a command that runs a trained network (``spanet-test``, ``spanet-predict``) loads it
    and where it runs it, in spanet_lite's spellings and SPANet's (``-ckpt``, ``-g/--gpu``,
    ``-fp16``, ``-ef``)."""
    parser.add_argument("-ckpt", "--checkpoint", metavar="CKPT",
                        help="checkpoint file (default: best.ckpt, else last.ckpt)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N or mps (default: cpu, or cuda with -g)")
    parser.add_argument("-g", "--gpu", action="store_true",
                        help="run on the GPU (SPANet's -g; same as --device cuda)")
    parser.add_argument("-fp16", "--fp16", action="store_true",
                        help="SPANet's -fp16: the weights rounded to float16 (CPU and GPU), and float16 "
                        "autocast on the GPU")
    parser.add_argument("-ef", "--event_file", "--event-file", dest="event_file", metavar="EVENT.yaml",
                        help="SPANet's -ef: accepted when it describes the run's own topology (the network "
                        "is always built from the run's copy)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (default: torch's choice; 1 is often fastest on a "
                        "machine shared with other jobs)")


def load_network(args: argparse.Namespace) -> Run:
    """The trained run named by ``args.run_dir`` and :func:`add_network_arguments`'s options.

    Imports torch (late, so that ``--help`` stays fast). Raises InputError for a bad ``--threads``
    or an ``-ef`` event file with another topology than the run's.
    """
    if args.threads is not None:
        cpus = os.cpu_count() or 1
        if not 1 <= args.threads <= cpus:  # far more would crash OpenMP (or the process) mid-run
            wanted = f"from 1 to {cpus}, the CPUs of this machine"
            raise InputError(None, "--threads", wanted, str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    from spanet_lite.devices import check_device
    from spanet_lite.evaluation.run import load_run

    if args.gpu and args.device not in (None, "cuda") and not str(args.device).startswith("cuda"):
        raise InputError(None, "-g/--gpu", "either -g or --device", f"both (--device {args.device})")
    device = args.device or ("cuda" if args.gpu else "cpu")
    flag = "-g/--gpu" if args.gpu and not args.device else "--device"  # the flag typed
    check_device(device, flag)
    with flags_for({"device": flag}):  # a device that fails as the network moves onto it
        run = load_run(args.run_dir, checkpoint=args.checkpoint, device=device)
    if args.fp16:
        from spanet_lite.evaluation.trained import round_to_float16

        round_to_float16(run.network, "-fp16")
    if args.event_file:
        _check_same_topology(run, args.event_file)
    return run


def _check_same_topology(run: Run, path: str) -> None:
    from pathlib import Path

    from spanet_lite.config.event_file import parse_event_spec
    from spanet_lite.io import read_user_text

    file = Path(path)
    if not file.is_file():
        raise InputError(file, "-ef/--event_file", "an event file (YAML)", "no such file")
    given = parse_event_spec(read_user_text(file, "event file", "YAML"), source=str(file))
    if given != run.spec:
        raise InputError(
            file, "", f"the topology the run was trained on ({run.directory / 'event_file.yaml'})",
            "a different event file",
        )


def autocast(args: argparse.Namespace, run: Run) -> AbstractContextManager[object]:
    """The precision context for ``-fp16``: float16 autocast on CUDA; on the CPU nothing (SPANet's
    ``-fp16`` autocast is CUDA's, which leaves CPU tensors alone; the weights were already
    rounded by :func:`load_network`)."""
    import contextlib

    import torch

    if getattr(args, "fp16", False) and run.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
