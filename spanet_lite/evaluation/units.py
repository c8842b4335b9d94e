"""Physical units of a test file's regression targets, for plot axes and tables.

SPANet files carry no units (SPANet's own ttH example stores momenta in units of 100 GeV), so a
unit is shown only where it is known:

1. a ``units`` (or ``unit``) string attribute on the dataset ``REGRESSIONS/<key>``;
2. else, for files written by ``spanet-generate`` (file attribute ``generator =
   "spanet_lite"``), the generator's units (docs/generator.md): GeV for momenta and masses,
   ln(m / GeV) for ``log_invariant_mass``, none for pseudorapidities.

Everywhere else the unit is ``None`` ("file units" on an axis).
"""

from __future__ import annotations

from collections.abc import Iterable

import h5py

from spanet_lite.hdf5_paths import regression_path, stored_units

GENERATOR = "spanet_lite"
GENERATOR_UNITS: dict[str, str] = {
    "neutrino_px": "GeV",
    "neutrino_py": "GeV",
    "neutrino_pz": "GeV",
    "neutrino_pt": "GeV",
    "neutrino_e": "GeV",
    "neutrino_eta": "",
    "log_invariant_mass": "ln(m / GeV)",
}
"""Units of the regression targets ``spanet-generate`` writes ("" = dimensionless)."""


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def regression_units(file: h5py.File, keys: Iterable[str]) -> dict[str, str | None]:
    """Regression key (``EVENT/neutrino_px``) -> its unit, ``""`` for dimensionless, ``None`` unknown."""
    generated = _text(file.attrs.get("generator")) == GENERATOR
    units: dict[str, str | None] = {}
    for key in keys:
        dataset = file.get(regression_path(key))
        stored = None
        if isinstance(dataset, h5py.Dataset):
            stored = stored_units(dataset.attrs)
        if stored is None and generated:
            stored = GENERATOR_UNITS.get(key.rsplit("/", 1)[-1])
        units[key] = stored
    return units


def is_logarithm(key: str, unit: str | None) -> bool:
    """Whether regression ``key`` is the logarithm of a quantity: a unit ``ln(...)``, or, where the
    file gives no unit, a name starting with ``log_`` (SPANet's ``log_invariant_mass``). Its
    "within 10%" is then judged on the quantity itself, not on its logarithm."""
    if unit is not None:
        return unit.startswith("ln(")
    return key.rsplit("/", 1)[-1].startswith("log_")


def axis_label(quantity: str, unit: str | None) -> str:
    """``"residual [GeV]"``; ``"residual"`` when dimensionless; ``"residual (file units)"`` unknown."""
    if unit is None:
        return f"{quantity} (file units)"
    return f"{quantity} [{unit}]" if unit else quantity
