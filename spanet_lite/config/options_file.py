"""Read a SPANet options file (flat JSON object) into :class:`Options`.

What the loader promises:

* JSON syntax errors and duplicate keys are :class:`InputError` with line and column.
* Every key of SPANet's ``spanet/options.py`` is known; a key the file omits takes SPANet's
  default (:class:`~spanet_lite.config.options.Options`).
* Values must have the field's JSON type: booleans are ``true``/``false``, or ``0``/``1`` as
  SPANet's loader reads them (``"true"`` and ``2`` are errors), integers are integers
  (``32.0`` is taken as 32, ``32.5`` is an error, ``"32"`` is an error), and an integer is fine
  where a float is expected. ``combine_pair_loss`` is read case-insensitively as SPANet does,
  and its ``"None"`` is ``min`` (SPANet's code combines every value other than mean and
  softmin as the minimum).
* An unknown key is almost always a typo: it is an :class:`InputError` naming every unknown
  key with a close match (``learnig_rate`` -> ``learning_rate``). ``allow_unknown_keys=True``
  (``spanet-train --allow-unknown-keys``) ignores them with one warning instead. Keys of SPANet's
  older files that SPANet v2 ignores (:data:`~spanet_lite.config.options.RETIRED_SPANET_KEYS`)
  are ignored here too, with one warning naming them.
* SPANet keys whose meaning is not built here (:data:`~spanet_lite.config.options.NO_EFFECT`)
  are decided from the *effective* values (omitted keys take SPANet's defaults, so a file
  that omits ``transformer_type`` is told that the Gated default is not built), after
  command-line overrides: ``spanet-train`` prints one summary line
  (:func:`~spanet_lite.config.options.without_effect_summary`) and the options table marks them.
* File paths are *not* checked here: an options file written on another machine still
  loads. :func:`resolve_path` finds a file when a command needs it.

Impossible values (negative learning rate, unknown optimiser, ...) are checked by
:func:`spanet_lite.config.options_validation.validate_options`, after command-line
overrides are applied.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spanet_lite.config.options import (
    ACTIVATIONS,
    COMBINE_PAIR_LOSSES,
    PATH_KEYS,
    RETIRED_SPANET_KEYS,
    Options,
    option_fields,
    unknown_key_hint,
)
from spanet_lite.config.suggest import describe, did_you_mean
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.io import parse_user_json, read_user_text

_FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in option_fields()}
# SPANet spells activations like torch classes (GELU, LeakyReLU); we store torch.nn.functional names.
_ACTIVATION_KEYS = ("transformer_activation", "linear_activation")
_JSON_KEY = re.compile(r'"((?:[^"\\\n]|\\.)*)"\s*:')


def load_options(path: str | Path, *, allow_unknown_keys: bool = False) -> Options:
    """Read, type-check and return the options file at ``path`` (see the module docstring)."""
    text = read_user_text(path, "options file", "JSON")
    return parse_options_text(text, source=str(path), allow_unknown_keys=allow_unknown_keys)


def _looks_like_event_file(text: str) -> bool:
    """Whether ``text`` has an event file's top-level ``INPUTS:`` and ``EVENT:`` lines: the file
    a user passes in the options file's place by mistake."""
    tops = {line.split(":", 1)[0].strip() for line in text.splitlines() if line[:1].isalpha() and ":" in line}
    return {"INPUTS", "EVENT"} <= tops


def parse_options_text(text: str, source: str = "<options>", *, allow_unknown_keys: bool = False) -> Options:
    """Parse options-file JSON ``text``; ``source`` names the file in messages."""
    lines = _key_lines(text)
    hint = ""
    if _looks_like_event_file(text):
        hint = (" (this is an event file, YAML: pass the options JSON, and the event file as "
                "-ef/--event-file or the options' event_info_file)")
    try:
        data = parse_user_json(text, source, "an options object", hint=hint,
                               object_pairs_hook=_reject_duplicates)
    except _DuplicateKeyError as duplicate:
        where = _where(duplicate.key, lines, occurrence=1)
        raise InputError(source, where, "each key once", f"{duplicate.key!r} a second time") from None
    return parse_options(data, source, lines, allow_unknown_keys=allow_unknown_keys)


def parse_options(
    data: Any,
    source: str = "<options>",
    lines: Mapping[str, list[int]] | None = None,
    *,
    allow_unknown_keys: bool = False,
) -> Options:
    """Type-check a decoded options mapping (from a file, or a checkpoint) into :class:`Options`."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise InputError(source, "", "a JSON object of option keys and values", describe(data))
    values: dict[str, Any] = {}
    unknown: list[str] = []
    retired: list[str] = []
    for key, value in data.items():
        if key in _FIELD_TYPES:
            values[key] = _convert(key, value, source, _where(key, lines))
        elif key in RETIRED_SPANET_KEYS:
            retired.append(f"{_where(key, lines)} ({RETIRED_SPANET_KEYS[key]})")
        else:
            unknown.append(f"{_where(key, lines)}{did_you_mean(key, _FIELD_TYPES)}")
    if retired:
        warnings.warn(
            f"{source}: retired SPANet option keys ignored, as SPANet v2 ignores them: {', '.join(retired)}",
            SpanetWarning,
            stacklevel=2,
        )
    if unknown and not allow_unknown_keys:
        raise InputError(
            source,
            "",
            "known option keys (spanet-train --allow-unknown-keys, from Python allow_unknown_keys=True, "
            "ignores others)",
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
        )
    if unknown:
        warnings.warn(
            f"{source}: unknown option keys ignored: {', '.join(unknown)}", SpanetWarning, stacklevel=2
        )
    return Options(**values, explicit=frozenset(values))


def typed_options(options: Options) -> Options:
    """``options`` built in Python (a notebook's ``Options(hidden_dim=numpy.int64(32))``) with
    every value in its field's type, by the file's rules; which keys were set is kept."""
    typed = {f.name: _convert(f.name, getattr(options, f.name), None, f.name) for f in option_fields()}
    return dataclasses.replace(options, **typed)


def check_type(key: str, value: Any, source: str | Path | None, where: str) -> None:
    """Raise the loader's one-line InputError when ``value`` is not of ``key``'s type."""
    _convert(key, value, None if source is None else str(source), where)


def typed_overrides(values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Option values set by a Python keyword (``train(epochs=...)``, ``option_values=``) or a
    command's flag, typed by the same rules as a file's values, so ``epochs=1.5`` or
    ``hidden_dim="16"`` is one line before any work (not a Lightning assertion deep in the run)
    and a numpy integer becomes a plain ``int`` (a numpy boolean a ``bool``). A refusal names the
    key as the caller did: ``names`` holds the ones it calls otherwise (``event_file`` for
    ``event_info_file``)."""
    typed: dict[str, Any] = {}
    for key, value in values.items():
        where = (names or {}).get(key, key)
        if key not in _FIELD_TYPES:
            got = repr(key) + unknown_key_hint(key, _FIELD_TYPES)
            raise InputError(None, where, "a known option key", got)
        typed[key] = _convert(key, value, None, where)
    return typed


def resolve_path(value: str, key: str, options_path: str | Path | None = None) -> Path:
    """Find the file an option names.

    SPANet's convention first: relative to the working directory. If it is not there, we
    try relative to the options file's folder, so a run started from elsewhere still
    finds files that sit beside its options file. Absolute paths are taken as they are.
    Raises :class:`InputError` naming every place tried.
    """
    if not value:
        raise InputError(
            options_path, key, "a file name (in the options file or on the command line)", "nothing"
        )
    path = Path(value).expanduser()
    if path.is_absolute():
        if path.exists():
            return path
        raise InputError(options_path, key, "an existing file", f"{value!r}: no such file")
    if path.exists():
        return path
    tried = [Path.cwd() / path]
    if options_path is not None:
        beside = Path(options_path).parent / path
        if beside.exists():
            return beside
        if beside.absolute() != tried[0]:  # an options file in the working directory: one place
            tried.append(beside.absolute())
    places = " nor at ".join(str(place) for place in tried)
    raise InputError(options_path, key, "an existing file", f"{value!r}: not found at {places}")


# ------------------------------------------------------------------------ helpers
def as_integer(value: Any, where: str, source: str | None = None) -> int:
    """``value`` as an ``int`` when it is one: an int, a numpy integer, or a float with no
    fraction (JSON's ``64.0``, a notebook's ``1e6``, exact below 2**53). Anything else is the one
    line every integer setting gives: options, ``--set``, the generators' counts, seeds."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    raise InputError(source, where, "an integer", describe(value))


def _convert(key: str, value: Any, source: str | None, where: str) -> Any:
    """Check ``value`` against the field's type; return it in that type."""
    kind = _FIELD_TYPES[key]
    if (kind == "bool" or key == "compile") and _is_numpy_bool(value):
        return bool(value)  # a notebook's numpy.bool_ (a comparison, an array element) is a boolean
    if (kind == "bool" or key == "compile") and isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)  # SPANet's loader reads 0/1 as booleans
    if key == "compile":  # true, false or "auto": validation owns that rule
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise InputError(source, where, "true or false (a JSON boolean, or 0/1)", describe(value))
    if kind == "int":
        return as_integer(value, where, source)
    if kind == "float":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float's range (1e400 written out): no float holds it
                number = math.inf
            if math.isfinite(number):
                return number
            raise InputError(source, where, "a finite number", describe(value))
        raise InputError(source, where, "a number", describe(value))
    if value is None and key in PATH_KEYS:
        return ""
    if isinstance(value, os.PathLike) and key in PATH_KEYS:  # a notebook's pathlib.Path
        return os.fspath(value)
    if not isinstance(value, str):
        raise InputError(source, where, "a string", describe(value))
    if key in _ACTIVATION_KEYS:
        return _canonical_activation(value)
    if key == "combine_pair_loss":
        # SPANet compares value.lower() with "mean" and "softmin"; anything else (its "None"
        # included) keeps the minimum.
        lowered = value.lower()
        return "min" if lowered == "none" else lowered if lowered in COMBINE_PAIR_LOSSES else value
    return value


def _is_numpy_bool(value: Any) -> bool:
    """Whether ``value`` is a ``numpy.bool_``, which is no ``bool`` nor a number to Python. Read from
    ``sys.modules``: a value can only be one once numpy is imported, and checking options must not
    import it (CLI start-up)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)


def _canonical_activation(value: str) -> str:
    """``GELU`` -> ``gelu``, ``LeakyReLU`` -> ``leaky_relu``, ``None`` -> ``none`` (SPANet ignores
    case, underscores and spaces); anything else is left for validation, which refuses it (SPANet
    silently builds no activation for a name it does not know, typos included)."""
    squashed = value.lower().replace("_", "").replace(" ", "")
    for name in ACTIVATIONS:
        if name.replace("_", "") == squashed:
            return name
    return value


def _key_lines(text: str) -> dict[str, list[int]]:
    """Lines on which each ``"key":`` appears (our files are flat, so every key is an option)."""
    lines: dict[str, list[int]] = {}
    for match in _JSON_KEY.finditer(text):
        try:
            key = json.loads(f'"{match.group(1)}"')
        except json.JSONDecodeError:
            continue
        lines.setdefault(key, []).append(text.count("\n", 0, match.start()) + 1)
    return lines


def _where(key: str, lines: Mapping[str, list[int]], occurrence: int = 0) -> str:
    found = lines.get(key, [])
    return f"{key} (line {found[occurrence]})" if len(found) > occurrence else key


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` keeps the last of two equal keys silently; a typo'd copy would win unseen."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result
