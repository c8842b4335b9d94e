"""REGRESSIONS / CLASSIFICATIONS sections, and the agreement checks symmetry requires.

Both sections accept the two spellings found in SPANet event files::

    REGRESSIONS:                       REGRESSIONS:
      EVENT: [met]                       EVENT: [met]
      t1:                                t1:
        PARTICLE: [mass]                   - PARTICLE: [mass]
        b: [[pt, log_gaussian]]            - b: [[pt, log_gaussian]]

A regression entry is a name (Gaussian loss), ``[name]`` (the same) or ``[name, type]``.

Symmetry makes demands on the declarations: if a permutation may exchange two products
(or, at EVENT level, two particles), the network cannot tell them apart, so they must
come from the same input and carry the same targets; otherwise a relabelled target
would be a different answer and the symmetric loss would be wrong.
"""

from __future__ import annotations

from typing import Any

from spanet_lite.config.event_spec import (
    REGRESSION_TYPES,
    ClassificationTarget,
    EventSpec,
    ParticleSpec,
    Product,
    RegressionTarget,
)
from spanet_lite.config.suggest import describe, did_you_mean
from spanet_lite.config.yaml_lines import YamlDocument, YamlPath, format_path

Target = RegressionTarget | ClassificationTarget


def check_name(doc: YamlDocument, path: YamlPath, name: Any, what: str) -> str:
    """Names become HDF5 dataset names: non-empty strings without '/'. Nor '.', which HDF5 reads as
    the group itself, nor a NUL, where HDF5 ends the name (``b\\0`` would read ``b``'s dataset)."""
    if not isinstance(name, str):
        raise doc.error(path, f"{what} (quote it if YAML reads it as a number or boolean)", name)
    if not name.strip() or "/" in name:
        raise doc.error(path, f"{what} without '/' (names become HDF5 dataset names)", name)
    if name == "." or "\0" in name:
        why = "'.' is the group itself, and a name ends at a NUL"
        raise doc.error(path, f"{what} HDF5 can hold ({why})", name)
    return name


def parse_targets(
    doc: YamlDocument,
    section: str,
    data: Any,
    particles: dict[str, tuple[Product, ...]],
    *,
    regression: bool,
) -> list[Target]:
    """All targets of one section, in file order; HDF5 keys are unique."""
    result: list[Target] = []
    first_path: dict[str, YamlPath] = {}
    owners = ["EVENT", *particles]
    for owner, entries, owner_path in _pairs(doc, (section,), data):
        if owner == "EVENT":
            groups = [(None, entries, owner_path)]
        elif owner in particles:
            product_names = [p.name for p in particles[owner]]
            groups = []
            for level, targets, level_path in _pairs(doc, owner_path, entries):
                if level != "PARTICLE" and level not in product_names:
                    raise doc.error(
                        level_path,
                        f"PARTICLE or a product of {owner} ({', '.join(product_names)})",
                        got_text=describe(level) + did_you_mean(level, ["PARTICLE", *product_names]),
                    )
                groups.append((level, targets, level_path))
        else:
            raise doc.error(
                owner_path,
                f"EVENT or a particle named in EVENT ({', '.join(particles)})",
                got_text=describe(owner) + did_you_mean(owner, owners),
            )
        for level, targets, path in groups:
            particle = None if owner == "EVENT" else owner
            for target, target_path in _target_list(doc, path, targets, particle, level, regression):
                if target.key in first_path:
                    raise doc.error(
                        target_path,
                        f"each target once (already declared at {doc.where(first_path[target.key])})",
                        target.name,
                    )
                first_path[target.key] = target_path
                result.append(target)
    return result


def _pairs(doc: YamlDocument, path: YamlPath, data: Any) -> list[tuple[Any, Any, YamlPath]]:
    """``(key, value, path)`` from a mapping or from a list of single-key mappings."""
    if data is None:
        return []
    if isinstance(data, dict):
        return [(key, value, (*path, key)) for key, value in data.items()]
    expected = "a mapping, or a list of single-key mappings such as '- PARTICLE: [mass]'"
    if not isinstance(data, list):
        raise doc.error(path, expected, data)
    pairs: list[tuple[Any, Any, YamlPath]] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or len(item) != 1:
            raise doc.error((*path, i), expected, item)
        ((key, value),) = item.items()
        for earlier_key, _, earlier_path in pairs:
            if earlier_key == key:
                raise doc.error(
                    (*path, i, key), f"each name once (already at {doc.where(earlier_path)})", key
                )
        pairs.append((key, value, (*path, i, key)))
    return pairs


def _target_list(
    doc: YamlDocument,
    path: YamlPath,
    entries: Any,
    particle: str | None,
    product: str | None,
    regression: bool,
) -> list[tuple[Target, YamlPath]]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise doc.error(path, "a list of target names", entries)
    result: list[tuple[Target, YamlPath]] = []
    for i, entry in enumerate(entries):
        where = (*path, i)
        if isinstance(entry, str):
            name, kind = entry, "gaussian"
        elif regression and isinstance(entry, list) and len(entry) in (1, 2):
            # SPANet builds RegressionInfo(*entry): a bare [name] keeps the Gaussian default
            name, kind = entry if len(entry) == 2 else (entry[0], "gaussian")
            if kind not in REGRESSION_TYPES:
                raise doc.error(
                    where,
                    f"a regression type ({', '.join(REGRESSION_TYPES)})",
                    got_text=describe(kind) + did_you_mean(kind, REGRESSION_TYPES),
                )
        else:
            raise doc.error(where, "a target name or [name, type]" if regression else "a target name", entry)
        check_name(doc, where, name, "a target name")
        target: Target = (
            RegressionTarget(name, kind, particle, product)
            if regression
            else ClassificationTarget(name, particle, product)
        )
        result.append((target, where))
    return result


# ------------------------------------------------------------------ symmetry agreement
def check_symmetric_declarations(doc: YamlDocument, spec: EventSpec) -> None:
    """Exchangeable products / particles must share input association and targets."""
    for particle in spec.particles:
        for positions in particle.symmetry.orbits():
            for position in positions[1:]:
                _compare_products(
                    doc, ("PERMUTATIONS", particle.name), spec, particle, positions[0], particle, position
                )
    path: YamlPath = ("PERMUTATIONS", "EVENT")
    for orbit in spec.event_symmetry.orbits():
        first = spec.particles[orbit[0]]
        for index in orbit[1:]:
            other = spec.particles[index]
            if other.num_products != first.num_products:
                raise doc.error(
                    path,
                    f"EVENT-symmetric particles with equal numbers of products "
                    f"({first.name} has {first.num_products})",
                    got_text=f"{other.name} with {other.num_products}",
                )
            _compare_level(
                doc, path, spec, (first.name, "PARTICLE"), (other.name, "PARTICLE"), "EVENT-symmetric"
            )
            for position in range(first.num_products):
                _compare_products(doc, path, spec, first, position, other, position)


def _compare_products(
    doc: YamlDocument,
    path: YamlPath,
    spec: EventSpec,
    particle_a: ParticleSpec,
    a: int,
    particle_b: ParticleSpec,
    b: int,
) -> None:
    product_a, product_b = particle_a.products[a], particle_b.products[b]
    label_a, label_b = f"{particle_a.name}.{product_a.name}", f"{particle_b.name}.{product_b.name}"
    if product_a.input != product_b.input:
        raise doc.error(
            path,
            f"symmetric products {label_a} and {label_b} to come from the same input",
            got_text=f"{label_a} from {_input_text(product_a)}, {label_b} from {_input_text(product_b)}",
        )
    _compare_level(
        doc, path, spec, (particle_a.name, product_a.name), (particle_b.name, product_b.name), "symmetric"
    )


def _compare_level(
    doc: YamlDocument,
    path: YamlPath,
    spec: EventSpec,
    a: tuple[str, str],
    b: tuple[str, str],
    adjective: str,
) -> None:
    """Targets hung on (particle, PARTICLE-or-product) ``a`` and ``b`` must match by name and type."""
    for section, targets in (("regression", spec.regressions), ("classification", spec.classifications)):
        found_a, found_b = _signature(targets, a), _signature(targets, b)
        if found_a != found_b:
            label_a, label_b = format_path(a), format_path(b)
            raise doc.error(
                path,
                f"{adjective} {label_a} and {label_b} to declare the same {section} targets",
                got_text=f"{label_a}: {_listing(found_a)}; {label_b}: {_listing(found_b)}",
            )


def _signature(targets: tuple[Target, ...], owner: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((t.name, getattr(t, "type", "class")) for t in targets if (t.particle, t.product) == owner)
    )


def _listing(signature: tuple[tuple[str, str], ...]) -> str:
    if not signature:
        return "none"
    return ", ".join(name if kind == "class" else f"{name} ({kind})" for name, kind in signature)


def _input_text(product: Product) -> str:
    return "any input" if product.input is None else product.input
