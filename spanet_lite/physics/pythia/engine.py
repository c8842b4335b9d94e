"""One chunk of Pythia events, from ``Pythia.next`` to the arrays of the HDF5 layout.

A chunk is the unit of parallelism and of resuming: it is fully determined by (process, seed,
chunk index, number of events), so re-running a chunk reproduces it bit for bit. Pythia is
asked for a fixed number of events per batch and batches are consumed in order until enough
events pass the selection; the surplus of the last batch is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.hdf5_paths import classification_path, feature_path, mask_path, regression_path, target_path
from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.neutrino import ANALYTIC_FEATURES, analytic_features
from spanet_lite.physics.pythia.detector import RecoBatch, reconstruct
from spanet_lite.physics.pythia.matching import greedy_match
from spanet_lite.physics.pythia.processes import COMMON_SETTINGS, Component, PythiaProcess, make_hook
from spanet_lite.physics.pythia.record import FlatBatch, Truth, extract_truth

PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts seeds 1 .. 900,000,000
LEPTON_FLAGS = ("etag", "utag")

# ``on_batch(generated, selected)`` after every Pythia batch: how the progress bar learns.
BatchCallback = Callable[[int, int], None]


@dataclass
class ChunkResult:
    """HDF5 path -> array (first axis: events) of one chunk, and how many Pythia events it took."""

    arrays: dict[str, NDArray[Any]]
    generated: int
    selected: int


def chunk_seeds(seed: int, chunk: int, component: int) -> tuple[int, np.random.Generator]:
    """Pythia's seed and the detector's random generator for one component of one chunk.

    Both come from ``numpy.random.SeedSequence([seed, chunk, component])``, so chunks are
    independent streams and the whole run depends only on ``seed``.
    """
    sequence = np.random.SeedSequence([seed, chunk, component])
    pythia_seed = int(sequence.generate_state(1, dtype=np.uint32)[0]) % PYTHIA_SEED_MAX + 1
    return pythia_seed, np.random.default_rng(sequence.spawn(1)[0])


@dataclass
class PythiaSource:
    """An initialised Pythia and its :class:`~.processes.ChannelHook`, kept alive together.

    Pythia holds only a raw pointer to a Python hook: if the hook object were garbage collected
    while Pythia still runs, the veto would silently stop. Keeping both in one object prevents that.
    """

    pythia: Any
    hook: Any

    def next_batch(self, n: int) -> FlatBatch:
        """The next ``n`` events (after the hook's vetoes) as flat arrays."""
        return FlatBatch.from_awkward(self.pythia.nextBatch(n))


def make_pythia(component: Component, pythia_seed: int) -> PythiaSource:
    """An initialised Pythia for ``component``."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    seeding = ("Random:setSeed = on", f"Random:seed = {pythia_seed}")
    for line in (*COMMON_SETTINGS, *component.settings, *seeding):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    hook = make_hook(pythia8mc, component)
    if hook is not None:
        pythia.setUserHooksPtr(hook)
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise the {component.name} process")
    return PythiaSource(pythia, hook)


def component_counts(
    process: PythiaProcess, n_events: int, signal_fraction: float | None = None
) -> list[int]:
    """Selected events per component: the fractions rounded, the remainder to the last component.

    ``signal_fraction`` replaces the first (signal) component's fraction of a two-component process.
    """
    fractions = [c.fraction for c in process.components]
    if signal_fraction is not None and len(fractions) == 2:
        fractions = [signal_fraction, 1.0 - signal_fraction]
    counts = [round(f * n_events) for f in fractions[:-1]]
    return [*counts, n_events - sum(counts)]


def generate_chunk(
    process: PythiaProcess,
    spec: EventSpec,
    max_objects: int,
    selection: Selection,
    n_events: int,
    seed: int,
    chunk: int,
    *,
    config: PhysicsConfig | None = None,
    signal_fraction: float | None = None,
    batch_size: int = 50,
    on_batch: BatchCallback | None = None,
) -> ChunkResult:
    """Generate ``n_events`` selected events of ``process`` as arrays of ``spec``'s layout."""
    cfg = config or PhysicsConfig()
    parts: list[dict[str, NDArray[Any]]] = []
    generated = 0
    counts = component_counts(process, n_events, signal_fraction)
    for index, (component, wanted) in enumerate(zip(process.components, counts)):
        if wanted == 0:
            continue
        pythia_seed, rng = chunk_seeds(seed, chunk, index)
        source = make_pythia(component, pythia_seed)
        have = 0
        while have < wanted:
            batch = source.next_batch(batch_size)
            arrays, rows = event_arrays(component, spec, max_objects, selection, batch, cfg, rng)
            take = min(len(rows), wanted - have)
            # Events after the last one kept were never needed: they do not count as generated.
            consumed = batch.num_events if take == len(rows) else int(rows[take - 1]) + 1 if take else 0
            generated += consumed
            parts.append({k: v[:take] for k, v in arrays.items()})
            have += take
            if on_batch is not None:
                on_batch(consumed, take)
        del source
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if len(process.components) > 1:  # interleave signal and background
        order = np.random.default_rng(np.random.SeedSequence([seed, chunk, 1 << 16])).permutation(n_events)
        arrays = {k: v[order] for k, v in arrays.items()}
    return ChunkResult(arrays, generated, n_events)


def event_arrays(
    component: Component,
    spec: EventSpec,
    max_objects: int,
    selection: Selection,
    batch: FlatBatch,
    cfg: PhysicsConfig,
    rng: np.random.Generator,
) -> tuple[dict[str, NDArray[Any]], NDArray[np.int64]]:
    """Detector layer, selection, matching and the HDF5 arrays of the events that pass
    (returned with the batch positions of those events).

    The SEQUENTIAL input holds jets only, or (when it has lepton flags ``etag``/``utag``) the
    selected lepton in slot 0 followed by the jets, as in SPANet's semi-leptonic ttH sample.
    """
    (source,) = spec.sequential
    lepton_slot = any(f.name in LEPTON_FLAGS for f in source.features)
    max_jets = max_objects - 1 if lepton_slot else max_objects
    truth = extract_truth(batch, component.truth)
    reco = reconstruct(batch, cfg, rng, max_jets=max_jets)
    keep = (reco.num_jets >= selection.min_jets) & (reco.num_btags >= selection.min_btags)
    if lepton_slot:
        keep &= reco.num_leptons == selection.leptons
    rows = np.flatnonzero(keep)
    n = len(rows)

    jets = _select(reco, rows)
    targets = _targets(truth, jets, rows, cfg.match_dr)
    offset = 1 if lepton_slot else 0
    objects = _objects(jets, lepton_slot, max_objects)

    arrays: dict[str, NDArray[Any]] = {mask_path(source.name): objects["mask"]}
    for feature in source.features:
        arrays[feature_path(source.name, feature.name)] = objects[feature.name].astype(np.float32)
    for global_input in spec.global_inputs:
        met = {"met": jets.met, "phi": jets.met_phi, "sin_phi": np.sin(jets.met_phi),
               "cos_phi": np.cos(jets.met_phi), "sumet": jets.sumet,
               "px": jets.met * np.cos(jets.met_phi), "py": jets.met * np.sin(jets.met_phi)}
        if any(f.name in ANALYTIC_FEATURES for f in global_input.features):
            lepton = {k: objects[k][:, 0] for k in ("pt", "eta", "phi", "mass")}
            met.update(analytic_features(
                lepton["pt"], lepton["eta"], lepton["phi"], lepton["mass"], met["px"], met["py"]
            ))
        for feature in global_input.features:
            arrays[feature_path(global_input.name, feature.name)] = met[feature.name].astype(np.float32)
    for particle in spec.particles:
        for product in particle.products:
            slot = f"{particle.name}.{product.name}"
            # Background (tt + bb) keeps the tops' targets; its b bbar pair is no Higgs.
            if slot in truth.slots and (component.label != 0 or not slot.startswith("h.")):
                index = targets[:, truth.index(slot)]
                value = np.where(index >= 0, index + offset, -1)
            else:
                value = np.full(n, -1)
            arrays[target_path(particle.name, product.name)] = value.astype(np.int64)
    neutrino = truth.p4[rows, truth.index("lt.nu")] if "lt.nu" in truth.slots else np.full((n, 4), np.nan)
    nu_pt = np.hypot(neutrino[:, 1], neutrino[:, 2])
    regressions = {
        "neutrino_px": neutrino[:, 1], "neutrino_py": neutrino[:, 2], "neutrino_pz": neutrino[:, 3],
        "neutrino_e": neutrino[:, 0], "neutrino_eta": np.arcsinh(neutrino[:, 3] / nu_pt),
        "log_invariant_mass": np.log(truth.system_mass[rows]),
    }
    for target in spec.regressions:
        arrays[regression_path(target.key)] = regressions[target.name].astype(np.float32)
    label = -1 if component.label is None else component.label
    for classification in spec.classifications:
        arrays[classification_path(classification.key)] = np.full(n, label, dtype=np.int64)
    return arrays, rows


def _select(reco: RecoBatch, rows: NDArray[np.int64]) -> RecoBatch:
    return RecoBatch(**{name: value[rows] for name, value in vars(reco).items()})


def _targets(truth: Truth, reco: RecoBatch, rows: NDArray[np.int64], max_dr: float) -> NDArray[np.int64]:
    """Jet index per truth slot (-1: unmatched); leptons and neutrinos are never jet-matched."""
    p4 = truth.p4[rows]
    quark = (np.abs(truth.pid[rows]) <= 5) & (truth.pid[rows] != 0)
    pt = np.hypot(p4[..., 1], p4[..., 2])
    safe_pt = np.where(quark & (pt > 0), pt, 1.0)
    eta = np.where(quark, np.arcsinh(np.nan_to_num(p4[..., 3]) / safe_pt), 0.0)
    phi = np.where(quark, np.arctan2(np.nan_to_num(p4[..., 2]), np.nan_to_num(p4[..., 1])), 0.0)
    return greedy_match(eta, phi, quark, reco.jet_eta, reco.jet_phi, reco.jet_mask, max_dr)


def _objects(reco: RecoBatch, lepton_slot: bool, width: int) -> dict[str, NDArray[Any]]:
    """Every feature a SEQUENTIAL input may ask for, (events, width), zero in the padding."""
    jet_tag = reco.jet_btag & reco.jet_mask
    columns: dict[str, list[NDArray[Any]]] = {
        "pt": [reco.jet_pt], "eta": [reco.jet_eta], "phi": [reco.jet_phi], "mass": [reco.jet_mass],
        "btag": [jet_tag.astype(float)], "qtag": [(reco.jet_mask & ~reco.jet_btag).astype(float)],
        "etag": [np.zeros_like(reco.jet_pt)], "utag": [np.zeros_like(reco.jet_pt)], "mask": [reco.jet_mask],
    }
    if lepton_slot:
        pid = np.abs(reco.lepton_pid[:, :1])
        lepton = {"pt": reco.lepton_pt[:, :1], "eta": reco.lepton_eta[:, :1], "phi": reco.lepton_phi[:, :1],
                  "mass": reco.lepton_mass[:, :1], "btag": np.zeros_like(pid, dtype=float),
                  "qtag": np.zeros_like(pid, dtype=float), "etag": (pid == 11).astype(float),
                  "utag": (pid == 13).astype(float), "mask": reco.lepton_mask[:, :1]}
        for key, values in columns.items():
            values.insert(0, lepton[key])
    out = {key: np.concatenate(values, axis=1)[:, :width] for key, values in columns.items()}
    mask = out["mask"].astype(bool)
    out = {key: np.where(mask, value, 0) for key, value in out.items()}
    out["mask"] = mask
    out["sin_phi"] = np.where(mask, np.sin(out["phi"]), 0.0)
    out["cos_phi"] = np.where(mask, np.cos(out["phi"]), 0.0)
    return out
