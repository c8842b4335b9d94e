"""Relativistic kinematics as pure, vectorised functions over numpy arrays.

Conventions (the usual collider ones): natural units, energies and momenta in GeV, the beam
along z, ``phi`` in [-pi, pi), pseudorapidity ``eta = asinh(pz / pt)``, rapidity
``y = 0.5 ln((E + pz) / (E - pz))``, metric (+, -, -, -). A four-momentum is a
:class:`FourVector` of four arrays of one shape (broadcasting applies everywhere), so a whole
batch of events times objects is one call.

Every function is pure: random numbers (uniform ``u``, angles) come in as arguments, so the
generator owns all randomness and each function can be tested on hand-computed values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.floating]


@dataclass(frozen=True)
class FourVector:
    """A four-momentum (E, px, py, pz) in GeV; each component an array (or scalar) of one shape."""

    e: Array
    px: Array
    py: Array
    pz: Array

    def __add__(self, other: FourVector) -> FourVector:
        return FourVector(self.e + other.e, self.px + other.px, self.py + other.py, self.pz + other.pz)

    @property
    def pt(self) -> Array:
        return np.hypot(self.px, self.py)

    @property
    def p(self) -> Array:
        return np.sqrt(self.px**2 + self.py**2 + self.pz**2)

    @property
    def phi(self) -> Array:
        return np.arctan2(self.py, self.px)

    @property
    def eta(self) -> Array:
        return pseudorapidity(self.px, self.py, self.pz)

    @property
    def rapidity(self) -> Array:
        return rapidity(self.e, self.pz)

    @property
    def mass(self) -> Array:
        return mass_of(self.e, self.px, self.py, self.pz)

    @classmethod
    def from_pt_eta_phi_mass(
        cls, pt: ArrayLike, eta: ArrayLike, phi: ArrayLike, mass: ArrayLike
    ) -> FourVector:
        return cls(*to_cartesian(pt, eta, phi, mass))

    @classmethod
    def from_pt_y_phi_mass(cls, pt: ArrayLike, y: ArrayLike, phi: ArrayLike, mass: ArrayLike) -> FourVector:
        """Build from rapidity ``y`` rather than pseudorapidity: E = mT cosh y, pz = mT sinh y."""
        pt, y, phi, mass = (np.asarray(a, dtype=np.float64) for a in (pt, y, phi, mass))
        mt = np.sqrt(pt**2 + mass**2)
        return cls(mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y))


def to_cartesian(
    pt: ArrayLike, eta: ArrayLike, phi: ArrayLike, mass: ArrayLike
) -> tuple[Array, Array, Array, Array]:
    """(pt, eta, phi, m) -> (E, px, py, pz): pz = pt sinh(eta), E = sqrt(p^2 + m^2)."""
    pt, eta, phi, mass = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, mass))
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return e, px, py, pz


def to_cylindrical(
    e: ArrayLike, px: ArrayLike, py: ArrayLike, pz: ArrayLike
) -> tuple[Array, Array, Array, Array]:
    """(E, px, py, pz) -> (pt, eta, phi, m); see :func:`pseudorapidity` and :func:`mass_of`."""
    e, px, py, pz = (np.asarray(a, dtype=np.float64) for a in (e, px, py, pz))
    return np.hypot(px, py), pseudorapidity(px, py, pz), np.arctan2(py, px), mass_of(e, px, py, pz)


def pseudorapidity(px: ArrayLike, py: ArrayLike, pz: ArrayLike) -> Array:
    """eta = asinh(pz / pt); along the beam (pt = 0) it is +-inf by the sign of pz, and 0 at rest."""
    px, py, pz = (np.asarray(a, dtype=np.float64) for a in (px, py, pz))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = eta_from_pt_pz(pt, pz)
    along_beam = np.where(pz > 0, np.inf, np.where(pz < 0, -np.inf, 0.0))
    return np.where(pt > 0, eta, along_beam)


def eta_from_pt_pz(pt: Array, pz: Array) -> Array:
    """asinh(pz / pt) for pt > 0 as sign(pz) ln((|pz| + p) / pt): same value, several times faster.

    (numpy's arcsinh costs ~30 ns per element, a log and a sqrt ~3 ns; the generator computes
    millions of these.)
    """
    a = np.abs(pz)
    return np.copysign(np.log((a + np.sqrt(a * a + pt * pt)) / pt), pz)


def rapidity(e: ArrayLike, pz: ArrayLike) -> Array:
    """y = 0.5 ln((E + pz) / (E - pz)) (infinite for a massless particle along the beam)."""
    e, pz = np.asarray(e, dtype=np.float64), np.asarray(pz, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 0.5 * np.log((e + pz) / (e - pz))


def mass_of(e: ArrayLike, px: ArrayLike, py: ArrayLike, pz: ArrayLike) -> Array:
    """m = sqrt(E^2 - p^2), with a tiny negative m^2 (rounding) clipped to 0."""
    e, px, py, pz = (np.asarray(a, dtype=np.float64) for a in (e, px, py, pz))
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


def invariant_mass(*vectors: FourVector) -> Array:
    """Invariant mass of the sum of the given four-momenta."""
    if not vectors:
        raise ValueError("invariant_mass needs at least one four-vector")
    total = vectors[0]
    for v in vectors[1:]:
        total = total + v
    return total.mass


def delta_phi(phi1: ArrayLike, phi2: ArrayLike) -> Array:
    """phi1 - phi2 wrapped into [-pi, pi)."""
    d = np.asarray(phi1, dtype=np.float64) - np.asarray(phi2, dtype=np.float64)
    return d - 2 * np.pi * np.floor((d + np.pi) / (2 * np.pi))  # floor is much faster than float %


def delta_r(eta1: ArrayLike, phi1: ArrayLike, eta2: ArrayLike, phi2: ArrayLike) -> Array:
    """Angular distance sqrt(d_eta^2 + d_phi^2), the jet-clustering and matching metric."""
    deta = np.asarray(eta1, dtype=np.float64) - np.asarray(eta2, dtype=np.float64)
    return np.hypot(deta, delta_phi(phi1, phi2))


def boost(v: FourVector, bx: ArrayLike, by: ArrayLike, bz: ArrayLike) -> FourVector:
    """Lorentz-boost ``v`` by velocity (bx, by, bz) (|beta| < 1): a particle at rest gains beta.

    p' = p + [(gamma - 1)(b.p)/b^2 + gamma E] b,  E' = gamma (E + b.p).
    A zero velocity returns ``v`` unchanged.
    """
    bx, by, bz = (np.asarray(a, dtype=np.float64) for a in (bx, by, bz))
    b2 = bx**2 + by**2 + bz**2
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = bx * v.px + by * v.py + bz * v.pz
    with np.errstate(divide="ignore", invalid="ignore"):
        coefficient = np.where(b2 > 0, (gamma - 1.0) * bp / b2, 0.0) + gamma * v.e
    return FourVector(
        gamma * (v.e + bp), v.px + coefficient * bx, v.py + coefficient * by, v.pz + coefficient * bz
    )


def two_body_momentum(mass: ArrayLike, m1: ArrayLike, m2: ArrayLike) -> Array:
    """Daughter momentum in the rest frame of a parent of ``mass`` decaying to m1 + m2.

    p* = sqrt(lambda(M^2, m1^2, m2^2)) / (2M), lambda the Kallen function; 0 below threshold.
    Computed in float32 when the array arguments are float32 (see :func:`_common_float`).
    """
    mass, m1, m2 = _common_float(mass, m1, m2)
    lam = (mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2)
    return np.sqrt(np.maximum(lam, 0.0)) / (2.0 * mass)


def two_body_decay(
    parent: FourVector, m1: ArrayLike, m2: ArrayLike, cos_theta: ArrayLike, phi: ArrayLike
) -> tuple[FourVector, FourVector]:
    """Decay ``parent`` into daughters of masses m1, m2.

    In the parent rest frame daughter 1 flies along (theta, phi) measured from the lab axes
    (an isotropic decay takes cos_theta ~ U(-1, 1), phi ~ U(-pi, pi)); both daughters are
    then boosted by the parent velocity p / E. The parent mass is taken from its four-vector.
    """
    m1, m2 = np.asarray(m1, dtype=np.float64), np.asarray(m2, dtype=np.float64)
    cos_theta, phi = np.asarray(cos_theta, dtype=np.float64), np.asarray(phi, dtype=np.float64)
    mass = parent.mass
    p = two_body_momentum(mass, m1, m2)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta**2, 0.0))
    dx, dy, dz = sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta
    d1 = FourVector(np.sqrt(p**2 + m1**2), p * dx, p * dy, p * dz)
    d2 = FourVector(np.sqrt(p**2 + m2**2), -p * dx, -p * dy, -p * dz)
    bx, by, bz = parent.px / parent.e, parent.py / parent.e, parent.pz / parent.e
    return boost(d1, bx, by, bz), boost(d2, bx, by, bz)


def breit_wigner_mass(u: ArrayLike, mass: float, width: float, low: ArrayLike, high: ArrayLike) -> Array:
    """Sample a relativistic Breit-Wigner mass by inverting its cumulative distribution.

    The density in s = m^2 is 1 / ((s - M^2)^2 + M^2 Gamma^2) (fixed width), truncated to
    low <= m <= high. With theta = atan((s - M^2) / (M Gamma)) uniform between its values at
    the bounds, s = M^2 + M Gamma tan(theta). ``u`` in [0, 1] maps to the lower/upper bound at
    0/1; a zero width returns ``mass`` (clipped into the bounds). Computed in float32 when the
    array arguments are float32 (see :func:`_common_float`).
    """
    u, low, high = _common_float(u, low, high)
    if width <= 0:
        return np.clip(np.full_like(u, mass), low, high)
    mg = mass * width
    lo = np.arctan((low**2 - mass**2) / mg)
    hi = np.arctan((high**2 - mass**2) / mg)
    s = mass**2 + mg * np.tan(lo + u * (hi - lo))
    return np.clip(np.sqrt(np.maximum(s, 0.0)), low, high)


def azimuth(
    px: NDArray[np.float32], py: NDArray[np.float32], pt: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """atan2(py, px) for float32 arrays (``pt`` = hypot(px, py) if the caller has it), in [-pi, pi].

    Within 5.4e-7 rad (about 2 float32 steps at pi) of the exact angle, and in [-pi, pi], for
    components whose squares are normal float32 numbers (1e-18 to 1e18: any momentum in GeV).
    Other dtypes are refused (the sign is copied bit-wise as a 32-bit integer). numpy's float32 arctan2
    costs ~28 ns per element (it has no vectorised kernel); this costs ~4, and the generator
    takes the azimuth of millions of partons. It uses no branch (no ``where``, whose cost on
    random masks is ~4 ns per element): the angle theta = |phi| in [0, pi] is
    pi/2 - 2 atan(u) with the half-angle tangent u = px / (pt + |py|) in [-1, 1], where
    atan(u) = u P(u^2), P of degree 7 fitted for float32 (max error 1.4e-7); the sign of py is
    then copied onto theta bit-wise.
    atan2(0, 0) is pi/2 here, not 0: the generator never asks for the azimuth of pT = 0.
    """
    f32 = np.float32
    if px.dtype != f32 or py.dtype != f32 or (pt is not None and pt.dtype != f32):
        raise TypeError(f"azimuth takes float32 arrays, got {px.dtype} and {py.dtype}")
    if pt is None:
        pt = np.sqrt(px * px + py * py)
    u = np.abs(py)
    u += pt
    np.maximum(u, f32(1e-30), out=u)
    np.divide(px, u, out=u)
    z = u * u
    angle = np.full_like(u, _ATAN_POLYNOMIAL[-1])
    for coefficient in _ATAN_POLYNOMIAL[-2::-1]:
        angle *= z
        angle += coefficient
    angle *= u
    angle *= f32(-2.0)
    angle += f32(np.pi / 2)  # theta, >= 0 (up to rounding at theta = 0)
    np.clip(angle, f32(0.0), f32(np.pi), out=angle)  # |u| may pass 1 by rounding of pt
    bits = angle.view(np.int32)
    bits |= py.view(np.int32) & np.int32(-(2**31))  # theta with the sign of py
    return angle


# atan(a) / a as a polynomial in a^2 on [0, 1], lowest order first (fitted for float32 use).
_ATAN_POLYNOMIAL = tuple(
    np.float32(c)
    for c in (
        0.999999335574695,
        -0.3332986077008686,
        0.19946565492446972,
        -0.13908628775055154,
        0.09642195397501316,
        -0.05591230110569842,
        0.021862940547034346,
        -0.004054562542907453,
    )
)


def _common_float(*values: ArrayLike) -> tuple[Array, ...]:
    """``values`` as arrays of one float type: float32 when every numpy array among them is
    float32 (Python numbers adapt), else float64. The generator works in float32, where the
    vectorised transcendental functions are several times faster; everything else keeps float64.
    """
    typed = [v.dtype for v in values if isinstance(v, (np.ndarray, np.generic))]
    dtype = np.float32 if typed and all(t == np.float32 for t in typed) else np.float64
    return tuple(np.asarray(v, dtype=dtype) for v in values)
