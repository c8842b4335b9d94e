"""Unique greedy parton-jet matching by Delta R, the truth definition of the SPANet samples.

All (parton, jet) pairs of an event closer than ``max_dr`` are taken in increasing Delta R;
a pair is kept when neither its parton nor its jet is already used. Every parton ends with at
most one jet and every jet with at most one parton, so targets in a file are unique per event.
A parton with no jet left within ``max_dr`` (out of acceptance, merged into a neighbour's jet,
or too soft) gets -1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from spanet_lite.physics.kinematics import delta_r


def greedy_match(
    parton_eta: NDArray[np.float64],
    parton_phi: NDArray[np.float64],
    parton_valid: NDArray[np.bool_],
    jet_eta: NDArray[np.float64],
    jet_phi: NDArray[np.float64],
    jet_valid: NDArray[np.bool_],
    max_dr: float = 0.4,
) -> NDArray[np.int64]:
    """Jet index per parton, shape (events, partons), -1 where unmatched.

    Inputs are (events, partons) and (events, jets); invalid entries never match. Vectorised
    over events: each round takes, in every event at once, the closest remaining pair.
    """
    n, p = parton_eta.shape
    dr = delta_r(parton_eta[:, :, None], parton_phi[:, :, None], jet_eta[:, None, :], jet_phi[:, None, :])
    dr = np.where(parton_valid[:, :, None] & jet_valid[:, None, :] & (dr < max_dr), dr, np.inf)
    match = np.full((n, p), -1, dtype=np.int64)
    if dr.size == 0:
        return match
    rows = np.arange(n)
    num_jets = dr.shape[2]
    for _ in range(min(p, num_jets)):
        flat = dr.reshape(n, -1).argmin(axis=1)
        i, j = np.divmod(flat, num_jets)
        ok = np.isfinite(dr[rows, i, j])
        if not ok.any():
            break
        match[rows[ok], i[ok]] = j[ok]
        dr[rows[ok], i[ok], :] = np.inf
        dr[rows[ok], :, j[ok]] = np.inf
    return match
