"""The one rule for the files a command writes, checked before any work is done.

Every command that writes something a user names (``spanet-test --json/--plots``,
``spanet-predict OUT``, ``spanet-export model.onnx``, ``spanet-generate --output`` and
``--event-file-output``) describes its outputs and inputs to :func:`check_outputs`, which
refuses, as one :class:`~spanet_lite.errors.InputError` line:

* an existing output, unless ``--overwrite`` is given;
* an output that is one of the command's inputs (also through a link), or a file of a
  training run (the run directory itself, its ``checkpoints/`` or anything in it, its recorded
  files): never, even with ``--overwrite``;
* a file output that is a directory, or a directory output that is a file;
* a file output that exists but is no regular file (``/dev/null``, a named pipe): outputs are
  renamed into place, so ``--overwrite`` would replace the device or pipe itself with a file;
* two outputs of one command that are the same path;
* an output whose folder cannot be written (read-only, or not a folder).

Train run directories are outside this rule: they are always new (``version_N``).
The writing itself goes through :mod:`spanet_lite.io` (atomic, nothing left behind);
an OS failure while writing (a full disk) leaves :mod:`~spanet_lite.io` as an OSError naming the
output (h5py's errno-in-a-RuntimeError included), which the CLI turns into one line, exit 74.
"""

from __future__ import annotations

import argparse
import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spanet_lite.errors import InputError

RUN_CHECKPOINTS = "checkpoints"
"""The folder of a run directory that holds its checkpoints (see :mod:`spanet_lite.training.recorder`)."""
RUN_FILES = ("options.json", "event_file.yaml", "statistics.json", "metrics.csv")
"""The files ``spanet-train`` records in a run directory; no other command may replace them."""


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: the only way to replace an existing output."""
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace existing output files (never an input file or a run's checkpoints)",
    )


@dataclass(frozen=True)
class Output:
    """One thing a command writes: ``what`` names it in messages (``--json``, ``OUT.h5``)."""

    path: Path
    what: str
    directory: bool = False
    """True for a folder the command fills (``--plots``), False for a single file."""


def output(path: str | Path | None, what: str, *, directory: bool = False) -> Output | None:
    """An :class:`Output`, or None when the option was not given (so callers can pass every option).

    An empty path is refused by name here: ``Path("")`` is ``.``, the current folder, and the
    refusal would wrongly speak of a directory."""
    if path is None:
        return None
    if isinstance(path, str) and not path:
        raise InputError(None, what, "a folder path" if directory else "a file path", "an empty path")
    return Output(Path(path), what, directory)


def check_outputs(
    outputs: Iterable[Output | None],
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> None:
    """Refuse outputs that would destroy something or fail late; see the module docstring."""
    given = [o for o in outputs if o is not None]
    sources = [Path(p) for p in inputs if p is not None]
    seen: dict[Path, Output] = {}
    for out in given:
        resolved = _resolved(out.path)
        if resolved in seen:
            raise InputError(out.path, out.what, f"a path different from {seen[resolved].what}",
                             "the same path")
        seen[resolved] = out
        _check_one(out, sources, overwrite)


def _check_one(out: Output, inputs: Sequence[Path], overwrite: bool) -> None:
    path = out.path
    for source in inputs:
        if _same(path, source):
            raise InputError(path, out.what, "an output different from the command's inputs",
                             f"the input {source}")
    inside = _inside_a_run(path)
    if inside is not None:
        raise InputError(path, out.what, "an output outside a training run's files and checkpoints/", inside)
    if path.exists() or path.is_symlink():
        if out.directory and not path.is_dir():
            raise InputError(path, out.what, "a folder for the files", "an existing file")
        if not out.directory and path.is_dir():
            raise InputError(path, out.what, "a file path", "a directory")
        if not out.directory and path.exists() and not path.is_file():
            # The atomic rename would put a regular file where /dev/null or a pipe was.
            raise InputError(path, out.what, "a regular file or a new path (outputs are renamed into "
                             "place, which would replace it)", "a device, pipe or socket")
        if not overwrite and not (out.directory and not any(path.iterdir())):
            got = "an existing folder with files" if out.directory else "an existing file"
            wanted = ("a path that does not exist yet (pass --overwrite, from Python overwrite=True, "
                      "to replace it)")
            raise InputError(path, out.what, wanted, got)
    _check_writable(out)


def _check_writable(out: Output) -> None:
    check_writable_folder(out.path if out.directory and out.path.is_dir() else out.path.parent,
                          out.what, shown=out.path)


def check_writable_folder(folder: str | Path, what: str, *, shown: str | Path | None = None) -> None:
    """``folder`` (or, when it does not exist yet, its nearest existing parent) must be a folder
    we may write to. ``os.access`` answers as the file system's permissions do (root passes a
    chmod 555 folder; a read-only mount still fails at the first write, as one line)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(shown or folder, what, "a path whose parent is a folder", f"{folder} is a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(shown or folder, what, "a folder we may write to", f"{folder} is read-only")


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    if _resolved(a) == _resolved(b):
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def is_run_directory(folder: Path) -> bool:
    """A training run's directory (spanet-train's or SPANet's): an ``options.json`` next to a
    ``checkpoints/`` folder or spanet-train's ``event_file.yaml``, which a run writes first. A
    user's folder of options and statistics files is none."""
    recorded = (folder / RUN_CHECKPOINTS).is_dir() or (folder / "event_file.yaml").is_file()
    return (folder / "options.json").is_file() and recorded


def _is_run_checkpoints(folder: Path) -> bool:
    """A run's ``checkpoints/`` folder."""
    return folder.name == RUN_CHECKPOINTS and is_run_directory(folder.parent)


def _inside_a_run(path: Path) -> str | None:
    """What ``path`` is of a training run (the "got" of the refusal), or None when it is no part
    of one.

    The path itself counts, not only its parents: a ``--plots`` folder that *is* a run's
    ``checkpoints/`` or the run directory would put files among the checkpoints or replace the
    run's own (``training_curves.png`` is no run file today, but the run directory is
    spanet-train's, as a whole). A new folder or file beside the run files (``RUN/plots``) is fine.
    """
    resolved = _resolved(path)
    if resolved.name == RUN_CHECKPOINTS and is_run_directory(resolved.parent):
        return "a run's checkpoints/ folder"
    if is_run_directory(resolved):
        return "a run directory"
    if any(_is_run_checkpoints(folder) for folder in resolved.parents):
        return "a path inside a run directory (in its checkpoints/)"
    if resolved.name in RUN_FILES and is_run_directory(resolved.parent):
        return "a path inside a run directory (one of its recorded files)"
    return None


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system failure: the file, what happened, what to do."""
    name = error.filename if error.filename is not None else ""
    reason = error.strerror or str(error) or type(error).__name__
    hints = {
        errno.ENOSPC: "free some space and run again",
        errno.EDQUOT: "free some space (disk quota) and run again",
        errno.EROFS: "write to a writable file system",
        errno.EACCES: "check the folder's permissions",
        errno.EPERM: "check the folder's permissions",
    }
    hint = hints.get(error.errno or 0)
    text = f"{name}: {reason}" if name else reason
    return f"{text} ({hint})" if hint else text
