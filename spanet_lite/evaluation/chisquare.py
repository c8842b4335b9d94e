"""The chi-square assignment baseline: the assignment whose invariant masses best fit known masses.

For every event, every allowed assignment of objects to the products of the particles that
have mass constraints (:mod:`spanet_lite.config.masses`) gets

    chi2 = sum over constraints of ((m(products) - mass) / width)^2

and the one with the smallest chi2 wins. This is the classic W/top-mass fit a physicist
compares a network with; it uses the objects' four-momenta only (no b-tag).

* **Search**: exhaustive over ordered choices of distinct objects, one per constrained
  product, counting each assignment once up to the symmetries of the event file (particle
  ``q1 <-> q2`` and event ``t1 <-> t2`` permutations) that leave the chi-square unchanged;
  symmetric assignments have the same chi2, so nothing is lost. Scoring uses the same
  symmetry-aware metrics as the network.
* **Large multiplicities**: only the ``K`` leading-pt candidates enter, ``K`` the largest
  number for which an event has at most ``max_combinations`` assignments (default 20,000: 10
  jets for two hadronic tops, 11 for ttH's hadronic top and Higgs). Events with fewer candidates
  than constrained products get no assignment (-1).
* **Particles without a constraint** (e.g. the leptonic top's b, whose mass needs the
  neutrino) get, product by product, the leading-pt candidate left over.
* **Candidates**: real objects of every SEQUENTIAL input that has ``pt``, ``eta`` and ``phi``
  (or ``sin_phi``/``cos_phi``; ``mass`` when present, else 0), except objects flagged as
  leptons (``etag`` or ``utag`` > 0.5), which no jet-level product can be (those of a lepton
  input that products are tied to stay candidates for them). A product tied to
  an input (``b: Jets``) takes only that input's objects. Objects of an input that holds leptons
  by its name (``Leptons``, ``muons``: :func:`~spanet_lite.assignment.jets.is_lepton_input`, the
  rule the jet counts follow) are taken only by products tied to that input (``l: Leptons``),
  where the event file ties some (otherwise nothing says which untied product is the lepton):
  without this rule the hadronic top of a Jets + Leptons file took the lepton as a quark in 45%
  of the events of a semi-leptonic ttbar sample, leaving the leptonic top's ``l`` without one.
  The ``K`` leading candidates are ranked among the objects the constrained products may take.
  The features are found by the names
  the pair features accept (:func:`~spanet_lite.dataset.pair_features.kinematic_roles`: ``m``
  is the mass, ``pt_gev`` the pt, ...), so both read an event file the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from spanet_lite.assignment.jets import is_lepton_input, lepton_tagged
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.masses import MassConstraint
from spanet_lite.dataset.pair_features import has_direction, kinematic_roles, phi_parts

MAX_COMBINATIONS = 20_000
_CHUNK = 2_000_000  # events x assignments evaluated at once, ~32 bytes each


@dataclass(frozen=True)
class Kinematics:
    """Four-momenta of all objects in the combined index space, and which may be products."""

    momenta: np.ndarray  # (B, N, 4): px, py, pz, E
    candidates: np.ndarray  # (B, N) bool
    input_of: np.ndarray  # (N,) index of the SEQUENTIAL input each slot belongs to


def missing_kinematics(spec: EventSpec) -> str | None:
    """Why no input can give four-momenta (None when at least one can)."""
    for source in spec.sequential:
        roles = kinematic_roles(source)
        if {"pt", "eta"} <= roles.keys() and has_direction(roles):
            return None
    return "no SEQUENTIAL input with pt, eta and phi (or sin_phi and cos_phi)"


def object_kinematics(
    spec: EventSpec, features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> Kinematics:
    """Four-momenta and candidate flags from raw (un-normalised) features, see module doc."""
    momenta, candidates, input_of = [], [], []
    reserved = _reserved_lepton_inputs(spec)
    for number, source in enumerate(spec.sequential):
        raw = np.asarray(features[source.name], dtype=np.float64)
        values = {role: raw[..., i] for role, i in kinematic_roles(source).items()}
        mask = np.asarray(masks[source.name]).astype(bool)
        phi = phi_parts(values)
        if "pt" in values and "eta" in values and phi is not None:
            pt, eta = values["pt"], values["eta"]
            mass = np.maximum(values.get("mass", np.zeros_like(pt)), 0.0)
            p = np.stack([pt * phi[0], pt * phi[1], pt * np.sinh(np.clip(eta, -20, 20))], axis=-1)
            energy = np.sqrt((p**2).sum(-1) + mass**2)
            vectors = np.concatenate([p, energy[..., None]], axis=-1)
            named = {f.name.lower(): raw[..., i] for i, f in enumerate(source.features)}
            # A lepton tag keeps an object from the jet-level products; the objects of a lepton
            # input that products are tied to go to those products only (_allowed), tagged or not:
            # a Leptons input with etag/utag features left its tied ``l`` without any candidate.
            usable = mask if source.name in reserved else mask & ~lepton_tagged(named, mask.shape)
        else:
            vectors = np.zeros((*mask.shape, 4))
            usable = np.zeros_like(mask)
        momenta.append(np.where(usable[..., None], vectors, 0.0))
        candidates.append(usable)
        input_of.append(np.full(mask.shape[1], number))
    return Kinematics(
        np.concatenate(momenta, axis=1), np.concatenate(candidates, axis=1), np.concatenate(input_of)
    )


# --------------------------------------------------------------------------- the search
@dataclass(frozen=True)
class _Plan:
    slots: tuple[tuple[int, int], ...]  # (particle, product position) of every constrained product
    terms: tuple[tuple[tuple[int, ...], float, float], ...]  # slot positions, mass, width
    symmetries: tuple[tuple[int, ...], ...]  # slot permutations that leave chi2 unchanged
    free: tuple[tuple[int, int], ...]  # products of unconstrained particles


def _plan(spec: EventSpec, constraints: Sequence[MassConstraint]) -> _Plan:
    names = spec.particle_names
    constrained = sorted({names.index(c.particle) for c in constraints})
    slots = tuple((i, k) for i in constrained for k in range(spec.particles[i].num_products))
    position = {slot: n for n, slot in enumerate(slots)}
    terms = []
    for c in constraints:
        i = names.index(c.particle)
        products = spec.particles[i].product_names
        terms.append((tuple(sorted(position[i, products.index(p)] for p in c.products)), c.mass, c.width))
    wanted = sorted(terms)
    symmetries = set()
    for event in spec.event_symmetry.elements:
        if sorted(event[i] for i in constrained) != constrained:
            continue
        per_particle = [spec.particles[event[i]].symmetry.elements for i in constrained]
        for choice in itertools.product(*per_particle):
            images = dict(zip(constrained, choice))
            # New slot (i, k) takes the object of old slot (event[i], perm[k]).
            sigma = tuple(position[event[i], images[i][k]] for i, k in slots)
            mapped = sorted((tuple(sorted(sigma[s] for s in slots_)), m, w) for slots_, m, w in terms)
            if mapped == wanted:
                symmetries.add(sigma)
    free = tuple(
        (i, k)
        for i in range(len(names))
        if i not in constrained
        for k in range(spec.particles[i].num_products)
    )
    return _Plan(slots, tuple(terms), tuple(sorted(symmetries)), free)


@lru_cache(maxsize=64)
def _assignments(k: int, m: int, symmetries: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(C, m) ordered choices of m of k ranked candidates, one per symmetry orbit."""
    combos = np.array(list(itertools.permutations(range(k), m)), dtype=np.int64).reshape(-1, m)
    keep = np.ones(len(combos), dtype=bool)
    weights = k ** np.arange(m - 1, -1, -1, dtype=np.int64)  # lexicographic order as one integer
    code = combos @ weights
    for sigma in symmetries:
        keep &= code <= combos[:, list(sigma)] @ weights
    return combos[keep]


@lru_cache(maxsize=64)
def _term_tuples(
    k: int, m: int, symmetries: tuple[tuple[int, ...], ...], positions: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(T, p) the distinct tuples of ranks that the assignments of :func:`_assignments` hold at
    ``positions``, and (C,) the row of each assignment's tuple among them.

    Only the tuples some assignment uses: every ordered ``p``-tuple of ``k`` ranks (``k**p``)
    is many times more when the symmetries keep one assignment per orbit of a term's own
    products (four interchangeable products of one constraint in 27 candidates: 531,441 tuples
    for 17,550 assignments), which made the lookup slower than summing per assignment.
    """
    combos = _assignments(k, m, symmetries)
    codes = combos[:, list(positions)] @ (k ** np.arange(len(positions) - 1, -1, -1, dtype=np.int64))
    rows, lookup = np.unique(codes, return_inverse=True)
    tuples = np.stack(np.unravel_index(rows, (k,) * len(positions)), axis=1).astype(np.int64)
    return tuples, lookup.reshape(-1)


def _largest_k(m: int, symmetries: tuple[tuple[int, ...], ...], limit: int) -> int:
    """The most ranked candidates whose assignments (one per symmetry orbit) number at most ``limit``."""
    k = m
    while k < 64:
        count = 1
        for j in range(m):
            count *= k + 1 - j  # assignments of k + 1 candidates
        if count // max(len(symmetries), 1) > limit:
            return k
        k += 1
    return k


def chi_square_assign(
    spec: EventSpec,
    constraints: Sequence[MassConstraint],
    kinematics: Kinematics,
    *,
    max_combinations: int = MAX_COMBINATIONS,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Best assignment per event: ({particle: (B, products) object indices, -1 where none}, chi2 (B,)).

    Pure function of the four-momenta and the constraints; see the module doc for the search.
    """
    plan = _plan(spec, constraints)
    momenta, candidates = kinematics.momenta, kinematics.candidates
    batch, width = candidates.shape
    pt = np.where(candidates, np.hypot(momenta[..., 0], momenta[..., 1]), -np.inf)
    allowed = _allowed(spec, kinematics.input_of)
    rules = [allowed[spec.particles[i].products[j].input] for i, j in plan.slots]  # None: any slot
    searchable = np.zeros(width, dtype=bool)  # slots some constrained product may take
    for rule in rules:
        searchable |= True if rule is None else rule
    ranked_pt = np.where(searchable[None, :], pt, -np.inf)
    order = np.argsort(-ranked_pt, axis=1, kind="stable")  # candidates first, by falling pt
    count = (candidates & searchable[None, :]).sum(axis=1)
    result = {p.name: np.full((batch, p.num_products), -1, dtype=np.int64) for p in spec.particles}
    best_chi2 = np.full(batch, np.nan)
    m = len(plan.slots)
    taken = np.zeros((batch, width), dtype=bool)
    if m:
        k_max = _largest_k(m, plan.symmetries, max_combinations)
        ranks = np.minimum(count, k_max)
        for k in np.unique(ranks[ranks >= m]):
            _search(spec, plan, rules, int(k), np.flatnonzero(ranks == k), order, momenta,
                    result, taken, best_chi2)
    done = np.isfinite(best_chi2) if m else np.ones(batch, dtype=bool)
    for i, j in plan.free:
        rule = allowed[spec.particles[i].products[j].input]
        free = candidates & ~taken & done[:, None]
        if rule is not None:
            free &= rule[None, :]
        score = np.where(free, pt, -np.inf)
        pick = score.argmax(axis=1)
        ok = np.isfinite(score[np.arange(batch), pick])
        result[spec.particles[i].name][ok, j] = pick[ok]
        taken[np.flatnonzero(ok), pick[ok]] = True
    return result, best_chi2


def _search(
    spec: EventSpec,
    plan: _Plan,
    rules: list[np.ndarray | None],
    k: int,
    events: np.ndarray,
    order: np.ndarray,
    momenta: np.ndarray,
    result: dict[str, np.ndarray],
    taken: np.ndarray,
    best_chi2: np.ndarray,
) -> None:
    """Fill ``result``, ``taken`` and ``best_chi2`` for ``events``, which search their ``k``
    leading candidates; ``rules``: per constrained product, the slots it may take (None: any).

    A constraint's term depends on the objects of its own products only, so it is computed once
    per tuple of ranks the assignments use (:func:`_term_tuples`: 330 for a top of 10 jets) and each
    assignment adds up its terms by lookup, instead of summing four-momenta for every one of
    the 18,900 assignments of two tops in 10 jets; the terms and their sum are the same numbers
    in the same order, so the minimum is the one the direct sum finds.
    """
    combos = _assignments(k, len(plan.slots), plan.symmetries)  # (C, m) ranks
    lookups = [(*_term_tuples(k, len(plan.slots), plan.symmetries, positions), mass, width)
               for positions, mass, width in plan.terms]
    restricted = [(n, rule) for n, rule in enumerate(rules) if rule is not None]
    step = max(1, _CHUNK // len(combos))  # a term has at most one tuple per assignment
    for start in range(0, len(events), step):
        rows = events[start:start + step]
        ranked = order[rows, :k]  # (b, k) object of each rank
        vectors = momenta[rows[:, None], ranked]  # (b, k, 4)
        chi2 = np.zeros((len(rows), len(combos)))
        for tuples, lookup, mass, width in lookups:
            total = vectors[:, tuples[:, 0]]  # (b, T, 4), summed product by product
            for column in range(1, tuples.shape[1]):
                total = total + vectors[:, tuples[:, column]]
            m2 = total[..., 3] ** 2 - (total[..., :3] ** 2).sum(-1)
            chi2 += (((np.sqrt(np.maximum(m2, 0.0)) - mass) / width) ** 2)[:, lookup]
        for n, rule in restricted:
            chi2 = np.where(rule[ranked][:, combos[:, n]], chi2, np.inf)
        best = chi2.argmin(axis=1)
        value = chi2[np.arange(len(rows)), best]
        chosen = np.take_along_axis(ranked, combos[best], axis=1)  # (b, m) objects
        ok = np.isfinite(value)
        for n, (i, j) in enumerate(plan.slots):
            result[spec.particles[i].name][rows[ok], j] = chosen[ok, n]
            taken[rows[ok], chosen[ok, n]] = True
        best_chi2[rows] = np.where(ok, value, np.nan)


def _allowed(spec: EventSpec, input_of: np.ndarray) -> dict[str | None, np.ndarray | None]:
    """Input name (None: a product tied to no input) -> (N,) slots its products may take, None for
    every slot. Where the event file ties a product to a lepton input (``l: Leptons``), the untied
    products are the jet-level ones: they never take that input's objects (see the module doc).
    With nothing tied to it (``lt: [b, l]``) the baseline cannot tell which untied product is the
    lepton, so every untied product may take any object, as before the rule."""
    rules: dict[str | None, np.ndarray | None] = {None: None}
    reserved = _reserved_lepton_inputs(spec)
    leptons = np.zeros(input_of.shape, dtype=bool)
    for number, source in enumerate(spec.sequential):
        rules[source.name] = input_of == number
        if source.name in reserved:
            leptons |= input_of == number
    if leptons.any():
        rules[None] = ~leptons
    return rules


def _reserved_lepton_inputs(spec: EventSpec) -> set[str]:
    """The lepton inputs (by name, :func:`~spanet_lite.assignment.jets.is_lepton_input`) that some
    product is tied to: their objects are taken by those products only (see the module doc)."""
    tied = {q.input for p in spec.particles for q in p.products}
    return {s.name for s in spec.sequential if is_lepton_input(s) and s.name in tied}
