"""The generated processes: parton-level recipe, target slots, stored layout and default selection.

Each process turns a block of n candidate events into HDF5-ready arrays (keys are dataset
paths, docs/formats.md section 2) of the events that pass the selection, which the detector model
applies while it simulates. Target slot r of a process is column r of its hard partons (see
``detector.reconstruct``).

Spectra (Gamma shape, scale in GeV) and rapidity widths are documented in ``production``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from spanet_lite.hdf5_paths import classification_path, target_path
from spanet_lite.physics.generator import event_files
from spanet_lite.physics.generator.config import B_MASS, PhysicsConfig, Selection
from spanet_lite.physics.generator.detector import Reconstructed, reconstruct
from spanet_lite.physics.generator.production import (
    BOTTOM,
    FloatType,
    Lepton,
    PartonSet,
    Real,
    balanced_transverse,
    decay_to_bb,
    decay_top,
    decay_w_hadronic,
    decay_w_leptonic,
    higgs_masses,
    rapidities,
    recoil,
    resonance,
    sample_isr,
    splitting_decay,
    splitting_masses,
    top_masses,
)
from spanet_lite.physics.kinematics import FourVector, invariant_mass
from spanet_lite.physics.neutrino import analytic_features

Arrays = dict[str, NDArray]

# Gamma(shape, scale [GeV]) for |pT| and Gaussian widths for rapidities (system, per particle).
TTBAR_TOP_PT = (2.4, 44.0)  # mode ~62, mean ~106 GeV
TTX_TOP_PT = (2.6, 50.0)  # tops recoiling against a third heavy system are harder
TTH_HIGGS_PT = (2.6, 52.0)  # mean ~135 GeV
HH_HIGGS_PT = (3.0, 50.0)  # mean ~150 GeV
TTBAR_Y = (0.85, 0.75)
TTX_Y = (0.7, 0.75)
HH_Y = (0.8, 0.75)
# Processes with a leptonic W are simulated in float64, the others in float32 (production doc).
LEPTONIC_PRECISION = np.float64
# The tt + b bbar background's gluon splitting is set by the ttbb_* parameters of PhysicsConfig.


@dataclass(frozen=True)
class Process:
    """One generatable process and the layout of its files."""

    name: str
    description: str
    event_file_name: str
    event_file_text: str
    sequential_input: str
    max_objects: int
    selection: Selection
    targets: tuple[tuple[str, str], ...]  # (particle, product) per target slot
    # simulate(rng, n, config, max_objects, signal_fraction, selection): arrays of the selected
    # events among n candidates, and the detector-level record (``Reconstructed.events``: their
    # indices among the candidates).
    simulate: Callable[
        [np.random.Generator, int, PhysicsConfig, int, float, Selection], tuple[Arrays, Reconstructed]
    ]
    has_lepton: bool = False
    has_background: bool = False
    """Whether it mixes signal with a background (``signal_fraction`` sets the signal's share)."""

    @property
    def particles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p, _ in self.targets))


def _two_tops(
    rng: np.random.Generator, n: int, config: PhysicsConfig, isr: PartonSet, dtype: FloatType
) -> tuple[FourVector, Real, FourVector, Real]:
    """Two tops recoiling against the ISR: (top 1, its mass, top 2, its mass)."""
    (x1, y1), (x2, y2) = balanced_transverse(rng, [TTBAR_TOP_PT, TTBAR_TOP_PT], recoil(isr), dtype)
    y = rapidities(rng, n, 2, *TTBAR_Y, dtype)
    m1, m2 = top_masses(rng, n, config, dtype), top_masses(rng, n, config, dtype)
    return resonance(x1, y1, y[:, 0], m1), m1, resonance(x2, y2, y[:, 1], m2), m2


def _hadronic_top(rng: np.random.Generator, top: FourVector, mass: Real, config: PhysicsConfig):
    b, w, w_mass = decay_top(rng, top, mass, config)
    q1, q2, f1, f2 = decay_w_hadronic(rng, w, w_mass)
    return b, q1, q2, f1, f2


def _source_arrays(reco: Reconstructed, process: Process) -> Arrays:
    """Jets-only SEQUENTIAL input ``Source`` (mass, pt, eta, phi, btag) and the targets."""
    out: Arrays = {
        "INPUTS/Source/MASK": reco.jet_mask,
        "INPUTS/Source/mass": reco.jet_mass,
        "INPUTS/Source/pt": reco.jet_pt,
        "INPUTS/Source/eta": reco.jet_eta,
        "INPUTS/Source/phi": reco.jet_phi,
        "INPUTS/Source/btag": reco.jet_btag.astype(np.float32),
    }
    for r, (particle, product) in enumerate(process.targets):
        out[target_path(particle, product)] = reco.targets[:, r]
    return out


def _momenta_arrays(reco: Reconstructed, lepton: Lepton, process: Process) -> Arrays:
    """Lepton (slot 0) + jets SEQUENTIAL input ``Momenta``, the ``Met`` global input, targets, neutrino."""
    n = reco.jet_pt.shape[0]
    rows = reco.events
    is_electron = lepton.is_electron[rows]

    def with_lepton(lepton_value: NDArray, jet_values: NDArray) -> NDArray:
        return np.concatenate([np.asarray(lepton_value, dtype=np.float64).reshape(n, 1), jet_values], axis=1)

    mask = reco.jet_mask
    btag = reco.jet_btag & mask
    ok = reco.lepton_accepted
    assert ok is not None and reco.lepton_pt is not None and reco.met_x is not None and reco.met_y is not None
    met = np.hypot(reco.met_x, reco.met_y)
    met_phi = np.arctan2(reco.met_y, reco.met_x)
    out: Arrays = {
        "INPUTS/Momenta/MASK": np.concatenate([ok[:, None], mask], axis=1),
        "INPUTS/Momenta/mass": with_lepton(reco.lepton_mass, reco.jet_mass),
        "INPUTS/Momenta/pt": with_lepton(reco.lepton_pt, reco.jet_pt),
        "INPUTS/Momenta/eta": with_lepton(reco.lepton_eta, reco.jet_eta),
        "INPUTS/Momenta/sin_phi": with_lepton(
            np.sin(reco.lepton_phi), np.where(mask, np.sin(reco.jet_phi), 0.0)
        ),
        "INPUTS/Momenta/cos_phi": with_lepton(
            np.cos(reco.lepton_phi), np.where(mask, np.cos(reco.jet_phi), 0.0)
        ),
        "INPUTS/Momenta/qtag": with_lepton(np.zeros(n), (mask & ~btag).astype(np.float64)),
        "INPUTS/Momenta/btag": with_lepton(np.zeros(n), btag.astype(np.float64)),
        "INPUTS/Momenta/etag": with_lepton(is_electron, np.zeros_like(reco.jet_pt)),
        "INPUTS/Momenta/utag": with_lepton(~is_electron, np.zeros_like(reco.jet_pt)),
        "INPUTS/Met/met": met,
        "INPUTS/Met/sin_phi": np.sin(met_phi),
        "INPUTS/Met/cos_phi": np.cos(met_phi),
        "INPUTS/Met/sumet": reco.sum_et,
        **{f"INPUTS/Met/{k}": v for k, v in analytic_features(
            reco.lepton_pt, reco.lepton_eta, reco.lepton_phi, reco.lepton_mass, reco.met_x, reco.met_y
        ).items()},
    }
    for r, (particle, product) in enumerate(process.targets):
        t = reco.targets[:, r]
        out[target_path(particle, product)] = np.where(t >= 0, t + 1, -1)  # jets start at slot 1
    nu = lepton.neutrino
    px, py, pz = nu.px[rows], nu.py[rows], nu.pz[rows]
    out["REGRESSIONS/EVENT/neutrino_px"] = px
    out["REGRESSIONS/EVENT/neutrino_py"] = py
    out["REGRESSIONS/EVENT/neutrino_pz"] = pz
    out["REGRESSIONS/EVENT/neutrino_eta"] = FourVector(nu.e[rows], px, py, pz).eta
    return out


def simulate_ttbar_allhad(
    rng: np.random.Generator,
    n: int,
    config: PhysicsConfig,
    max_objects: int,
    signal_fraction: float,
    selection: Selection,
) -> tuple[Arrays, Reconstructed]:
    """All-hadronic t tbar: each top -> b W, W -> q q', six quarks recoiling against the ISR.

    Target slot r is hard-parton role r (t1: q1 q2 b, t2: q1 q2 b), the order of the event file.
    No lepton, so float32 throughout (see ``production``: several times faster, and the stored
    precision). ``signal_fraction`` is unused: every process has ``Process.simulate``'s signature.
    """
    isr = sample_isr(rng, n, config)
    t1, m1, t2, m2 = _two_tops(rng, n, config, isr, np.float32)
    b1, q11, q12, f11, f12 = _hadronic_top(rng, t1, m1, config)
    b2, q21, q22, f21, f22 = _hadronic_top(rng, t2, m2, config)
    hard = PartonSet.stack(
        [(q11, f11, 0), (q12, f12, 1), (b1, BOTTOM, 2), (q21, f21, 3), (q22, f22, 4), (b2, BOTTOM, 5)]
    )
    reco = reconstruct(rng, hard, isr, 6, max_objects, config, selection)
    return _source_arrays(reco, TTBAR_ALLHAD), reco


def simulate_ttbar_semilep(
    rng: np.random.Generator,
    n: int,
    config: PhysicsConfig,
    max_objects: int,
    signal_fraction: float,
    selection: Selection,
) -> tuple[Arrays, Reconstructed]:
    """Semi-leptonic t tbar: one W -> e/mu nu (the "leptonic top" lt), the other W -> q q' (ht).

    The lepton takes slot 0 of ``Momenta``, so the jets get ``max_objects - 1`` slots and
    targets count from 1. Computed in float64: the analytic neutrino solution is ill-conditioned
    near a zero discriminant, and the stored truth must meet the W-mass constraint (``production``).
    ``signal_fraction`` is unused: every process has ``Process.simulate``'s signature.
    """
    isr = sample_isr(rng, n, config)
    t_lep, m_lep, t_had, m_had = _two_tops(rng, n, config, isr, LEPTONIC_PRECISION)
    b_lep, w_lep, w_mass = decay_top(rng, t_lep, m_lep, config)
    lepton = decay_w_leptonic(rng, w_lep, w_mass)
    b_had, q1, q2, f1, f2 = _hadronic_top(rng, t_had, m_had, config)
    hard = PartonSet.stack([(b_lep, BOTTOM, 0), (b_had, BOTTOM, 1), (q1, f1, 2), (q2, f2, 3)])
    reco = reconstruct(rng, hard, isr, 4, max_objects - 1, config, selection, lepton)
    return _momenta_arrays(reco, lepton, TTBAR_SEMILEP), reco


Transverse = tuple[Real, Real, Real]


def ttx_system(
    rng: np.random.Generator,
    n: int,
    config: PhysicsConfig,
    isr: PartonSet,
    signal: NDArray[np.bool_],
    dtype: FloatType,
) -> tuple[Transverse, Transverse, FourVector, Real]:
    """tt + X production: each top's (px, py, rapidity), X and X's mass.

    X is the Higgs where ``signal``, else the tt + b bbar background's g* -> b bbar splitting
    (``ttbb_*`` in PhysicsConfig): the one place that draws it, also for the Pythia comparison
    in ``physics/pythia/gluon_splitting.py``. The tops' masses are left to the caller.
    """
    x_shape = np.where(signal, TTH_HIGGS_PT[0], config.ttbb_pt_shape)
    x_scale = np.where(signal, TTH_HIGGS_PT[1], config.ttbb_pt_scale)
    (x1, y1), (x2, y2), (xx, yx) = balanced_transverse(
        rng, [TTX_TOP_PT, TTX_TOP_PT, (x_shape, x_scale)], recoil(isr), dtype
    )
    y = rapidities(rng, n, 3, *TTX_Y, dtype)
    from_isr = ~signal & (rng.random(n) < config.ttbb_isr_fraction)
    y_x = np.where(from_isr, config.ttbb_isr_eta_sigma * rng.standard_normal(n), y[:, 2])
    x_mass = np.where(signal, higgs_masses(rng, n, config, dtype), splitting_masses(rng, n, config, dtype))
    return (x1, y1, y[:, 0]), (x2, y2, y[:, 1]), resonance(xx, yx, y_x, x_mass), x_mass


def simulate_tth_semilep(
    rng: np.random.Generator,
    n: int,
    config: PhysicsConfig,
    max_objects: int,
    signal_fraction: float,
    selection: Selection,
) -> tuple[Arrays, Reconstructed]:
    """ttH (H -> b bbar) with probability ``signal_fraction``, else tt + b bbar (same final state).

    The background's extra b pair is a g* -> b bbar splitting (``ttbb_*`` in PhysicsConfig),
    drawn by :func:`ttx_system` in the same pass as the Higgs, so both share one kinematic
    recipe and differ only where the physics does. Background events keep the tops' targets but
    not the Higgs's; ``CLASSIFICATIONS/EVENT/signal`` says which is which. Layout and precision
    as for ``ttbar_semilep`` (lepton in slot 0, float64).
    """
    signal = rng.random(n) < signal_fraction
    isr = sample_isr(rng, n, config)
    dtype = LEPTONIC_PRECISION
    (x1, y1, rap1), (x2, y2, rap2), x, x_mass = ttx_system(rng, n, config, isr, signal, dtype)
    m_lep, m_had = top_masses(rng, n, config, dtype), top_masses(rng, n, config, dtype)
    t_lep = resonance(x1, y1, rap1, m_lep)
    t_had = resonance(x2, y2, rap2, m_had)
    b_lep, w_lep, w_mass = decay_top(rng, t_lep, m_lep, config)
    lepton = decay_w_leptonic(rng, w_lep, w_mass)
    b_had, q1, q2, f1, f2 = _hadronic_top(rng, t_had, m_had, config)
    h1, h2 = decay_to_bb(rng, x, x_mass)
    g1, g2 = splitting_decay(rng, x, x_mass, B_MASS, B_MASS)
    xb1, xb2 = (
        FourVector(*(np.where(signal, getattr(h, c), getattr(g, c)) for c in ("e", "px", "py", "pz")))
        for h, g in ((h1, g1), (h2, g2))
    )
    hard = PartonSet.stack(
        [(b_lep, BOTTOM, 0), (b_had, BOTTOM, 1), (q1, f1, 2), (q2, f2, 3), (xb1, BOTTOM, 4), (xb2, BOTTOM, 5)]
    )
    # Background events keep the tops' targets (they are there in tt + bb too) but have no h: unlike
    # SPANet's sample (no targets at all), the detection heads then learn that tops are present.
    hard.role[~signal, 4:] = -1
    reco = reconstruct(rng, hard, isr, 6, max_objects - 1, config, selection, lepton)
    out = _momenta_arrays(reco, lepton, TTH_SEMILEP)
    rows = reco.events
    t_lep, t_had, x = (FourVector(v.e[rows], v.px[rows], v.py[rows], v.pz[rows]) for v in (t_lep, t_had, x))
    out["REGRESSIONS/EVENT/log_invariant_mass"] = np.log(invariant_mass(t_lep, t_had, x))
    out[classification_path("EVENT/signal")] = signal[rows].astype(np.int64)
    return out, reco


def simulate_hh_4b(
    rng: np.random.Generator,
    n: int,
    config: PhysicsConfig,
    max_objects: int,
    signal_fraction: float,
    selection: Selection,
) -> tuple[Arrays, Reconstructed]:
    """Higgs pair production, both H -> b bbar: four b jets to pair into two Higgs bosons.

    The two Higgs bosons recoil against the ISR like the tops of t tbar (a harder pT spectrum,
    ``HH_HIGGS_PT``). Float32 throughout, as for the other all-hadronic process.
    ``signal_fraction`` is unused: every process has ``Process.simulate``'s signature.
    """
    isr = sample_isr(rng, n, config)
    (x1, y1), (x2, y2) = balanced_transverse(rng, [HH_HIGGS_PT, HH_HIGGS_PT], recoil(isr), np.float32)
    y = rapidities(rng, n, 2, *HH_Y, np.float32)
    m1, m2 = higgs_masses(rng, n, config, np.float32), higgs_masses(rng, n, config, np.float32)
    h1 = resonance(x1, y1, y[:, 0], m1)
    h2 = resonance(x2, y2, y[:, 1], m2)
    b11, b12 = decay_to_bb(rng, h1, m1)
    b21, b22 = decay_to_bb(rng, h2, m2)
    hard = PartonSet.stack([(b11, BOTTOM, 0), (b12, BOTTOM, 1), (b21, BOTTOM, 2), (b22, BOTTOM, 3)])
    reco = reconstruct(rng, hard, isr, 4, max_objects, config, selection)
    return _source_arrays(reco, HH_4B), reco


TTBAR_ALLHAD = Process(
    name="ttbar_allhad",
    description="all-hadronic t tbar, both W -> q q'",
    event_file_name="full_hadronic_ttbar.yaml",
    event_file_text=event_files.FULL_HADRONIC_TTBAR,
    sequential_input="Source",
    max_objects=10,
    selection=Selection(min_jets=6, min_btags=2),
    targets=(("t1", "q1"), ("t1", "q2"), ("t1", "b"), ("t2", "q1"), ("t2", "q2"), ("t2", "b")),
    simulate=simulate_ttbar_allhad,
)
TTBAR_SEMILEP = Process(
    name="ttbar_semilep",
    description="semi-leptonic t tbar, one W -> e/mu nu",
    event_file_name="semi_leptonic_ttbar.yaml",
    event_file_text=event_files.SEMI_LEPTONIC_TTBAR,
    sequential_input="Momenta",
    max_objects=12,
    selection=Selection(min_jets=4, min_btags=2, leptons=1),
    targets=(("lt", "b"), ("ht", "b"), ("ht", "q1"), ("ht", "q2")),
    simulate=simulate_ttbar_semilep,
    has_lepton=True,
)
TTH_SEMILEP = Process(
    name="ttH_semilep",
    description="semi-leptonic t tbar H (H -> b bbar) against t tbar + b bbar",
    event_file_name="semi_leptonic_ttH.yaml",
    event_file_text=event_files.SEMI_LEPTONIC_TTH,
    sequential_input="Momenta",
    max_objects=19,
    selection=Selection(min_jets=6, min_btags=4, leptons=1),
    targets=(("lt", "b"), ("ht", "b"), ("ht", "q1"), ("ht", "q2"), ("h", "b1"), ("h", "b2")),
    simulate=simulate_tth_semilep,
    has_lepton=True,
    has_background=True,
)
HH_4B = Process(
    name="hh_4b",
    description="Higgs pair, both H -> b bbar",
    event_file_name="hh_4b.yaml",
    event_file_text=event_files.HH_4B,
    sequential_input="Source",
    max_objects=10,
    selection=Selection(min_jets=4, min_btags=2),
    targets=(("h1", "b1"), ("h1", "b2"), ("h2", "b1"), ("h2", "b2")),
    simulate=simulate_hh_4b,
)

PROCESSES: dict[str, Process] = {p.name: p for p in (TTBAR_ALLHAD, TTBAR_SEMILEP, TTH_SEMILEP, HH_4B)}
