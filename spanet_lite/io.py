"""Atomic file writing: a reader never sees a half-written file, and nothing is lost on a crash.

Every writer in the package goes through :func:`atomic_hdf5` (HDF5 files), :func:`atomic_path`
(for libraries such as onnx that want a path; with :func:`guarded_file` for those, such as
torch, that lose the operating system's error) or :func:`atomic_write_text`. A write that fails
for an operating-system reason (a full disk) leaves as one :class:`OSError` naming the file the
user asked for, never the temporary one (:func:`write_failure`), so the CLI prints one line,
exit 74.
Folders they create for a target (``new/sub/out.h5``) are removed again when the write fails or
is interrupted, if still empty: a failed command leaves the file system as it found it. A call
that writes several outputs stages them in one :func:`all_or_nothing` group, so that it leaves
all of them or none.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, cast

if TYPE_CHECKING:
    import h5py

PARTIAL_SUFFIX = ".partial"
"""Temporary files are ``.<target>.spanet-<host>-<pid>-<random>.partial`` next to their target."""
MAX_TEXT_BYTES = 4 * 1024 * 1024
"""Event and options files are a few kilobytes; anything above this is not one (and is not parsed)."""
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""OS failures that only a write gives: one of these without a file name is the output's."""
_ERRNO_IN_TEXT = re.compile(r"\berrno = (\d+)")
"""How HDF5 reports the OS failure under its own (h5py raises RuntimeError or OSError with it)."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def clean_stale_partials(target: str | Path) -> list[Path]:
    """Remove temporary files of ``target`` left by a writer on this host that no longer runs.

    A SIGKILL skips every ``finally``; the next write of the same target removes its remains.
    Files of live processes, and of other hosts (shared file systems), are left alone.
    """
    target = Path(target)
    pattern = re.compile(
        rf"^\.{re.escape(target.name)}\.spanet-{re.escape(_host())}-(\d+)-.*{re.escape(PARTIAL_SUFFIX)}$"
    )
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for candidate in target.parent.iterdir():
            match = pattern.match(candidate.name)
            if match and not _process_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    if candidate.is_dir() and not candidate.is_symlink():
                        shutil.rmtree(candidate)
                    else:
                        candidate.unlink()
                    removed.append(candidate)
    return removed


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM while a temporary file is created and named; one that came
    meanwhile is acted on when the block ends, as its handler would have.

    Both unwind as exceptions (Ctrl-C; ``cli.common.Terminated``): one raised between creating
    the file and knowing its name would leave the file behind. Python runs signal handlers in
    the main thread only, so only there is anything to hold back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    held = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    held = {s: handler for s, handler in held.items() if handler is not None}  # None: set outside Python
    for number in held:
        signal.signal(number, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for number, handler in held.items():
            signal.signal(number, handler)
        for number in arrived:
            handler = held[number]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def write_failure(error: BaseException, written: Path, shown: Path) -> OSError | None:
    """The OS failure behind ``error``, raised while writing ``written`` (a temporary path), as an
    :class:`OSError` naming ``shown`` (the output the user named), else None.

    Libraries name the temporary file or no file at all: Python's ``write`` gives a bare
    ``ENOSPC``, and h5py a ``RuntimeError("Object copy failed (... errno = 28 ...)")`` that
    ``run_cli`` would print as a traceback. A file of a temporary folder is named inside
    ``shown`` (``plots/roc.png``). Errors of other files (an input that cannot be read) pass
    unchanged.
    """
    if isinstance(error, OSError) and error.errno is not None:
        name = None if error.filename is None else Path(os.fsdecode(error.filename))
        if name is None and error.errno in WRITE_ERRNOS:
            where = shown
        elif name is not None and name.is_relative_to(written):
            where = shown / name.relative_to(written)
        else:
            return None
        # os.strerror, not error.strerror: h5py's is a paragraph naming the temporary file.
        return OSError(error.errno, os.strerror(error.errno), str(where))
    if isinstance(error, (OSError, RuntimeError)):
        found = _ERRNO_IN_TEXT.search(str(error))
        if found is not None and int(found.group(1)) in WRITE_ERRNOS:
            number = int(found.group(1))
            return OSError(number, os.strerror(number), str(shown))
    return None


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first.

    Only these may be removed when the write fails (:func:`_remove_if_empty`): a folder that
    existed before is the user's. One created meanwhile by another process counts as theirs.
    """
    missing: list[Path] = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                if not path.is_dir():
                    raise
                continue
            created.append(path)
    except BaseException:
        _remove_if_empty(created)
        raise
    return created


def _remove_if_empty(created: list[Path]) -> None:
    """Remove the folders :func:`_make_folders` created, innermost first, while they are empty
    (a file someone else put there keeps its folder, and so the folders above it)."""
    for path in reversed(created):
        try:
            path.rmdir()
        except OSError:
            return


def _prefix(target: Path) -> str:
    return f".{target.name}.spanet-{_host()}-{os.getpid()}-"


class OutputGroup:
    """The outputs of one call, staged by :func:`atomic_path` / :func:`atomic_directory` /
    :func:`atomic_write_text` given ``group=``, and moved into place by :func:`all_or_nothing`.

    Why: a call that writes two outputs (``spanet-export --copy-decoder``'s model and decoder,
    ``spanet-test --json --plots``) left the first in place when the second failed (a full
    disk), half a result that looks whole. A staged output stays under its temporary name
    until every output of the group is written.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def stage(self, commit: Callable[[], None], discard: Callable[[], None]) -> None:
        """Keep an output written under its temporary name: ``commit`` moves it into place,
        ``discard`` removes it (and the folders made for it, if empty)."""
        self._staged.append((commit, discard))

    def discard(self, first: int = 0) -> None:
        """Remove the staged outputs from the ``first`` on, the last staged first."""
        for _, discard in reversed(self._staged[first:]):
            with contextlib.suppress(OSError):
                discard()


@contextlib.contextmanager
def all_or_nothing() -> Iterator[OutputGroup]:
    """Yield an :class:`OutputGroup`; when the block ends, move every output staged in it into
    place, or, on any exception (Ctrl-C included), remove them all: the call leaves all its
    outputs or none, and nothing it did not create is touched.

    The moves are renames within each output's folder (no data is written), done with
    SIGINT and SIGTERM held back; only a rename the system refuses (a folder made read-only
    meanwhile) could leave the outputs moved before it.
    """
    group = OutputGroup()
    try:
        yield group
    except BaseException:
        group.discard()
        raise
    with _signals_held():
        for index, (commit, _) in enumerate(group._staged):
            try:
                commit()
            except BaseException:
                group.discard(index)
                raise


def _discard_file(tmp: Path, created: list[Path]) -> None:
    """Remove a temporary file and the folders made for it, if still empty."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _remove_if_empty(created)


def _discard_folder(tmp: Path, created: list[Path]) -> None:
    """Remove a temporary folder and the folders made for it, if still empty."""
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_if_empty(created)


def _fill_folder(tmp: Path, target: Path, created: list[Path]) -> None:
    """Move the files of the temporary folder ``tmp`` into ``target`` (made if missing; the
    folders made join ``created``), each with :func:`os.replace`, then remove ``tmp``."""
    with _signals_held():
        created += _make_folders(target)
    for item in sorted(tmp.iterdir()):
        item.replace(target / item.name)
    shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, group: OutputGroup | None = None) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success its files move into ``target``
    (when ``group`` moves its outputs into place, if one is given).

    For commands that write several files into a folder (``spanet-test --plots``): on any
    exception the temporary folder is removed, and the folders made for it (``target`` and its
    missing parents) if still empty; ``target`` keeps what it had. Each file is moved with
    :func:`os.replace`, so a reader never sees half a file.
    """
    target = Path(target)
    created: list[Path] = []
    tmp: Path | None = None
    staged = False
    try:
        with _signals_held():
            created = _make_folders(target.parent)
        clean_stale_partials(target)
        with _signals_held():
            tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=PARTIAL_SUFFIX, dir=target.parent))
        yield tmp
        if group is None:
            _fill_folder(tmp, target, created)
        else:
            written = tmp
            group.stage(lambda: _fill_folder(written, target, created),
                        lambda: _discard_folder(written, created))
            staged = True
    except BaseException as error:
        _undo_and_raise(error, tmp, target, created, _discard_folder)
    finally:
        if tmp is not None and not staged:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(
    target: str | Path, *, overwrite: bool = True, group: OutputGroup | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically
    (when ``group`` moves its outputs into place, if one is given).

    The temporary file lives in the same directory so :func:`os.replace` is a rename on one
    file system. On any exception (Ctrl-C included) the temporary file is removed, and the
    folders made for it if still empty, and ``target`` is untouched; after a SIGKILL its
    recognisable name (:data:`PARTIAL_SUFFIX`) is removed by the next write of the same target
    (:func:`clean_stale_partials`).
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise FileExistsError(target)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        with _signals_held():
            created = _make_folders(target.parent)
        clean_stale_partials(target)
        with _signals_held():
            fd, tmp_name = tempfile.mkstemp(prefix=_prefix(target), suffix=PARTIAL_SUFFIX, dir=target.parent)
            tmp = Path(tmp_name)
            os.close(fd)
            # mkstemp creates 0600; give the result the permissions a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o666 & ~umask)
        yield tmp
        if group is None:
            tmp.replace(target)
        else:
            written = tmp
            group.stage(lambda: written.replace(target), lambda: _discard_file(written, created))
    except BaseException as error:
        _undo_and_raise(error, tmp, target, created, _discard_file)


def _undo_and_raise(error: BaseException, tmp: Path | None, target: Path, created: list[Path],
                    discard: Callable[[Path, list[Path]], None]) -> NoReturn:
    """Leave the file system as it was (the temporary file or folder, and the folders made for
    the target, removed), then raise ``error``, or an OSError naming ``target`` when it was a
    refused write (:func:`write_failure`)."""
    if tmp is not None:
        discard(tmp, created)
    else:
        _remove_if_empty(created)
    written = tmp if tmp is not None else _refused_temporary(error, target)
    failure = None if written is None else write_failure(error, written, target)
    if failure is None:
        raise error
    raise failure from error


def _refused_temporary(error: BaseException, target: Path) -> Path | None:
    """The temporary path that making it failed with ``error`` (``mkstemp``, ``mkdtemp``: a folder
    os.access calls writable but the server refuses), else None: its name is random, so only the
    error knows it, and the line must name ``target``, not a file the user never heard of."""
    name = getattr(error, "filename", None) if isinstance(error, OSError) else None
    if name is None:
        return None
    path = Path(os.fsdecode(name))
    if path.parent == target.parent and path.name.startswith(_prefix(target)):
        return path
    return None


class _Sink(io.RawIOBase):
    """A file as h5py's ``fileobj`` driver writes it: the first refused write is kept in
    :attr:`error` and reported to HDF5 as a success, and later writes are dropped unread.

    Why: when the operating system refuses a write (a full disk, a quota, a file-size limit),
    HDF5 fails the write, then fails again when the file is closed (its metadata cannot be
    flushed either), and a dataset whose close failed is freed twice by the next close: h5py
    printed "Exception ignored in ObjectID.__dealloc__" tracebacks and the process died of a
    segmentation fault (exit 139). HDF5 offers no way to abandon a file unwritten, so it never
    sees a failed write; the writer stops at its next :func:`check_hdf5_writes`.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._file = path.open("w+b", buffering=0)  # closed by close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer) or 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.error is None:
            try:
                written = 0
                while written < size:  # a raw write may be short; HDF5 expects all of it
                    written += self._file.write(memoryview(data)[written:]) or 0
            except OSError as error:
                self._keep(error)
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._file.truncate(size)
            except OSError as error:
                self._keep(error)
        return self._file.tell() if size is None else size

    def flush(self) -> None:
        """Nothing to flush: the file is unbuffered."""

    def close(self) -> None:
        self._file.close()
        super().close()

    def _keep(self, error: OSError) -> None:
        """Keep ``error`` as a failure of this file. Python's ``write`` names no file; named,
        :func:`write_failure` knows it is this file's whatever its errno (EIO as well as ENOSPC)."""
        self.error = error if error.filename else OSError(error.errno, error.strerror, str(self._path))

    def raise_error(self, shown: Path) -> None:
        """Raise the kept failure, if any, as :func:`write_failure` names it: ``shown``."""
        if self.error is not None:
            raise write_failure(self.error, self._path, shown) or self.error


_SINKS: dict[tuple[int, int], tuple[_Sink, Path]] = {}
"""The sink and shown name of every open :func:`guarded_hdf5` file, by HDF5's file number (every
object of a file has it, so a dataset finds its file's sink)."""


def check_hdf5_writes(item: h5py.File | h5py.Group | h5py.Dataset) -> None:
    """Raise the first refused write of the file holding ``item`` (an OSError naming the output,
    never the temporary file); nothing for a file that :func:`guarded_hdf5` did not open.

    A long writer calls this after each block, so that a full disk stops the work at once
    instead of after the rest was computed for nothing (and before a scratch file is read back:
    its dropped writes would read as stale bytes).
    """
    entry = _SINKS.get(item.id.fileno)
    if entry is not None:
        sink, shown = entry
        sink.raise_error(shown)


@contextlib.contextmanager
def guarded_file(path: Path, shown: Path) -> Iterator[BinaryIO]:
    """A new binary file at ``path`` (created or truncated) for a library that writes through a
    file object: its first refused write is kept from the library (:class:`_Sink`) and raised,
    as a failure of ``shown``, when the block ends. Not atomic: pass an :func:`atomic_path`.

    Why: libraries lose the operating system's error. ``torch.save`` on a full disk raised
    ``RuntimeError: basic_ios::clear: iostream error`` (given a path) or ``unexpected pos``
    (given a file object), with no errno, so ``spanet-train`` printed a traceback and never
    marked its run directory incomplete; HDF5 crashed (see :class:`_Sink`).
    """
    sink = _Sink(path)
    try:
        yield cast(BinaryIO, sink)
    except Exception:
        sink.raise_error(shown)  # a refused write is the cause of whatever failed after it
        raise
    finally:
        sink.close()
    sink.raise_error(shown)  # what only the library's closing writes met


@contextlib.contextmanager
def guarded_hdf5(path: Path, shown: Path, **options: Any) -> Iterator[h5py.File]:
    """A new HDF5 file at ``path`` (created or truncated) whose refused writes are kept from
    HDF5 (:func:`guarded_file`) and raised as failures of ``shown`` by :func:`check_hdf5_writes`
    and when the block ends. ``options`` go to :class:`h5py.File` (e.g. ``rdcc_nbytes``). Not
    atomic: for scratch files; outputs use :func:`atomic_hdf5`.
    """
    import h5py

    with guarded_file(path, shown) as sink:
        key: tuple[int, int] | None = None
        try:
            with h5py.File(sink, "w", **options) as file:
                key = file.id.fileno
                _SINKS[key] = (cast(_Sink, sink), shown)
                yield file
        finally:
            if key is not None:
                _SINKS.pop(key, None)


@contextlib.contextmanager
def atomic_hdf5(
    target: str | Path, *, overwrite: bool = True, group: OutputGroup | None = None, **options: Any
) -> Iterator[h5py.File]:
    """A new HDF5 file written atomically to ``target`` (see :func:`atomic_path`; staged in
    ``group`` if one is given), through :func:`guarded_hdf5` so that a full disk is one line,
    never a crash of HDF5.

    Speed is unchanged: HDF5's writes are whole (compressed) chunks, and Python's share per
    write is small. A failure that only the closing flush meets is raised when the block ends,
    and then ``target`` is untouched.
    """
    target = Path(target)
    with (
        atomic_path(target, overwrite=overwrite, group=group) as tmp,
        guarded_hdf5(tmp, target, **options) as file,
    ):
        yield file


def atomic_write_text(target: str | Path, text: str, *, group: OutputGroup | None = None) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8); staged in ``group`` if one is given."""
    with atomic_path(target, group=group) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_user_text(path: str | Path, kind: str, syntax: str) -> str:
    """Read a user's text file (e.g. ``kind="event file", syntax="YAML"``) or raise a one-line InputError.

    A UTF-8 byte-order mark is accepted, since editors on some systems write one. A file larger
    than :data:`MAX_TEXT_BYTES` is refused before it is read.
    """
    from spanet_lite.errors import InputError

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES and path.is_file():
            raise InputError(
                path, "", f"an {kind} of at most {MAX_TEXT_BYTES // 1024 // 1024} MiB", f"{size:,} bytes"
            )
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "", f"an existing {kind}", "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "", f"an {kind} ({syntax})", "a directory") from None
    except UnicodeDecodeError as error:
        raise InputError(path, "", f"a UTF-8 text {kind} ({syntax})", _not_utf8(error)) from None
    except OSError as error:
        raise InputError(path, "", f"a readable {kind}", error.strerror or type(error).__name__) from None


def parse_user_json(text: str, source: str | Path, kind: str, *, hint: str = "", **hooks: Any) -> Any:
    """``text`` (from the file ``source``) decoded by :func:`json.loads` with ``hooks``, or a one-line
    InputError: a syntax error at its line and column (``hint`` appended), brackets nested too
    deeply to read, or an integer longer than Python converts (CPython's guard against
    quadratic-time conversion, 4,300 digits by default, raised by ``json`` as a bare ValueError:
    a traceback in every reader of a user's JSON). ``kind`` is what the file should be ("an
    options object"). Exceptions the ``hooks`` raise pass unchanged.
    """
    from spanet_lite.errors import InputError

    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise InputError(source, where, "valid JSON", f"a syntax error: {error.msg}{hint}") from None
    except RecursionError:  # hostile input: thousands of nested brackets
        raise InputError(source, "", kind, "JSON nested too deeply to read") from None
    except ValueError as error:
        limit = _int_digits_limit()
        long = re.search(rf"\d{{{limit + 1},}}", text) if limit else None
        got = None if long is None else integer_too_long(error, long.group())
        if long is None or got is None:
            raise
        line = text.count("\n", 0, long.start()) + 1
        raise InputError(source, f"line {line}", kind, got) from None


def _int_digits_limit() -> int:
    """CPython's limit on the digits of an int converted from text (3.11+; 0: none)."""
    return int(getattr(sys, "get_int_max_str_digits", lambda: 0)())


def integer_too_long(error: ValueError, written: str) -> str | None:
    """The "got" of an error for ``written``, an integer Python refused to convert because it has
    more digits than CPython's limit (a guard against quadratic-time conversion; json and PyYAML
    raise it as a bare ValueError), else None: ``error`` is another ValueError."""
    digits = sum(character.isdigit() for character in written)
    limit = _int_digits_limit()
    if not limit or digits <= limit or "integer string conversion" not in str(error):
        return None
    return f"an integer of {digits:,} digits (Python reads at most {limit:,})"


def _not_utf8(error: UnicodeDecodeError) -> str:
    """Binary data (a NUL byte: an HDF5 file or a checkpoint given by mistake), else where the
    first byte that is not UTF-8 sits, so one stray byte in a text file can be found."""
    data = bytes(error.object)
    if b"\0" in data:
        return "binary data"
    before = data[: error.start]
    line = before.count(b"\n") + 1
    column = error.start - (before.rfind(b"\n") + 1) + 1
    return f"a byte that is not UTF-8 (0x{data[error.start]:02x}) at line {line}, column {column}"


def checkpoint_path_problem(path: str | Path) -> str | None:
    """What is wrong with ``path`` as a checkpoint file, as an error's "got" (None: a file). A
    run's folder, the usual slip, is told where its weights are; a path that exists but is no
    regular file (``/dev/null``) is not called missing; an empty file (a copy to a full disk)
    is called empty, where torch's loader only said ``EOFError``."""
    path = Path(path)
    if path.is_dir():
        inside = path / "checkpoints"
        hint = f": a run's weights are in {inside}/, e.g. best.ckpt" if inside.is_dir() else ""
        return f"a directory{hint}"
    if path.is_file():
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                return "an empty file"
        return None
    return "not a regular file" if path.exists() else "no such file"  # /dev/null, a FIFO: it exists


def read_checkpoint(path: str | Path, expected: str = "a readable torch checkpoint") -> object:
    """The contents of a ``.ckpt`` file, or a one-line InputError naming it.

    Loaded with torch's ``weights_only``: tensors, numbers, strings and containers only, which is
    all spanet_lite writes. Unpickling anything else could run code hidden in the file, so a
    checkpoint holding other objects is refused instead of trusted.

    A checkpoint is a zip archive that stores a CRC-32 of every record, but ``torch.load`` does
    not compare them: a flipped byte in a weight loads silently as another weight. The records
    are checked here first (the whole file read once more: 0.05 s for 100 MB on the development
    machine).
    """
    import pickle
    import warnings

    import torch

    from spanet_lite.errors import InputError

    problem = checkpoint_path_problem(path)
    if problem is not None:
        missing = problem == "no such file"
        raise InputError(path, "", "an existing checkpoint" if missing else expected, problem)
    damage = _zip_damage(path)
    if damage is not None:
        raise InputError(path, "", expected, damage)
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols on the way to failing
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # a class or function torch would have to import
            raise InputError(
                path, "", f"{expected} of tensors and plain values",
                "other Python objects, which are not loaded (they could run code)",
            ) from None
        raise InputError(path, "", expected, "a file that is not one") from None
    except Exception as error:  # torch raises several types for damaged files
        raise InputError(path, "", expected, type(error).__name__) from None


def _zip_damage(path: str | Path) -> str | None:
    """What is wrong with the zip archive at ``path``, as the "got" of an error: a record whose
    data fails its CRC-32 (named without the archive's top folder), or an archive cut short
    (it starts like one but its directory, written last, is missing: a copy or a save that did
    not finish). None when every record passes, or when ``path`` is not a zip archive at all
    (``torch.load`` then says what it is)."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile:
        try:
            with Path(path).open("rb") as handle:
                starts_as_zip = handle.read(4) == b"PK\x03\x04"
        except OSError:
            return None
        return "a truncated file (a zip archive without its end)" if starts_as_zip else None
    except (OSError, EOFError, zlib.error, ValueError, NotImplementedError):
        return None
    if bad is None:
        return None
    return f"a damaged file (its record {bad.split('/', 1)[-1]} fails its stored checksum)"
