"""The analytic neutrino baseline, shown beside the network's neutrino regressions.

For W -> l nu, :func:`spanet_lite.physics.neutrino.solve_neutrino` gives the neutrino from the
lepton, the missing transverse momentum (MET) and the W-mass constraint (smaller-|pz| root;
pT scaled onto the physical region when the discriminant is negative). To compute it on the
events of a test file we need, from the *inputs* alone:

* **neutrino targets**: regression targets named ``neutrino_<q>`` or ``nu_<q>`` with ``q`` in
  px, py, pz, pt, eta (any level: EVENT, particle or product);
* **the lepton**: in a SEQUENTIAL input with an ``etag`` and/or ``utag`` feature, the real
  object with the largest pt among those with a tag > 0.5 (SPANet's semi-leptonic ttH
  convention); failing that, the leading-pt object of a SEQUENTIAL input whose name contains
  ``lepton``. It needs ``pt``, ``eta`` and ``phi`` (or ``sin_phi`` and ``cos_phi``); ``mass``
  is used when present, else 0;
* **MET**: a GLOBAL input with ``met`` (or ``pt``) and ``phi`` (or ``sin_phi``/``cos_phi``),
  or with ``px``/``py`` (also ``met_x``/``met_y``, ``mpx``/``mpy``).

``pt``, ``eta``, ``phi``, ``sin_phi``/``cos_phi`` and ``mass`` are found by the names the pair
features accept (:func:`~spanet_lite.dataset.pair_features.kinematic_roles`: ``m``, ``pt_gev``,
``azimuth``, ...), and sin/cos features are put back on the unit circle
(:func:`~spanet_lite.dataset.pair_features.phi_parts`), as for the pair features.

Momentum units: the baseline comes out in the units of the lepton pt and MET (GeV in
practice). Files often store neutrino targets in other units (SPANet's ttH example uses
units of 100 GeV), so the baseline's momenta are divided by the power of ten closest to
median(|baseline|) / median(|target|) over the px, py (else pz, pt) targets. Only the unit is
taken from the targets; nothing is fitted. If anything above is missing the baseline is
skipped and the reason is reported instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from spanet_lite.assignment.jets import LEPTON_TAGS, lepton_tagged
from spanet_lite.config.event_spec import EventSpec, InputSpec
from spanet_lite.dataset.pair_features import has_direction, kinematic_roles, phi_parts

NEUTRINO_TARGET = re.compile(r"^(?:neutrino|nu)_(px|py|pz|pt|eta)$", re.IGNORECASE)
MET_PAIRS = (("px", "py"), ("met_x", "met_y"), ("mpx", "mpy"), ("metx", "mety"))


@dataclass
class BaselinePlan:
    """Where the baseline's ingredients are found; ``reason`` says why it cannot run."""

    targets: dict[str, str] = field(default_factory=dict)  # regression key -> quantity
    lepton_input: str | None = None
    lepton_by_tag: bool = False
    met_input: str | None = None
    reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if self.reason:
            return f"analytic neutrino baseline skipped: {self.reason}"
        how = "etag/utag" if self.lepton_by_tag else "leading object"
        return (
            f"analytic W-mass neutrino baseline: lepton from {self.lepton_input} ({how}), "
            f"MET from {self.met_input}"
        )


def _names(source: InputSpec) -> list[str]:
    return [f.name.lower() for f in source.features]


def _has_momentum(source: InputSpec) -> bool:
    """pt, eta and an azimuth, by the pair features' names."""
    roles = kinematic_roles(source)
    return {"pt", "eta"} <= roles.keys() and has_direction(roles)


def plan_baseline(spec: EventSpec) -> BaselinePlan:
    """Decide from the event file whether (and how) the baseline can be computed."""
    plan = BaselinePlan()
    for target in spec.regressions:
        match = NEUTRINO_TARGET.match(target.name)
        if match:
            plan.targets[target.key] = match.group(1).lower()
    if not plan.targets:
        plan.reason = "no neutrino regression targets (neutrino_px/py/pz/pt/eta)"
        return plan
    for source in spec.sequential:
        if any(tag in _names(source) for tag in LEPTON_TAGS) and _has_momentum(source):
            plan.lepton_input, plan.lepton_by_tag = source.name, True
            break
    if plan.lepton_input is None:
        for source in spec.sequential:
            if "lepton" in source.name.lower() and _has_momentum(source):
                plan.lepton_input = source.name
                break
    if plan.lepton_input is None:
        plan.reason = "no lepton in the inputs (etag/utag features or a lepton input with pt, eta, phi)"
        return plan
    for source in spec.global_inputs:
        names, roles = _names(source), kinematic_roles(source)
        polar = ("met" in names or "pt" in roles) and has_direction(roles)
        cartesian = any(x in names and y in names for x, y in MET_PAIRS)
        if polar or cartesian:
            plan.met_input = source.name
            break
    if plan.met_input is None:
        plan.reason = "no MET in the GLOBAL inputs (met and phi, or px and py)"
    return plan


def compute_baseline(
    plan: BaselinePlan,
    spec: EventSpec,
    features: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Baseline values (file momentum units, before unit matching) for one block of raw inputs.

    Events without a lepton get NaN.
    """
    from spanet_lite.physics.neutrino import solve_neutrino

    assert plan.usable and plan.lepton_input and plan.met_input
    lepton_spec = spec.input(plan.lepton_input)
    raw = np.asarray(features[plan.lepton_input], dtype=np.float64)
    objects = {role: raw[..., i] for role, i in kinematic_roles(lepton_spec).items()}
    mask = masks[plan.lepton_input].astype(bool)
    pt = np.where(mask, objects["pt"], -np.inf)
    if plan.lepton_by_tag:
        named = {n: raw[..., i] for i, n in enumerate(_names(lepton_spec))}
        pt = np.where(lepton_tagged(named, mask.shape), pt, -np.inf)
    choice = pt.argmax(axis=1)
    found = np.isfinite(pt.max(axis=1)) if pt.shape[1] else np.zeros(len(pt), dtype=bool)
    rows = np.arange(len(choice))
    lepton = {role: v[rows, choice] for role, v in objects.items()}
    direction = phi_parts(lepton)
    assert direction is not None  # plan_baseline chose an input with an azimuth
    cos_l, sin_l = direction
    lpt = lepton["pt"]
    lx, ly, lz = lpt * cos_l, lpt * sin_l, lpt * np.sinh(lepton["eta"])
    mass = lepton.get("mass", np.zeros_like(lpt))
    le = np.sqrt(lx**2 + ly**2 + lz**2 + mass**2)

    met_spec = spec.input(plan.met_input)
    raw_met = np.asarray(features[plan.met_input], dtype=np.float64)
    met = {n: raw_met[:, i] for i, n in enumerate(_names(met_spec))}
    pair = next(((x, y) for x, y in MET_PAIRS if x in met and y in met), None)
    if pair is not None:
        mx, my = met[pair[0]], met[pair[1]]
    else:
        polar = {role: raw_met[:, i] for role, i in kinematic_roles(met_spec).items()}
        direction = phi_parts(polar)
        assert direction is not None  # plan_baseline chose an input with an azimuth
        cos_m, sin_m = direction
        magnitude = met["met"] if "met" in met else polar["pt"]
        mx, my = magnitude * cos_m, magnitude * sin_m
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        solution = solve_neutrino(lx, ly, lz, le, mx, my)
        quantities = {
            "px": solution.px,
            "py": solution.py,
            "pz": solution.pz,
            "pt": np.hypot(solution.px, solution.py),
            "eta": solution.eta,
        }
    return {key: np.where(found, quantities[q], np.nan) for key, q in plan.targets.items()}


def unit_scale(
    plan: BaselinePlan, baseline: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]
) -> float:
    """The power of ten that converts the baseline's momenta into the targets' units (see module doc)."""
    for wanted in (("px", "py"), ("pz",), ("pt",)):
        keys = [k for k, q in plan.targets.items() if q in wanted]
        if not keys:
            continue
        ours = np.concatenate([np.abs(baseline[k]) for k in keys])
        theirs = np.concatenate([np.abs(truth[k]) for k in keys])
        keep = np.isfinite(ours) & np.isfinite(theirs) & (theirs > 0)
        if keep.sum() < 10:
            continue
        ratio = float(np.median(ours[keep]) / np.median(theirs[keep]))
        if ratio > 0 and math.isfinite(ratio):
            return float(10.0 ** round(math.log10(ratio)))
    return 1.0


def matched_baseline(
    plan: BaselinePlan, baseline: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], float]:
    """Baseline in the targets' units, and the divisor used for momenta."""
    scale = unit_scale(plan, baseline, truth)
    return {k: (v if plan.targets[k] == "eta" else v / scale) for k, v in baseline.items()}, scale
