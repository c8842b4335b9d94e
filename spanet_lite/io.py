"""Atomic file writing: a reader never sees a half-written file, and nothing is lost on a crash.

Every writer in the package goes through :func:`atomic_path` (for libraries such as
h5py or torch that want a path) or :func:`atomic_write_text`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically.

    The temporary file lives in the same directory so :func:`os.replace` is a rename on one
    file system. On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def read_user_text(path: str | Path, kind: str, syntax: str) -> str:
    """Read a user's text file (e.g. ``kind="event file", syntax="YAML"``) or raise a one-line InputError.

    A UTF-8 byte-order mark is accepted, since editors on some systems write one.
    """
    from spanet_lite.errors import InputError

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "", f"an existing {kind}", "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "", f"an {kind} ({syntax})", "a directory") from None
    except UnicodeDecodeError:
        raise InputError(path, "", f"a UTF-8 text {kind} ({syntax})", "binary data") from None
    except OSError as error:
        raise InputError(path, "", f"a readable {kind}", error.strerror or type(error).__name__) from None
