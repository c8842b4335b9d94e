"""Analytic neutrino reconstruction in W -> l nu from the W-mass constraint.

The neutrino's transverse momentum is taken from the missing transverse momentum (MET); its
longitudinal momentum pz follows from requiring the lepton + neutrino mass to equal m_W. With
the lepton four-momentum (E, p) of mass m_l, a massless neutrino and

    A   = (m_W^2 - m_l^2) / 2
    mu  = A + p_lT . p_nuT                     (dot product in the transverse plane)
    a   = E^2 - p_lz^2 = p_lT^2 + m_l^2         (the lepton's transverse mass squared)
    D   = mu^2 - a |p_nuT|^2                    (the discriminant)

the constraint m_W^2 = m_l^2 + 2 (E E_nu - p . p_nu) squares to the quadratic
``a pz^2 - 2 mu p_lz pz + (E^2 |p_nuT|^2 - mu^2) = 0`` with roots

    pz = (mu p_lz +- E sqrt(D)) / a.

Unlike the seed notebook we keep the lepton mass exactly (it enters A and a), and evaluate the
roots in the cancellation-free form q / a and c / q. A massless lepton along the beam (a = 0)
makes the equation linear: both roots are then its single solution.

Choice rule (``rule=``): ``"smaller"`` |pz| (the default; right in roughly two thirds of
ttbar events), ``"larger"``, ``"plus"`` or ``"minus"`` (the sign in front of sqrt(D)).

Negative discriminant (MET resolution pushes the event outside the allowed region, 10-25 %
of semi-leptonic ttbar events): we use the standard fix of *scaling the neutrino pT* by the
largest factor k < 1 that makes D = 0, which has a closed form. D(k) = (A + k B)^2 - a k^2 P^2
with B = p_lT . MET and P = |MET| vanishes on the physical branch A + k B = k sqrt(a) P at

    k = A / (sqrt(a) P - B),        pz = k sqrt(a) P p_lz / a,   (px, py) = k MET.

D < 0 implies sqrt(a) P > B, so 0 < k < 1 always. (The alternative, moving MET by the least
distance onto the D = 0 ellipse, needs a quartic; scaling keeps the MET direction, which is
the better-measured quantity, and costs nothing.) No real physical root ever exists with
mu < 0: one shows D >= 0 implies mu > 0 whenever m_W > m_l.

All functions take numpy arrays (or torch tensors) of one broadcastable shape, in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spanet_lite.physics.kinematics import to_cartesian

W_MASS = 80.4  # GeV, the constraint used by default (PDG 80.37, rounded as in the seed)
RULES = ("smaller", "larger", "plus", "minus")
DISCRIMINANT_TOLERANCE = 1e-12  # relative to mu^2: below this D counts as exactly zero


@dataclass(frozen=True)
class NeutrinoSolution:
    """The reconstructed neutrino (GeV). px, py differ from MET only where ``is_complex``.

    ``pz_plus``/``pz_minus`` are the two roots (equal, the single solution, where
    ``is_complex``); ``pz`` is the one picked by the rule, :attr:`pz_other` the one it left;
    ``eta`` is the neutrino's pseudorapidity from (px, py, pz).
    """

    px: Any
    py: Any
    pz: Any
    eta: Any
    is_complex: Any
    pz_plus: Any
    pz_minus: Any

    @property
    def pz_other(self) -> Any:
        """The root the rule did not pick (``pz`` itself where the two are equal)."""
        return _ops(self.pz).where(self.pz == self.pz_plus, self.pz_minus, self.pz_plus)


class _Ops:
    """The handful of array functions we need, for numpy or torch inputs."""

    def __init__(self, torch_module: Any | None) -> None:
        self.torch = torch_module

    def sqrt(self, x: Any) -> Any:
        return self.torch.sqrt(x) if self.torch else np.sqrt(x)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.torch.where(condition, a, b) if self.torch else np.where(condition, a, b)

    def abs(self, x: Any) -> Any:
        return self.torch.abs(x) if self.torch else np.abs(x)

    def asinh(self, x: Any) -> Any:
        return self.torch.asinh(x) if self.torch else np.arcsinh(x)

    def asarray(self, x: Any, like: Any) -> Any:
        if self.torch:
            return self.torch.as_tensor(x, dtype=like.dtype if hasattr(like, "dtype") else None)
        return np.asarray(x, dtype=np.float64)


def _ops(*arrays: Any) -> _Ops:
    for array in arrays:
        if type(array).__module__.startswith("torch"):
            import torch

            return _Ops(torch)
    return _Ops(None)


def solve_neutrino(
    lepton_px: Any,
    lepton_py: Any,
    lepton_pz: Any,
    lepton_e: Any,
    met_x: Any,
    met_y: Any,
    w_mass: float = W_MASS,
    rule: str = "smaller",
) -> NeutrinoSolution:
    """Full neutrino four-momentum from the lepton, MET and the W-mass constraint (see module doc)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    xp = _ops(lepton_px, lepton_py, lepton_pz, lepton_e, met_x, met_y)
    tensors = [lepton_px, lepton_py, lepton_pz, lepton_e, met_x, met_y]
    like = next((t for t in tensors if hasattr(t, "dtype") and xp.torch is not None), None)
    lx, ly, lz, le, mx, my = (xp.asarray(t, like) for t in tensors)
    if xp.torch is None:
        lx, ly, lz, le, mx, my = np.broadcast_arrays(lx, ly, lz, le, mx, my)

    lepton_m2 = le * le - lx * lx - ly * ly - lz * lz
    lepton_m2 = xp.where(lepton_m2 > 0, lepton_m2, 0.0 * lepton_m2)
    a = le * le - lz * lz  # = pT^2 + m^2 of the lepton
    big_a = 0.5 * (w_mass * w_mass - lepton_m2)
    b = lx * mx + ly * my
    p2 = mx * mx + my * my
    mu = big_a + b
    discriminant = mu * mu - a * p2
    # D = 0 happens for real (neutrino pz in the lepton's transverse plane); rounding in the
    # difference of two squares then gives |D| ~ 1e-16 mu^2, which must not count as complex.
    is_complex = discriminant < -DISCRIMINANT_TOLERANCE * mu * mu

    # Real roots, cancellation-free: q = mu lz + sign(lz) E sqrt(D); roots q / a and c / q.
    root_d = xp.sqrt(xp.where(discriminant > 0, discriminant, 0.0 * discriminant))
    sign = xp.where(lz < 0, -1.0 + 0.0 * lz, 1.0 + 0.0 * lz)
    q = mu * lz + sign * le * root_d
    c = le * le * p2 - mu * mu
    # q ~ 0 (lepton pz ~ 0 and D ~ 0): a double root at ~0, and c / q would be 0 / 0 (or overflow).
    degenerate = xp.abs(q) <= DISCRIMINANT_TOLERANCE * xp.abs(mu) * le
    safe_q = xp.where(degenerate, 1.0 + 0.0 * q, q)
    safe_a = xp.where(a > 0, a, 1.0 + 0.0 * a)
    far = q / safe_a  # the root with |pz| >= the other one
    near = xp.where(degenerate, 0.0 * q, c / safe_q)
    far = xp.where(a > 0, far, near)  # massless lepton along the beam: linear equation
    plus = xp.where(sign > 0, far, near)
    minus = xp.where(sign > 0, near, far)

    # Negative discriminant: scale the neutrino pT by k so that D = 0 (closed form).
    sqrt_a = xp.sqrt(a)
    denominator = sqrt_a * xp.sqrt(p2) - b
    k = big_a / xp.where(is_complex, denominator, 1.0 + 0.0 * denominator)  # 0 < k < 1 where used
    fixed_pz = k * sqrt_a * xp.sqrt(p2) * lz / safe_a
    plus = xp.where(is_complex, fixed_pz, plus)
    minus = xp.where(is_complex, fixed_pz, minus)
    px = xp.where(is_complex, k * mx, mx)
    py = xp.where(is_complex, k * my, my)

    pz = choose_root(plus, minus, rule)
    pt = xp.sqrt(px * px + py * py)
    safe_pt = xp.where(pt > 0, pt, 1.0 + 0.0 * pt)
    along_beam = xp.where(pz > 0, np.inf + 0.0 * pz, xp.where(pz < 0, -np.inf + 0.0 * pz, 0.0 * pz))
    eta = xp.where(pt > 0, xp.asinh(pz / safe_pt), along_beam)
    return NeutrinoSolution(px, py, pz, eta, is_complex, plus, minus)


def choose_root(pz_plus: Any, pz_minus: Any, rule: str = "smaller") -> Any:
    """Pick one root per event: ``smaller``/``larger`` |pz| (ties go to plus), or ``plus``/``minus``."""
    xp = _ops(pz_plus, pz_minus)
    if rule == "smaller":
        return xp.where(xp.abs(pz_plus) <= xp.abs(pz_minus), pz_plus, pz_minus)
    if rule == "larger":
        return xp.where(xp.abs(pz_plus) >= xp.abs(pz_minus), pz_plus, pz_minus)
    if rule == "plus":
        return pz_plus
    if rule == "minus":
        return pz_minus
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


#: Features of the ``Met`` GLOBAL input that carry the analytic solution (bundled semi-leptonic files).
ANALYTIC_FEATURES = ("nu_pz", "nu_pz_other")


def analytic_features(
    lepton_pt: Any, lepton_eta: Any, lepton_phi: Any, lepton_mass: Any, met_x: Any, met_y: Any
) -> dict[str, np.ndarray]:
    """The two W-mass roots as network inputs, from reconstructed quantities only (GeV).

    ``nu_pz`` is the smaller-|pz| root (what the analytic baseline reports), ``nu_pz_other``
    the other one (equal to it where the discriminant was negative). Given both, a network can
    learn when the other root is the right one (e.g. from m(l nu b)) and so beat the formula
    instead of having to rediscover the quadratic from 10,000 events.
    """
    e, px, py, pz = to_cartesian(lepton_pt, lepton_eta, lepton_phi, lepton_mass)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        solution = solve_neutrino(px, py, pz, e, met_x, met_y, rule="smaller")
    lepton = np.asarray(lepton_pt) > 0
    return {
        "nu_pz": np.where(lepton, solution.pz, 0.0),
        "nu_pz_other": np.where(lepton, solution.pz_other, 0.0),
    }
