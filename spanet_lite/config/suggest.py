"""Close-match suggestions for misspelt names ("did you mean 'normalize'?").

We only ever *suggest*: a misspelt feature option or option key is still an error or a
warning. Similarity is difflib's ratio ``2 * matches / (len(a) + len(b))`` on lower-cased
strings, cut at 0.6, so ``norm`` suggests ``normalize`` (0.62) but a mere substring is
never silently taken for the real thing (SPANet reads ``norm`` as "normalize" because the
word contains it; we do not).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

SIMILARITY_CUTOFF = 0.6


def close_match(word: Any, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to ``word``, or None when none is similar enough.

    Short names (``hr`` for ``ht``) fall below the ratio cutoff, so a candidate one edit
    away also counts, provided it is the only one (``q3`` among ``q1, q2`` suggests nothing).
    """
    if not isinstance(word, str):
        return None
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=SIMILARITY_CUTOFF)
    if matches:
        return by_lower[matches[0]]
    one_edit = [c for c in by_lower if len(c) >= 2 and edit_distance(word.lower(), c) == 1]
    return by_lower[one_edit[0]] if len(one_edit) == 1 else None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def did_you_mean(word: Any, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    match = close_match(word, candidates)
    return f" (did you mean {match!r}?)" if match is not None and match != word else ""


def describe(value: Any, limit: int = 60) -> str:
    """A short, user-facing description of a parsed value for "got ..." in error messages."""
    try:
        return _describe(value, limit)
    except ValueError:  # an integer longer than CPython turns into text (4,300 digits): YAML's 0x/0b
        # literals and Python values reach here although no decimal reader lets one through
        if isinstance(value, int):
            sign, digits = "a negative" if value < 0 else "an", int(value.bit_length() * math.log10(2)) + 1
            return f"{sign} integer of about {digits:,} digits (a number)"
        return f"a {type(value).__name__} holding an integer too long to print"


def _describe(value: Any, limit: int) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        text = f"{str(value).lower()} (a boolean)"
    elif isinstance(value, (int, float)):
        text = f"{value!r} (a number)"
    elif isinstance(value, str):
        text = repr(value)
    elif isinstance(value, list):
        text = f"a list {value!r}" if value else "an empty list"
    elif isinstance(value, dict):
        text = f"a mapping {value!r}" if value else "an empty mapping"
    else:
        text = f"{value!r} ({type(value).__name__})"
    return text if len(text) <= limit else text[: limit - 3] + "..."
