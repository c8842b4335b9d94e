"""Read a SPANet event file (YAML) into an :class:`EventSpec`.

Every problem is an :class:`InputError` naming the file, the place inside it (with the
YAML line where we know it) and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spanet_lite.config.event_spec import (
    FEATURE_OPTIONS,
    REGRESSION_TYPES,
    ClassificationTarget,
    EventSpec,
    Feature,
    InputSpec,
    ParticleSpec,
    Product,
    RegressionTarget,
)
from spanet_lite.config.symmetry import PermutationGroup, cycles_to_permutation, symmetric_group_generators
from spanet_lite.errors import InputError


def load_event_spec(path: str | Path) -> EventSpec:
    """Read and validate the event file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "", "an existing event file", "no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise InputError(path, "", "a UTF-8 YAML event file", type(error).__name__) from None
    return parse_event_spec(text, source=str(path))


def parse_event_spec(text: str, source: str = "<event file>") -> EventSpec:
    """Parse event-file YAML text; ``source`` is used in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(source, where, "valid YAML", problem) from None
    return _EventFileParser(source).parse(data)


class _EventFileParser:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, expected: str, got: Any = None) -> InputError:
        return InputError(self.source, where, expected, None if got is None else _describe(got))

    def parse(self, data: Any) -> EventSpec:
        if not isinstance(data, dict):
            raise self.error("", "a mapping with INPUTS and EVENT sections", data)
        for key in ("INPUTS", "EVENT"):
            if key not in data:
                raise self.error(key, f"a top-level {key} section", "nothing")
        unknown = set(data) - {"INPUTS", "EVENT", "PERMUTATIONS", "REGRESSIONS", "CLASSIFICATIONS"}
        if unknown:
            raise self.error(
                sorted(unknown)[0],
                "one of INPUTS, EVENT, PERMUTATIONS, REGRESSIONS, CLASSIFICATIONS",
                sorted(unknown)[0],
            )
        sequential, global_inputs = self.parse_inputs(data["INPUTS"])
        input_kinds = {spec.name: spec.kind for spec in sequential + global_inputs}
        products = self.parse_event(data["EVENT"], input_kinds)
        permutations = data.get("PERMUTATIONS") or {}
        if not isinstance(permutations, dict):
            raise self.error("PERMUTATIONS", "a mapping of EVENT or particle names to groups", permutations)
        for key in permutations:
            if key != "EVENT" and key not in products:
                raise self.error(f"PERMUTATIONS.{key}", "EVENT or a particle named in EVENT", key)
        particles = tuple(
            ParticleSpec(
                name,
                prods,
                self.parse_group(f"PERMUTATIONS.{name}", permutations.get(name), [p.name for p in prods]),
            )
            for name, prods in products.items()
        )
        event_symmetry = self.parse_group("PERMUTATIONS.EVENT", permutations.get("EVENT"), list(products))
        regressions = self.parse_targets("REGRESSIONS", data.get("REGRESSIONS"), products, regression=True)
        classifications = self.parse_targets(
            "CLASSIFICATIONS", data.get("CLASSIFICATIONS"), products, regression=False
        )
        spec = EventSpec(
            sequential=sequential,
            global_inputs=global_inputs,
            particles=particles,
            event_symmetry=event_symmetry,
            regressions=tuple(regressions),  # type: ignore[arg-type]
            classifications=tuple(classifications),  # type: ignore[arg-type]
            source=self.source,
        )
        self.check_event_symmetry(spec)
        return spec

    # ----------------------------------------------------------------- INPUTS
    def parse_inputs(self, inputs: Any) -> tuple[tuple[InputSpec, ...], tuple[InputSpec, ...]]:
        if not isinstance(inputs, dict):
            raise self.error("INPUTS", "a mapping with SEQUENTIAL (and optionally GLOBAL)", inputs)
        for key in inputs:
            if key not in ("SEQUENTIAL", "GLOBAL"):
                raise self.error(f"INPUTS.{key}", "SEQUENTIAL or GLOBAL", key)
        if not inputs.get("SEQUENTIAL"):
            raise self.error("INPUTS.SEQUENTIAL", "at least one SEQUENTIAL input", "none")
        seen: set[str] = set()
        result = []
        for kind in ("SEQUENTIAL", "GLOBAL"):
            section = inputs.get(kind) or {}
            if not isinstance(section, dict):
                raise self.error(f"INPUTS.{kind}", "a mapping of input names to features", section)
            specs = []
            for name, features in section.items():
                where = f"INPUTS.{kind}.{name}"
                if name in seen:
                    raise self.error(where, "a unique input name", f"duplicate {name!r}")
                seen.add(name)
                if not isinstance(features, dict) or not features:
                    raise self.error(where, "a mapping of feature names to options", features)
                parsed = []
                for feature, option in features.items():
                    if not isinstance(option, str):
                        raise self.error(f"{where}.{feature}", f"one of {', '.join(FEATURE_OPTIONS)}", option)
                    if option not in FEATURE_OPTIONS:
                        raise self.error(f"{where}.{feature}", f"one of {', '.join(FEATURE_OPTIONS)}", option)
                    parsed.append(Feature(str(feature), option))
                specs.append(InputSpec(str(name), kind, tuple(parsed)))  # type: ignore[arg-type]
            result.append(tuple(specs))
        return result[0], result[1]

    # ------------------------------------------------------------------ EVENT
    def parse_event(self, event: Any, input_kinds: dict[str, str]) -> dict[str, tuple[Product, ...]]:
        if not isinstance(event, dict) or not event:
            raise self.error("EVENT", "a mapping of particle names to lists of decay products", event)
        particles: dict[str, tuple[Product, ...]] = {}
        for particle, products in event.items():
            where = f"EVENT.{particle}"
            if not isinstance(products, list) or not products:
                raise self.error(where, "a list of decay products", products)
            parsed: list[Product] = []
            for i, product in enumerate(products):
                if isinstance(product, dict) and len(product) == 1:
                    (name, input_name), = product.items()
                    if input_name not in input_kinds:
                        raise self.error(f"{where}[{i}]", "a SEQUENTIAL input name", input_name)
                    if input_kinds[input_name] != "SEQUENTIAL":
                        raise self.error(f"{where}[{i}]", "a SEQUENTIAL input", f"GLOBAL input {input_name!r}")
                    parsed.append(Product(str(name), str(input_name)))
                elif isinstance(product, str):
                    parsed.append(Product(product))
                else:
                    raise self.error(f"{where}[{i}]", "a product name or a mapping {product: input}", product)
                if [p.name for p in parsed].count(parsed[-1].name) > 1:
                    raise self.error(f"{where}[{i}]", "a unique product name", f"duplicate {parsed[-1].name!r}")
            particles[str(particle)] = tuple(parsed)
        return particles

    # ----------------------------------------------------------- PERMUTATIONS
    def parse_group(self, where: str, groups: Any, names: list[str]) -> PermutationGroup:
        if groups is None:
            return PermutationGroup.trivial(names)
        if not isinstance(groups, list):
            raise self.error(where, "a list of groups such as [[a, b]]", groups)
        generators = []
        for g, group in enumerate(groups):
            gwhere = f"{where}[{g}]"
            if not isinstance(group, list) or not group:
                raise self.error(gwhere, "a non-empty list of names or of cycles", group)
            if all(isinstance(item, list) for item in group):
                cycles = []
                for c, cycle in enumerate(group):
                    if len(cycle) < 2:
                        raise self.error(f"{gwhere}[{c}]", "a cycle of at least two names", cycle)
                    cycles.append([self.position(f"{gwhere}[{c}]", name, names) for name in cycle])
                flat = [i for cycle in cycles for i in cycle]
                if len(set(flat)) != len(flat):
                    raise self.error(gwhere, "disjoint cycles (each name once)", group)
                generators.append(cycles_to_permutation(cycles, len(names)))
            elif all(isinstance(item, str) for item in group):
                if len(group) < 2:
                    raise self.error(gwhere, "at least two names to permute", group)
                positions = [self.position(gwhere, name, names) for name in group]
                if len(set(positions)) != len(positions):
                    raise self.error(gwhere, "each name once", group)
                generators.extend(symmetric_group_generators(positions, len(names)))
            else:
                raise self.error(gwhere, "a list of names or a list of cycles, not a mix", group)
        return PermutationGroup.generated_by(names, generators)

    def position(self, where: str, name: Any, names: list[str]) -> int:
        if name not in names:
            raise self.error(where, f"one of {', '.join(names)}", name)
        return names.index(name)

    # ---------------------------------------------- REGRESSIONS/CLASSIFICATIONS
    def parse_targets(
        self, section: str, data: Any, products: dict[str, tuple[Product, ...]], *, regression: bool
    ) -> list[RegressionTarget | ClassificationTarget]:
        if data is None:
            return []
        if not isinstance(data, dict):
            raise self.error(section, "a mapping of EVENT or particle names to targets", data)
        result: list[RegressionTarget | ClassificationTarget] = []
        for owner, entries in data.items():
            where = f"{section}.{owner}"
            if entries is None:
                continue
            if owner == "EVENT":
                result.extend(self.parse_target_list(where, entries, None, None, regression))
                continue
            if owner not in products:
                raise self.error(where, "EVENT or a particle named in EVENT", owner)
            if isinstance(entries, dict):
                groups = list(entries.items())
            elif isinstance(entries, list) and all(isinstance(e, dict) and len(e) == 1 for e in entries):
                groups = [next(iter(e.items())) for e in entries]
            else:
                raise self.error(where, "a mapping or list of {PARTICLE or product: [targets]}", entries)
            product_names = [p.name for p in products[owner]]
            for level, targets in groups:
                if level != "PARTICLE" and level not in product_names:
                    raise self.error(f"{where}.{level}", f"PARTICLE or one of {', '.join(product_names)}", level)
                result.extend(self.parse_target_list(f"{where}.{level}", targets, owner, level, regression))
        keys = [t.key for t in result]
        for key in keys:
            if keys.count(key) > 1:
                raise self.error(section, "unique target names", f"duplicate {key}")
        return result

    def parse_target_list(
        self, where: str, entries: Any, particle: str | None, product: str | None, regression: bool
    ) -> list[RegressionTarget | ClassificationTarget]:
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise self.error(where, "a list of target names", entries)
        result: list[RegressionTarget | ClassificationTarget] = []
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                name, kind = entry, "gaussian"
            elif regression and isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
                name, kind = entry
                if kind not in REGRESSION_TYPES:
                    raise self.error(f"{where}[{i}]", f"a regression type ({', '.join(REGRESSION_TYPES)})", kind)
            else:
                expected = "a target name or [name, type]" if regression else "a target name"
                raise self.error(f"{where}[{i}]", expected, entry)
            if regression:
                result.append(RegressionTarget(name, kind, particle, product))
            else:
                result.append(ClassificationTarget(name, particle, product))
        return result

    def check_event_symmetry(self, spec: EventSpec) -> None:
        for orbit in spec.event_symmetry.orbits():
            if len(orbit) < 2:
                continue
            first = spec.particles[orbit[0]]
            for index in orbit[1:]:
                other = spec.particles[index]
                if other.num_products != first.num_products:
                    raise self.error(
                        "PERMUTATIONS.EVENT",
                        f"symmetric particles with equal product counts ({first.name} has {first.num_products})",
                        f"{other.name} with {other.num_products}",
                    )


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
