"""Particle masses for ``spanet-test``'s chi-square assignment baseline.

SPANet's event file has no place for masses; spanet_lite reads them from an optional
top-level ``SPANET_LITE`` section (SPANet reads only its own sections and ignores this
one, so the file stays valid for SPANet) or from a ``--masses`` file given to
``spanet-test``. Both hold the same mapping, particle -> {products: "mass +- width"}::

    SPANET_LITE:
      MASSES:              # GeV, in the units of the inputs' pt and mass
        t1:
          all: 172.5 +- 20     # every product of t1 (b, q1, q2)
          q1 q2: 80.4 +- 10    # the W: a subset of the products, space-separated
        t2: {all: 172.5 +- 20, q1 q2: 80.4 +- 10}

A ``--masses`` file is the mapping under ``MASSES`` on its own (``t1: {...}`` at the top
level). ``"172.5 +- 20"``, ``"172.5 ± 20"`` and ``[172.5, 20]`` all mean mass 172.5 with a
resolution of 20; each entry adds ((m - mass) / width)^2 to the chi-square.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanet_lite.config.yaml_lines import YamlDocument, YamlPath, load_yaml_with_lines

SECTION = "SPANET_LITE"
MASSES = "MASSES"
ALL_PRODUCTS = "all"
_VALUE = re.compile(r"^\s*([-+0-9.eE]+)\s*(?:\+-|\+/-|±)\s*([-+0-9.eE]+)\s*$")
VALUE_EXPECTED = "'mass +- width' with a positive width, e.g. 172.5 +- 20"


@dataclass(frozen=True)
class MassConstraint:
    """The invariant mass of ``products`` of ``particle`` should be ``mass`` within ``width``."""

    particle: str
    products: tuple[str, ...]
    mass: float
    width: float

    def describe(self) -> str:
        products = " ".join(self.products) if _names(self.products) else repr(self.products)
        return f"m({self.particle}: {products}) = {_shown(self.mass)} +- {_shown(self.width)}"


def _shown(value: object) -> str:
    """A number as a file writes it (``172.5``); anything else as Python shows it, so that a
    constraint built wrongly in a notebook can still be named in its error line."""
    return f"{value:g}" if _is_real(value) else repr(value)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _names(value: object) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(name, str) for name in value)


def valid_products(products: Sequence[str], known: Sequence[str]) -> bool:
    """A constraint's products: names, at least one, each a product of its particle, none twice."""
    return _names(products) and bool(products) and set(products) <= set(known) \
        and len(set(products)) == len(products)


def valid_value(mass: object, width: object) -> bool:
    """A constraint's numbers: a finite mass and a finite width above 0 (the chi-square divides
    by it). The one rule, for a file's ``mass +- width`` (:func:`parse_masses`) and for
    :class:`MassConstraint` objects a caller passes (``evaluate_file(masses=...)``)."""
    return _is_real(mass) and _is_real(width) and math.isfinite(mass) and math.isfinite(width) \
        and width > 0  # type: ignore[operator]


def parse_spanet_lite_section(
    doc: YamlDocument, data: Any, particles: Mapping[str, Sequence[str]]
) -> tuple[MassConstraint, ...]:
    """The constraints in an event file's ``SPANET_LITE`` section (validated against ``particles``)."""
    path: YamlPath = (SECTION,)
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise doc.error(path, f"a mapping with a {MASSES} section", data)
    for key in data:
        if key != MASSES:
            raise doc.error((*path, key), f"the {MASSES} section (the only one spanet_lite reads here)", key)
    return parse_masses(doc, (*path, MASSES), data.get(MASSES), particles)


def parse_masses(
    doc: YamlDocument, path: YamlPath, data: Any, particles: Mapping[str, Sequence[str]]
) -> tuple[MassConstraint, ...]:
    """Constraints from the particle -> {products: value} mapping at ``path`` of ``doc``."""
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise doc.error(path, "a mapping of particle names to {products: 'mass +- width'}", data)
    result = []
    for particle, entries in data.items():
        where = (*path, particle)
        if particle not in particles:
            raise doc.error(where, f"a particle of the EVENT section ({', '.join(particles)})", particle)
        if not isinstance(entries, dict) or not entries:
            raise doc.error(where, "a mapping such as {all: 172.5 +- 20, q1 q2: 80.4 +- 10}", entries)
        known = tuple(particles[particle])
        for key, value in entries.items():
            at = (*where, key)
            if str(key) == ALL_PRODUCTS:
                products = known
            else:
                products = tuple(str(key).split())
                if not valid_products(products, known):
                    names = ", ".join(known)
                    expected = f"'all' or distinct products of {particle} ({names}) separated by spaces"
                    raise doc.error(at, expected, key)
            mass, width = _value(doc, at, value)
            result.append(MassConstraint(str(particle), products, mass, width))
    return tuple(result)


def _value(doc: YamlDocument, path: YamlPath, value: Any) -> tuple[float, float]:
    pair: tuple[Any, Any] | None = None
    if isinstance(value, str):
        match = _VALUE.match(value)
        if match:
            pair = (match.group(1), match.group(2))
    elif isinstance(value, list) and len(value) == 2:
        pair = (value[0], value[1])
    if pair is None:
        raise doc.error(path, VALUE_EXPECTED, value)
    try:
        mass, width = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        raise doc.error(path, VALUE_EXPECTED, value) from None
    if not valid_value(mass, width):
        raise doc.error(path, VALUE_EXPECTED, value)
    return mass, width


def load_masses_file(path: str | Path, particles: Mapping[str, Sequence[str]]) -> tuple[MassConstraint, ...]:
    """Constraints from a ``--masses`` YAML file: what goes under ``MASSES``, particles at its top level."""
    from spanet_lite.io import read_user_text

    text = read_user_text(path, "masses file", "YAML")
    doc = load_yaml_with_lines(text, str(path))
    if doc.data is None:
        expected = "a mapping of particle names to {products: 'mass +- width'}"
        raise doc.error((), expected, got_text="an empty file")
    return parse_masses(doc, (), doc.data, particles)
