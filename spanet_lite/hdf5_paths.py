"""The names of the datasets in an event HDF5 file, spelled in one place.

Everything that reads or writes event files (the dataset package, the generators, spanet-predict)
builds dataset names with these functions, so the layout of docs/formats.md section 2 has one
spelling. What each dataset must hold is :mod:`spanet_lite.dataset.hdf5_layout`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping

EVENT_WEIGHT_DATASET = "WEIGHTS/EVENT/weight"
"""The default per-event physics weight (option ``event_weight_dataset``)."""


def mask_path(input_name: str) -> str:
    return f"INPUTS/{input_name}/MASK"


def feature_path(input_name: str, feature: str) -> str:
    return f"INPUTS/{input_name}/{feature}"


def target_path(particle: str, product: str) -> str:
    return f"TARGETS/{particle}/{product}"


def target_mask_path(particle: str) -> str:
    return f"TARGETS/{particle}/MASK"


def target_weight_path(particle: str) -> str:
    return f"TARGETS/{particle}/WEIGHT"


def regression_path(key: str) -> str:
    """``key`` is :attr:`RegressionTarget.key`, e.g. ``EVENT/neutrino_pz``."""
    return f"REGRESSIONS/{key}"


def classification_path(key: str) -> str:
    return f"CLASSIFICATIONS/{key}"


UNITS_ATTRIBUTES = ("units", "unit")
"""The dataset attributes that may name a dataset's physical unit, in the order they are read."""


def stored_units(attrs: Mapping[str, object]) -> str | None:
    """The unit a dataset's attributes name (``"GeV"``, ``""`` for dimensionless), None where they
    name none: the one reading of a stored unit, for spanet-test's axes and spanet-data's merges."""
    for name in UNITS_ATTRIBUTES:
        if name in attrs:
            value = attrs[name]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return value if isinstance(value, str) else None
    return None
