"""Pairwise interaction features of the Particle Transformer (ParT), computed per batch on the fly.

ParT is arXiv:2202.03772. The features come from a batch's raw features; they live in the dataset
layer because their normalisation statistics are measured with the training split's, and the
model reads them.

For two objects ``a``, ``b`` with transverse momentum ``pt``, rapidity ``y``, azimuth ``phi``
and four-momentum ``p``::

    Delta R = sqrt((y_a - y_b)^2 + (phi_a - phi_b)^2)          (phi difference wrapped to [-pi, pi])
    kT      = min(pt_a, pt_b) Delta R
    z       = min(pt_a, pt_b) / (pt_a + pt_b)
    m^2     = (p_a + p_b)^2

and the network sees their logarithms ``ln Delta R, ln kT, ln z, ln m^2`` (each floored at
``EPSILON`` before the log, as ParT does, so collinear or massless pairs stay finite). All four
are symmetric in ``a <-> b``. They are computed from raw (file-unit) features on whatever
device the batch is on, so files need not store ``(N, W, W)`` arrays; units only shift the
logs, which the training split's statistics absorb.

:func:`kinematic_roles` finds the features by their common names (case-insensitive,
:data:`COMMON_NAMES`): ``pt``; ``eta``; ``phi`` or both ``sin_phi`` and ``cos_phi``; ``mass``
(or ``m``). It is the one place these names are recognised: the chi-square and neutrino
baselines of ``spanet-test`` read the kinematics through it too, and :func:`phi_parts` is their
one way to turn the azimuth into a direction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from spanet_lite.config.event_spec import EventSpec, InputSpec
from spanet_lite.errors import InputError

PAIR_FEATURE_NAMES = ("ln_delta_r", "ln_kt", "ln_z", "ln_m2")
EPSILON = 1e-8
MAX_ETA = 30.0
"""|eta| beyond this counts as this in the pair features: past any collider's reach (the LHC beam's
rapidity is about 9.6), where only a placeholder or an eta computed from pt ~ 0 lands; it keeps
every intermediate finite in float32 (sinh(eta)^2 overflows from |eta| ~ 44)."""
MAX_MOMENTUM = 1e18
"""pt and mass beyond this (in file units, GeV or MeV alike far past any beam) count as this in the
pair features, so that pt^2 and mT_a mT_b stay finite in float32 and no inf meets a 0."""
FLOAT32_MAX = float(torch.finfo(torch.float32).max)
COMMON_NAMES: dict[str, tuple[str, ...]] = {
    "pt": ("pt", "pt_gev", "transverse_momentum"),
    "eta": ("eta", "pseudorapidity"),
    "phi": ("phi", "azimuth"),
    "sin_phi": ("sin_phi", "sinphi", "phi_sin"),
    "cos_phi": ("cos_phi", "cosphi", "phi_cos"),
    "mass": ("mass", "m", "mass_gev"),
}


class Columns(NamedTuple):
    """Feature columns of one input's kinematics: ``phi``, or ``sin_phi`` and ``cos_phi``."""

    pt: int
    eta: int
    mass: int
    phi: int | None = None
    sin_phi: int | None = None
    cos_phi: int | None = None


def _find(source: InputSpec, role: str) -> int | None:
    lowered = [f.name.lower() for f in source.features]
    for name in COMMON_NAMES[role]:
        if name in lowered:
            return lowered.index(name)
    return None


def kinematic_roles(source: InputSpec) -> dict[str, int]:
    """Role (a key of :data:`COMMON_NAMES`) -> feature column, for the roles one input names.

    The one recogniser of kinematic feature names, so that a feature called ``m`` is the mass
    for the pair features and for the chi-square baseline alike."""
    found = {role: _find(source, role) for role in COMMON_NAMES}
    return {role: column for role, column in found.items() if column is not None}


def has_direction(roles: Collection[str]) -> bool:
    """An azimuth: ``phi``, or both ``sin_phi`` and ``cos_phi``."""
    return "phi" in roles or {"sin_phi", "cos_phi"} <= set(roles)


def phi_parts(values: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(cos phi, sin phi) from role -> raw values (numpy): from ``phi`` when there is one, else
    ``sin_phi`` and ``cos_phi`` scaled onto the unit circle, since rounded or smeared features
    may lie off it (:func:`pair_features` does the same in torch); None without an azimuth."""
    if "phi" in values:
        phi = np.asarray(values["phi"])
        return np.cos(phi), np.sin(phi)
    if "sin_phi" in values and "cos_phi" in values:
        sin_phi, cos_phi = np.asarray(values["sin_phi"]), np.asarray(values["cos_phi"])
        norm = np.hypot(sin_phi, cos_phi)
        norm = np.where(norm > 0, norm, 1.0)
        return cos_phi / norm, sin_phi / norm
    return None


def kinematic_columns(spec: EventSpec) -> dict[str, Columns]:
    """Object input -> the columns holding its kinematics; a one-line InputError naming the input
    and the missing features when one lacks them (every object input needs them, so that every
    object pair, across inputs too, has its features)."""
    result: dict[str, Columns] = {}
    for source in spec.sequential:
        found = kinematic_roles(source)
        missing = [role for role in ("pt", "eta", "mass") if role not in found]
        if not has_direction(found):
            missing.append("phi (or sin_phi and cos_phi)")
        if missing:
            raise InputError(
                spec.source,
                f"INPUTS.{source.kind}.{source.name}",
                "pt, eta, phi (or sin_phi and cos_phi) and mass features for pair_features: physics",
                f"no {', no '.join(missing)} among {', '.join(f.name for f in source.features)}",
            )
        pt, eta, mass = found["pt"], found["eta"], found["mass"]
        if "phi" in found:
            result[source.name] = Columns(pt, eta, mass, phi=found["phi"])
        else:
            result[source.name] = Columns(pt, eta, mass, sin_phi=found["sin_phi"], cos_phi=found["cos_phi"])
    return result


def physics_columns(spec: EventSpec, option: str) -> dict[str, Columns] | None:
    """The kinematic columns when the option ``pair_features`` turns the physics pair features
    on, else None: ``physics`` (missing features are an error), ``auto`` (on when every object
    input has them), ``none``. The one place that decides, for the statistics and the network."""
    if option == "physics":
        return kinematic_columns(spec)
    if option == "auto":
        try:
            return kinematic_columns(spec)
        except InputError:
            return None
    return None


def auto_note(spec: EventSpec, option: str) -> str | None:
    """The line ``spanet-train`` prints when ``auto`` turns the physics pair features on: a
    SPANet options file trains a network with an input SPANet's has not, so the user is told."""
    columns = physics_columns(spec, option) if option == "auto" else None
    if not columns:
        return None
    return (
        f"pair_features: auto adds ln Delta R, ln kT, ln z and ln m^2 of every object pair of "
        f"{', '.join(columns)} to the attention (SPANet's network has no pair features; "
        f"pair_features: none builds it)"
    )


def kinematics(features: Tensor, columns: Columns) -> Tensor:
    """(..., F) raw features of one input -> (..., 5) ``pt, eta, sin_phi, cos_phi, mass``."""
    if columns.phi is not None:
        phi = features[..., columns.phi]
        sin_phi, cos_phi = torch.sin(phi), torch.cos(phi)
    else:
        assert columns.sin_phi is not None and columns.cos_phi is not None
        sin_phi, cos_phi = features[..., columns.sin_phi], features[..., columns.cos_phi]
    pt, eta, mass = features[..., columns.pt], features[..., columns.eta], features[..., columns.mass]
    return torch.stack([pt, eta, sin_phi, cos_phi, mass], -1)


def pair_features(kin: Tensor, mask: Tensor) -> Tensor:
    """(B, N, 5) kinematics from :func:`kinematics`, (B, N) bool mask -> (B, N, N, 4)
    ``ln Delta R, ln kT, ln z, ln m^2``; 0 on the diagonal and wherever either object is padding."""
    kin = kin.float()
    pt = kin[..., 0].clamp(min=0.0, max=MAX_MOMENTUM)
    eta = kin[..., 1].clamp(min=-MAX_ETA, max=MAX_ETA)
    sin_phi, cos_phi, mass = kin[..., 2], kin[..., 3], kin[..., 4].clamp(min=0.0, max=MAX_MOMENTUM)
    norm = torch.sqrt(sin_phi * sin_phi + cos_phi * cos_phi).clamp(min=EPSILON)
    sin_phi, cos_phi = sin_phi / norm, cos_phi / norm  # normalised sin/cos features may be off the circle
    # sinh and asinh spelled with exp and log: ONNX opset 17 exports neither aten op.
    transverse_mass = torch.sqrt(mass * mass + pt * pt)
    ratio = pt / transverse_mass.clamp(min=EPSILON) * 0.5 * (torch.exp(eta) - torch.exp(-eta))  # pz / mT
    rapidity = torch.sign(ratio) * torch.log(ratio.abs() + torch.sqrt(ratio * ratio + 1.0))

    def pair(x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, :, None], x[:, None, :]

    (sa, sb), (ca, cb) = pair(sin_phi), pair(cos_phi)
    delta_phi = torch.atan2(sa * cb - ca * sb, ca * cb + sa * sb)
    ya, yb = pair(rapidity)
    delta_y = ya - yb
    delta_r = torch.sqrt(delta_y**2 + delta_phi**2)
    pta, ptb = pair(pt)
    pt_min = torch.minimum(pta, ptb)
    kt = pt_min * delta_r
    z = pt_min / (pta + ptb).clamp(min=EPSILON)
    # m^2 = m_a^2 + m_b^2 + 2 (mT_a mT_b cosh(dy) - pt_a pt_b cos(dphi)), written as a sum of
    # non-negative terms. (E_a + E_b)^2 - |p_a + p_b|^2 cancels ~cosh^2(y) of the digits in float32
    # (forward pairs came out wrong by tens of percent) and, once E^2 overflowed (|eta| ~ 40 with
    # pt ~ 1 TeV), gave inf - inf = NaN, which made the training statistics and so every output
    # NaN. mT_a mT_b - pt_a pt_b = d_a mT_b + pt_a d_b with d = mT - pt = m^2 / (mT + pt), so
    # without its cancellation too.
    excess = mass * mass / (transverse_mass + pt).clamp(min=EPSILON)  # mT - pt
    (ma, mb), (mta, mtb), (da, db) = pair(mass), pair(transverse_mass), pair(excess)
    mt_excess = da * mtb + pta * db
    m2 = (ma * ma + mb * mb + 2.0 * mt_excess
          + 4.0 * mta * mtb * _sinh(0.5 * delta_y) ** 2
          + 4.0 * pta * ptb * torch.sin(0.5 * delta_phi) ** 2)
    features = torch.stack([delta_r, kt, z, m2], -1).clamp(min=EPSILON, max=FLOAT32_MAX).log()
    n = mask.shape[1]
    index = torch.arange(n, device=mask.device)
    # The formulas are symmetric in (a, b), but a CPU's vector and scalar code paths of exp, log
    # and atan2 can round the two orders of a pair differently, depending on where each element
    # falls in the loop. Taking (b, a) from (a, b) makes the result exactly symmetric on every
    # machine, which the half-pair MLP of training relies on.
    upper = (index[:, None] < index[None, :])[..., None]
    features = torch.where(upper, features, features.transpose(1, 2))
    distinct = index[:, None] != index[None, :]  # not torch.eye: ONNX Runtime lacks a bool EyeLike
    real = mask[:, :, None] & mask[:, None, :] & distinct
    return torch.where(
        real[..., None], features, torch.zeros((), dtype=features.dtype, device=features.device)
    )


def _sinh(x: Tensor) -> Tensor:
    """sinh with exp (ONNX opset 17 has no Sinh export) and its series near 0, where
    exp(x) - exp(-x) loses the digits that small rapidity differences of collinear pairs need."""
    series = x * (1.0 + x * x / 6.0)
    return torch.where(x.abs() < 1e-2, series, 0.5 * (torch.exp(x) - torch.exp(-x)))


def combined_pair_features(
    features: dict[str, Tensor], masks: dict[str, Tensor], columns: dict[str, Columns]
) -> Tensor:
    """Pair features over the combined object space (every object input, event-file order of
    ``columns``): (B, N, N, 4), pairs across inputs included."""
    kin = torch.cat([kinematics(features[name], cols) for name, cols in columns.items()], dim=1)
    mask = torch.cat([masks[name].bool() for name in columns], dim=1)
    return pair_features(kin, mask)
