"""Writing a generated HDF5 file so that a full disk is one line, not a crash.

When the operating system refuses a write (a full disk, a quota, a file-size limit), HDF5
fails the write, then fails again when the file is closed (its metadata cannot be flushed
either), and a dataset whose close failed is freed twice by the next close: h5py printed
"Exception ignored in ObjectID.__dealloc__" tracebacks and the process died of a segmentation
fault (exit 139), after the one-line error. HDF5 offers no way to abandon a file unwritten.

So HDF5 never sees a failed write here: the file is handed to h5py as a Python file object
(h5py's ``fileobj`` driver) that records the first failure and drops every later write. HDF5
closes the file cleanly, the caller stops at its next :meth:`Sink.check`, and the recorded
error is raised, naming the output, for ``spanet-generate`` to print as one line (exit 74);
:func:`~spanet_lite.io.atomic_path` removes the temporary file. Speed is unchanged: the
writes are whole compressed chunks, and Python's share per write is small.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import h5py

from spanet_lite.io import atomic_path


class Sink(io.RawIOBase):
    """The temporary file, as h5py's ``fileobj`` driver writes it: the first failed write is
    kept in :attr:`error` and reported as a success, and later writes are dropped unread."""

    def __init__(self, path: Path, target: Path) -> None:
        super().__init__()
        self._file = path.open("w+b", buffering=0)  # closed by close()
        self._target = target
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

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._file.readinto(buffer) or 0

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = memoryview(data).nbytes
        if self.error is None:
            try:
                written = 0
                while written < size:  # a raw write may be short; HDF5 expects all of it
                    written += self._file.write(memoryview(data)[written:]) or 0
            except OSError as error:
                self.error = error
        return size

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._file.truncate(size)
            except OSError as error:
                self.error = error
        return self._file.tell() if size is None else size

    def flush(self) -> None:
        """Nothing to flush: the file is unbuffered."""

    def close(self) -> None:
        self._file.close()
        super().close()

    def check(self) -> None:
        """Raise the first failed write, if any, as an OSError naming the output file."""
        if self.error is not None:
            error = self.error
            raise OSError(error.errno, error.strerror or str(error), str(self._target)) from error


@contextlib.contextmanager
def hdf5_output(target: str | Path, *, overwrite: bool = True) -> Iterator[tuple[h5py.File, Sink]]:
    """An HDF5 file written atomically to ``target`` (see :func:`~spanet_lite.io.atomic_path`).

    Yields the open file and its :class:`Sink`; a long writer calls ``sink.check()`` after each
    write so that a full disk stops the work at once. A failure that only the closing flush
    meets is raised when the block ends, and then ``target`` is untouched.
    """
    target = Path(target)
    with atomic_path(target, overwrite=overwrite) as tmp:
        sink = Sink(tmp, target)
        try:
            with h5py.File(sink, "w") as f:
                yield f, sink
        except Exception:
            sink.check()  # a failed write is the cause of whatever went wrong after it
            raise
        finally:
            sink.close()
        sink.check()
