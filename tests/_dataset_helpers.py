"""Hand-made HDF5 files for the dataset tests.

``TINY_SPEC`` has two SEQUENTIAL inputs (Jets, 5 slots; Leptons, 2 slots) and a GLOBAL one
(Met). The combined object space is Jets 0..4 then Leptons 5..6. ``tiny_arrays()`` holds six
events whose targets, weights and labels the tests check by hand:

====== ====== ======= ============ ============ ========= ===========
event  jets   leptons t (b,q1,q2)  lt (b, l)    h (x1,x2) signal
====== ====== ======= ============ ============ ========= ===========
0      4      1       0 1 2        3  0->5      -1 -1     1
1      3      2       2 0 1 (MASK  -1  1->6     -1 -1     0
                      says False)
2      4      0       -1 -1 -1     -1 -1        0 3       1
3      2      1       0 1 -1       -1  0->5     -1 -1     -1
4      5      2       0 1 2        3  1->6      4 5       0
5      1      0       -1 -1 -1     -1 -1        -1 -1     1
====== ====== ======= ============ ============ ========= ===========

``t`` and ``lt`` products are associated (``b: Jets``), so their file indices count inside
their input; ``h``'s products are unassociated, so theirs are already combined.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import h5py
import numpy as np
import torch

from spanet_lite.config import parse_event_spec
from spanet_lite.dataset.batch import Batch

TINY_YAML = """
INPUTS:
  SEQUENTIAL:
    Jets: {pt: log_normalize, eta: normalize, btag: none}
    Leptons: {pt: log, eta: normalize}
  GLOBAL:
    Met: {met: normalize, phi: none}
EVENT:
  t: [b: Jets, q1: Jets, q2: Jets]
  lt: [b: Jets, l: Leptons]
  h: [x1, x2]
PERMUTATIONS:
  t: [[q1, q2]]
  h: [[x1, x2]]
REGRESSIONS:
  EVENT: [mass, [energy, laplacian], [momentum, log_gaussian]]
CLASSIFICATIONS:
  EVENT: [signal]
"""

TINY_SPEC = parse_event_spec(TINY_YAML, source="tiny.yaml")

JETS = [4, 3, 4, 2, 5, 1]
LEPTONS = [1, 2, 0, 1, 2, 0]
SIGNAL = [1, 0, 1, -1, 0, 1]
EVENT_WEIGHT = [1.0, 2.0, 1.0, 1.0, 0.5, 1.0]


def _objects(counts: list[int], width: int, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    mask = np.arange(width)[None, :] < np.array(counts)[:, None]
    out = {"MASK": mask}
    for name, values in features.items():
        out[name] = np.where(mask, values, np.nan).astype(np.float32)  # padded slots hold NaN
    return out


def tiny_arrays() -> dict[str, np.ndarray]:
    """HDF5 path -> array for the six events in the module docstring."""
    rng = np.random.default_rng(7)
    n = len(JETS)
    arrays: dict[str, np.ndarray] = {}
    jets = _objects(
        JETS,
        5,
        {
            "pt": rng.uniform(20, 200, (n, 5)),
            "eta": rng.normal(0, 2, (n, 5)),
            "btag": rng.integers(0, 2, (n, 5)),
        },
    )
    leptons = _objects(LEPTONS, 2, {"pt": rng.uniform(10, 100, (n, 2)), "eta": rng.normal(0, 1, (n, 2))})
    arrays.update({f"INPUTS/Jets/{k}": v for k, v in jets.items()})
    arrays.update({f"INPUTS/Leptons/{k}": v for k, v in leptons.items()})
    arrays["INPUTS/Met/met"] = rng.uniform(0, 100, n).astype(np.float32)
    arrays["INPUTS/Met/phi"] = rng.uniform(-3, 3, n).astype(np.float32)
    targets = {
        "t/b": [0, 2, -1, 0, 0, -1],
        "t/q1": [1, 0, -1, 1, 1, -1],
        "t/q2": [2, 1, -1, -1, 2, -1],
        "lt/b": [3, -1, -1, -1, 3, -1],
        "lt/l": [0, 1, -1, 0, 1, -1],
        "h/x1": [-1, -1, 0, -1, 4, -1],
        "h/x2": [-1, -1, 3, -1, 5, -1],
    }
    arrays.update({f"TARGETS/{k}": np.array(v, dtype=np.int64) for k, v in targets.items()})
    # False at event 1, whose t products are all matched; True only where they are (a MASK True over
    # an unmatched product is read otherwise by SPANet, a warning: tests/test_dataset.py has its own)
    arrays["TARGETS/t/MASK"] = np.array([True, False, False, False, True, False])
    arrays["TARGETS/lt/WEIGHT"] = np.array([0.5, 1, 1, 1, 2, 1], dtype=np.float32)
    arrays["REGRESSIONS/EVENT/mass"] = np.array([100, 120, 90, np.nan, 110, 95], dtype=np.float32)
    arrays["REGRESSIONS/EVENT/energy"] = np.array([1, 2, 3, 4, 10, 6], dtype=np.float32)
    arrays["REGRESSIONS/EVENT/momentum"] = np.array([-5, 0, 5, 50, 500, 1], dtype=np.float32)
    arrays["CLASSIFICATIONS/EVENT/signal"] = np.array(SIGNAL, dtype=np.int64)
    arrays["WEIGHTS/EVENT/weight"] = np.array(EVENT_WEIGHT, dtype=np.float32)
    return arrays


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as file:
        for name, values in arrays.items():
            file.create_dataset(name, data=values)
    return path


def random_arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` valid events for ``TINY_SPEC``: random object counts, unique targets on real objects."""
    rng = np.random.default_rng(seed)
    jets_count = rng.integers(3, 6, n)
    leptons_count = rng.integers(1, 3, n)
    jets = _objects(
        list(jets_count),
        5,
        {
            "pt": rng.uniform(20, 200, (n, 5)),
            "eta": rng.normal(0, 2, (n, 5)),
            "btag": rng.integers(0, 2, (n, 5)),
        },
    )
    leptons = _objects(
        list(leptons_count), 2, {"pt": rng.uniform(10, 100, (n, 2)), "eta": rng.normal(0, 1, (n, 2))}
    )
    arrays = {f"INPUTS/Jets/{k}": v for k, v in jets.items()}
    arrays.update({f"INPUTS/Leptons/{k}": v for k, v in leptons.items()})
    arrays["INPUTS/Met/met"] = rng.uniform(0, 100, n).astype(np.float32)
    arrays["INPUTS/Met/phi"] = rng.uniform(-3, 3, n).astype(np.float32)
    # t takes jets 0..2 (some missing); lt the last real jet (4 or 5 jets) and lepton 0;
    # h lepton 1 (combined 6) and, with 5 jets, jet 3.
    drop = rng.random((n, 3)) < 0.2
    t = np.where(drop, -1, np.arange(3)[None, :])
    arrays["TARGETS/t/b"], arrays["TARGETS/t/q1"], arrays["TARGETS/t/q2"] = t.T.astype(np.int64)
    arrays["TARGETS/lt/b"] = np.where(jets_count > 3, jets_count - 1, -1).astype(np.int64)
    arrays["TARGETS/lt/l"] = np.where(rng.random(n) < 0.8, 0, -1).astype(np.int64)
    arrays["TARGETS/h/x1"] = np.where(leptons_count > 1, 6, -1).astype(np.int64)
    arrays["TARGETS/h/x2"] = np.where(jets_count == 5, 3, -1).astype(np.int64)
    arrays["REGRESSIONS/EVENT/mass"] = np.where(rng.random(n) < 0.1, np.nan, rng.normal(100, 10, n)).astype(
        np.float32
    )
    arrays["REGRESSIONS/EVENT/energy"] = rng.exponential(5, n).astype(np.float32)
    arrays["REGRESSIONS/EVENT/momentum"] = rng.normal(0, 50, n).astype(np.float32)
    arrays["CLASSIFICATIONS/EVENT/signal"] = rng.integers(-1, 3, n).astype(np.int64)
    arrays["WEIGHTS/EVENT/weight"] = rng.uniform(0.5, 2, n).astype(np.float32)
    return arrays


def assert_same_batch(a: Batch, b: Batch) -> None:
    """Every field of two batches equal (float tensors up to rounding, NaN equal to NaN)."""
    for f in fields(Batch):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, dict):
            assert x.keys() == y.keys(), f.name
            for key in x:
                assert torch.allclose(x[key], y[key], equal_nan=True), (f.name, key)
        elif x is None or y is None:
            assert x is None and y is None, f.name
        else:
            assert torch.equal(x, y), f.name
