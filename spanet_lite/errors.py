"""The one error type users see, and the warning category for our own warnings.

Every problem with something a user gave us (event file, options file, HDF5 file,
command-line value) becomes an :class:`InputError`. The CLI prints it as a single
line ``file: location: expected X, got Y`` and exits with status 2, so a user never
reads a Python traceback for a mistake in their inputs.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem in a user-supplied file or value.

    Parameters
    ----------
    path:
        The file the problem is in (or ``None`` for a command-line value).
    where:
        The place inside the file, e.g. ``PERMUTATIONS.ht[0]`` or ``line 12``
        or ``TARGETS/t1/b``; empty when the whole file is meant.
    expected:
        What we needed there.
    got:
        What we found instead (optional); kept on one line, so callers may pass a library's
        multi-line message as it is.
    """

    def __init__(
        self,
        path: str | Path | None,
        where: str,
        expected: str,
        got: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.where = where
        self.expected = expected
        self.got = None if got is None else " ".join(got.split())
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        plain = self.expected.startswith(("expected", "no ", "cannot"))
        text = self.expected if plain else f"expected {self.expected}"
        if self.got is not None:
            text += f", got {self.got}"
        return ": ".join([*parts, text])

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type, tuple[str | None, str, str, str | None]]:
        """Pickle by the constructor's arguments, so a worker process's error reaches the parent."""
        return (type(self), (self.path, self.where, self.expected, self.got))


class SpanetWarning(UserWarning):
    """Warnings about user inputs that we accept but want the user to know about."""
