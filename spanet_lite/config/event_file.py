"""Read a SPANet event file (YAML, docs/formats.md section 1) into an :class:`EventSpec`.

Validation happens here, once: every problem is an :class:`InputError` naming the file,
the place inside it with its YAML line (``PERMUTATIONS.ht[0] (line 12)``), what was
expected and what was found. Downstream code trusts the :class:`EventSpec` it gets.

This module handles INPUTS, EVENT and PERMUTATIONS; REGRESSIONS / CLASSIFICATIONS and
the checks that symmetric particles and products agree live in :mod:`event_targets`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from spanet_lite.config import masses as masses_config
from spanet_lite.config.event_spec import (
    FEATURE_OPTIONS,
    EventSpec,
    Feature,
    InputKind,
    InputSpec,
    ParticleSpec,
    Product,
)
from spanet_lite.config.event_targets import check_name, check_symmetric_declarations, parse_targets
from spanet_lite.config.suggest import describe, did_you_mean
from spanet_lite.config.symmetry import (
    MAX_ORDER,
    GroupTooLarge,
    Permutation,
    PermutationGroup,
    cycles_to_permutation,
    symmetric_group_generators,
)
from spanet_lite.config.yaml_lines import YamlDocument, YamlPath, format_path, load_yaml_with_lines
from spanet_lite.errors import InputError
from spanet_lite.io import read_user_text

SECTIONS = ("INPUTS", "EVENT", "PERMUTATIONS", "REGRESSIONS", "CLASSIFICATIONS", masses_config.SECTION)
INPUT_KINDS = ("SEQUENTIAL", "RELATIVE", "GLOBAL")
OBJECT_KINDS = ("SEQUENTIAL", "RELATIVE")
_SPANET_FEATURE_SPELLINGS = {"true": "normalize", "false": "none"}
"""Feature options SPANet reads from its older format's booleans, written as strings ('True'):
it lower-cases the option and normalises when it holds "true". Options are read in any case, as
there; SPANet's other substring guesses ('norm' holds neither word: no normalisation) are refused."""


def load_event_spec(path: str | Path, *, where: str = "path") -> EventSpec:
    """Read and validate the event file at ``path``. A ``path`` that is no path at all (a
    notebook's ``load_event_spec(3)`` was a TypeError from pathlib) is one line naming ``where``."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(None, where, "an event file path or an EventSpec", describe(path))
    text = read_user_text(path, "event file", "YAML")
    return parse_event_spec(text, source=str(path))


def event_spec_of(spec: EventSpec | str | Path, where: str = "spec") -> EventSpec:
    """``spec`` itself, or the event file it names: APIs that take a topology accept either, as a
    notebook has one or the other at hand (anything else is one line naming ``where``)."""
    return spec if isinstance(spec, EventSpec) else load_event_spec(spec, where=where)


def parse_event_spec(text: str, source: str = "<event file>") -> EventSpec:
    """Parse event-file YAML ``text``; ``source`` names the file in error messages."""
    doc = load_yaml_with_lines(text, source)
    return _EventFileParser(doc).parse()


class _EventFileParser:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc

    def parse(self) -> EventSpec:
        data = self.doc.data
        if data is None:
            raise self.doc.error((), "an event file with INPUTS and EVENT sections", got_text="an empty file")
        if not isinstance(data, dict):
            raise self.doc.error((), "a mapping with INPUTS and EVENT sections", data)
        for key in data:
            if key not in SECTIONS:
                raise self.doc.error(
                    (key,), f"a section among {', '.join(SECTIONS)}", got_text=_unknown(key, SECTIONS)
                )
        for key in ("INPUTS", "EVENT"):
            if key not in data:
                raise InputError(self.doc.source, key, f"a top-level {key} section", "none")

        sequential, global_inputs = self.parse_inputs(data["INPUTS"])
        kinds: dict[str, str] = {spec.name: spec.kind for spec in sequential + global_inputs}
        products = self.parse_event(data["EVENT"], kinds)
        event_symmetry, particle_symmetry = self.parse_permutations(data.get("PERMUTATIONS"), products)
        particles = tuple(
            ParticleSpec(name, prods, particle_symmetry[name]) for name, prods in products.items()
        )
        regressions = parse_targets(
            self.doc, "REGRESSIONS", data.get("REGRESSIONS"), products, regression=True
        )
        classifications = parse_targets(
            self.doc, "CLASSIFICATIONS", data.get("CLASSIFICATIONS"), products, regression=False
        )
        if not products and not regressions and not classifications:
            raise self.doc.error(
                ("EVENT",),
                "particles, or REGRESSIONS or CLASSIFICATIONS targets for a network without particles",
                data["EVENT"],
            )
        spec = EventSpec(
            sequential=sequential,
            global_inputs=global_inputs,
            particles=particles,
            event_symmetry=event_symmetry,
            regressions=tuple(regressions),  # type: ignore[arg-type]
            classifications=tuple(classifications),  # type: ignore[arg-type]
            source=self.doc.source,
            masses=masses_config.parse_spanet_lite_section(
                self.doc, data.get(masses_config.SECTION), {p.name: p.product_names for p in particles}
            ),
        )
        check_symmetric_declarations(self.doc, spec)
        return spec

    # ----------------------------------------------------------------- INPUTS
    def parse_inputs(self, inputs: Any) -> tuple[tuple[InputSpec, ...], tuple[InputSpec, ...]]:
        """(object inputs, GLOBAL inputs). Object inputs (SEQUENTIAL and RELATIVE) keep the order
        in which the event file lists them, sections included, as SPANet orders its inputs."""
        path: YamlPath = ("INPUTS",)
        if not isinstance(inputs, dict):
            raise self.doc.error(path, "a mapping with a SEQUENTIAL section (and optionally GLOBAL)", inputs)
        kinds: dict[Any, InputKind] = {}  # as written -> as SPANet reads it: it upper-cases the kind
        for key in inputs:
            if not (isinstance(key, str) and key.upper() in INPUT_KINDS):
                raise self.doc.error(
                    (*path, key), "SEQUENTIAL, RELATIVE or GLOBAL", got_text=_unknown(key, INPUT_KINDS)
                )
            kinds[key] = cast(InputKind, key.upper())
        if not any(section for key, section in inputs.items() if kinds[key] in OBJECT_KINDS):
            written = [key for key in inputs if kinds[key] == "SEQUENTIAL"]
            where = (*path, written[0]) if written else path
            raise self.doc.error(
                where, "at least one SEQUENTIAL input (a set of objects such as jets)", got_text="none"
            )
        first_seen: dict[str, YamlPath] = {}
        objects: list[InputSpec] = []
        global_inputs: list[InputSpec] = []
        for written_kind, section in inputs.items():
            kind = kinds[written_kind]
            if section is None:
                continue
            if not isinstance(section, dict):
                raise self.doc.error(
                    (*path, written_kind), "a mapping of input names to their features", section
                )
            for name, features in section.items():
                where = (*path, written_kind, name)
                check_name(self.doc, where, name, "an input name")
                if name in first_seen:
                    raise self.doc.error(
                        where,
                        f"each input name once (already defined at {self.doc.where(first_seen[name])})",
                        name,
                    )
                first_seen[name] = where
                spec = InputSpec(name, kind, self.parse_features(where, features))
                (global_inputs if kind == "GLOBAL" else objects).append(spec)
        return tuple(objects), tuple(global_inputs)

    def parse_features(self, path: YamlPath, features: Any) -> tuple[Feature, ...]:
        if not isinstance(features, dict) or not features:
            raise self.doc.error(
                path, "a mapping of feature names to options, e.g. 'pt: log_normalize'", features
            )
        expected = f"a feature option, one of {', '.join(FEATURE_OPTIONS)}"
        parsed = []
        for feature, option in features.items():
            where = (*path, feature)
            check_name(self.doc, where, feature, "a feature name")
            if feature == "MASK":
                raise self.doc.error(
                    where, f"a feature name other than MASK (INPUTS/{path[-1]}/MASK says which objects "
                    "are real, as in SPANet)", feature)
            if not isinstance(option, str):
                raise self.doc.error(where, expected, option)
            spelled = _SPANET_FEATURE_SPELLINGS.get(option.lower(), option.lower())
            if spelled not in FEATURE_OPTIONS:
                raise self.doc.error(where, expected, got_text=_unknown(option, FEATURE_OPTIONS))
            parsed.append(Feature(feature, spelled))
        return tuple(parsed)

    # ------------------------------------------------------------------ EVENT
    def parse_event(self, event: Any, kinds: dict[str, str]) -> dict[str, tuple[Product, ...]]:
        if event is None or event == {}:
            # No particles: a network of regression and classification targets only, which the
            # rest of the package supports (best.ckpt by val/total_loss, no assignment tables);
            # parse() refuses it when those targets are missing too.
            return {}
        if not isinstance(event, dict):
            raise self.doc.error(("EVENT",), "a mapping of particle names to lists of decay products", event)
        particles: dict[str, tuple[Product, ...]] = {}
        for particle, products in event.items():
            where: YamlPath = ("EVENT", particle)
            check_name(self.doc, where, particle, "a particle name")
            if particle == "EVENT":
                raise self.doc.error(where, "a particle name other than the reserved word EVENT", particle)
            if isinstance(products, dict):
                for key, value in products.items():
                    if isinstance(value, (list, dict)):
                        raise _too_deep(self.doc, (*where, key), key)
            if not isinstance(products, list) or not products:
                raise self.doc.error(where, "a list of decay products, e.g. [b, q1, q2]", products)
            parsed = [self.parse_product((*where, i), item, kinds) for i, item in enumerate(products)]
            names = [p.name for p in parsed]
            for i, name in enumerate(names):
                if name in names[:i]:
                    first = format_path((*where, names.index(name)))
                    raise self.doc.error(
                        (*where, i), f"each product name once per particle (already at {first})", name
                    )
            particles[particle] = tuple(parsed)
        return particles

    def parse_product(self, path: YamlPath, item: Any, kinds: dict[str, str]) -> Product:
        """``b`` (any input) or ``b: Jets`` (must come from the object input Jets, SEQUENTIAL or RELATIVE)."""
        if isinstance(item, dict) and len(item) == 1:
            ((name, input_name),) = item.items()
            check_name(self.doc, path, name, "a product name")
            if isinstance(input_name, (list, dict)):
                raise _too_deep(self.doc, path, name)
            if input_name is not None:
                sequential = [n for n, kind in kinds.items() if kind in OBJECT_KINDS]
                if not isinstance(input_name, str) or input_name not in kinds:
                    raise self.doc.error(
                        path,
                        f"the name of a SEQUENTIAL input ({', '.join(sequential)})",
                        got_text=_unknown(input_name, sequential),
                    )
                if kinds[input_name] not in OBJECT_KINDS:
                    raise self.doc.error(
                        path,
                        f"a SEQUENTIAL input ({', '.join(sequential)}): products are objects, "
                        "not event vectors",
                        got_text=f"GLOBAL input {input_name!r}",
                    )
            product = Product(name, input_name)
        elif isinstance(item, (str, int, float)):
            product = Product(check_name(self.doc, path, item, "a product name"))
        else:
            raise self.doc.error(path, "a product name, or 'name: input' for an associated product", item)
        if product.name == "PARTICLE":
            raise self.doc.error(path, "a product name other than the reserved word PARTICLE", product.name)
        if product.name in ("MASK", "WEIGHT"):
            raise self.doc.error(
                path,
                f"a product name other than MASK and WEIGHT (TARGETS/{path[1]}/{product.name} is the "
                f"particle's optional {product.name.lower()}, as in SPANet)",
                product.name,
            )
        return product

    # ----------------------------------------------------------- PERMUTATIONS
    def parse_permutations(
        self, permutations: Any, products: dict[str, tuple[Product, ...]]
    ) -> tuple[PermutationGroup, dict[str, PermutationGroup]]:
        if permutations is None:
            permutations = {}
        if not isinstance(permutations, dict):
            raise self.doc.error(
                ("PERMUTATIONS",), "a mapping of EVENT or particle names to groups", permutations
            )
        owners = ["EVENT", *products]
        for key in permutations:
            if key not in owners:
                raise self.doc.error(
                    ("PERMUTATIONS", key),
                    f"EVENT or a particle named in EVENT ({', '.join(products)})",
                    got_text=_unknown(key, owners),
                )
        event = self.parse_group(
            ("PERMUTATIONS", "EVENT"), permutations.get("EVENT"), list(products), "particles"
        )
        per_particle = {
            name: self.parse_group(
                ("PERMUTATIONS", name), permutations.get(name), [p.name for p in prods], f"products of {name}"
            )
            for name, prods in products.items()
        }
        return event, per_particle

    def parse_group(self, path: YamlPath, groups: Any, names: list[str], what: str) -> PermutationGroup:
        """The group generated by every entry of ``groups`` (flat lists and explicit cycles)."""
        if groups is None:
            return PermutationGroup.trivial(names)
        if not isinstance(groups, list):
            raise self.doc.error(path, "a list of groups, e.g. '- [a, b]'", groups)
        if groups and all(isinstance(group, str) for group in groups):
            raise self.doc.error(
                path,
                f"a list of groups, each in brackets: '- [{', '.join(groups)}]'",
                got_text=f"a bare list of names {groups!r}",
            )
        generators: list[Permutation] = []
        for g, group in enumerate(groups):
            where = (*path, g)
            if not isinstance(group, list) or not group:
                raise self.doc.error(
                    where, "a list of names [a, b] or a list of cycles [[a, b], [c, d]]", group
                )
            if all(isinstance(item, list) for item in group):
                generators.append(self.parse_cycles(where, group, names, what))
            elif all(isinstance(item, str) for item in group):
                if len(group) < 2:
                    raise self.doc.error(where, "at least two names to permute", group)
                positions = self.positions(where, group, names, what)
                generators.extend(symmetric_group_generators(positions, len(names)))
            else:
                raise self.doc.error(where, "either a list of names or a list of cycles, not a mix", group)
        try:
            return PermutationGroup.generated_by(names, generators)
        except GroupTooLarge as error:
            raise self.doc.error(
                path, f"symmetries of at most {MAX_ORDER:,} permutations (all orderings of 8 names)",
                got_text=str(error),
            ) from None

    def parse_cycles(self, path: YamlPath, cycles: list[Any], names: list[str], what: str) -> Permutation:
        """Disjoint cycles ``[[a, b], [c, d]]``: ONE generator moving all of them together."""
        parsed = []
        for c, cycle in enumerate(cycles):
            if len(cycle) < 2:
                raise self.doc.error(
                    (*path, c), "a cycle of at least two names (a 1-cycle moves nothing)", cycle
                )
            if not all(isinstance(name, str) for name in cycle):
                raise self.doc.error((*path, c), "a cycle of names", cycle)
            parsed.append(self.positions((*path, c), cycle, names, what))
        flat = [position for cycle in parsed for position in cycle]
        if len(set(flat)) != len(flat):
            raise self.doc.error(path, "disjoint cycles (each name at most once per generator)", cycles)
        return cycles_to_permutation(parsed, len(names))

    def positions(self, path: YamlPath, group: list[str], names: list[str], what: str) -> list[int]:
        for name in group:
            if name not in names:
                raise self.doc.error(
                    path, f"names among the {what} ({', '.join(names)})", got_text=_unknown(name, names)
                )
        if len(set(group)) != len(group):
            raise self.doc.error(path, "each name once per group", group)
        return [names.index(name) for name in group]


def _unknown(value: Any, known: list[str] | tuple[str, ...]) -> str:
    """``'norm' (did you mean 'normalize'?)``."""
    return describe(value) + did_you_mean(value, known)


def _too_deep(doc: YamlDocument, path: YamlPath, name: Any) -> InputError:
    return doc.error(
        path,
        "a two-level decay tree (particle -> list of products); list the final products of "
        "intermediate particles directly under their parent",
        got_text=f"a nested decay under {name!r}",
    )
