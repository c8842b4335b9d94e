"""Reading only the INPUTS of a file, in blocks: all that prediction needs.

A file to predict on need not hold TARGETS, REGRESSIONS or CLASSIFICATIONS, so this reader
checks and reads just ``INPUTS/<input>/...``. Features are stacked in event-file order; padded
slots are set to 0 (files may hold anything there). A RELATIVE input's pairwise ``(N, W, W)``
features are read as the training reader does (``dataset/reader.py``): their diagonal among the
object features, the whole tensor from :func:`read_pairs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset import schema
from spanet_lite.errors import InputError


@dataclass(frozen=True)
class InputLayout:
    path: str
    num_events: int
    max_objects: dict[str, int]
    """Object input -> number of slots in this file."""
    pair_features: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """RELATIVE input -> its pairwise features (:func:`schema.pair_features`)."""

    @property
    def total_objects(self) -> int:
        return sum(self.max_objects.values())


def check_inputs(file: h5py.File, spec: EventSpec, path: str | Path) -> InputLayout:
    """Every INPUTS dataset ``spec`` names exists with a consistent shape; else InputError."""
    num_events: int | None = None
    max_objects: dict[str, int] = {}

    def need(name: str, rank: int, width: int | None, pairwise: bool = False) -> None:
        nonlocal num_events
        node = file.get(name)
        if not isinstance(node, h5py.Dataset):
            raise InputError(path, name, "a dataset named by the event file", "nothing")
        if pairwise and node.ndim == 3 and node.shape[2] != width:
            raise InputError(path, name, f"{width} x {width} object pairs like its MASK", str(node.shape[1:]))
        if node.ndim != rank and not (pairwise and node.ndim == 3):
            raise InputError(path, name, f"{rank} dimension(s)", f"shape {node.shape}")
        if num_events is None:
            num_events = int(node.shape[0])
        elif node.shape[0] != num_events:
            raise InputError(path, name, f"{num_events} events like the other inputs", str(node.shape[0]))
        if width is not None and node.shape[1] != width:
            raise InputError(path, name, f"{width} slots like its MASK", str(node.shape[1]))

    for source in spec.sequential:
        need(schema.mask_path(source.name), 2, None)
        max_objects[source.name] = int(file[schema.mask_path(source.name)].shape[1])
        for feature in source.features:
            width = max_objects[source.name]
            need(schema.feature_path(source.name, feature.name), 2, width, source.is_relative)
    for source in spec.global_inputs:
        for feature in source.features:
            need(schema.feature_path(source.name, feature.name), 1, None)
    return InputLayout(str(path), int(num_events or 0), max_objects, schema.pair_features(file, spec))


def read_inputs(
    file: h5py.File, spec: EventSpec, start: int, stop: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Rows ``[start, stop)``: features (SEQUENTIAL (n, N, F), GLOBAL (n, F)) and masks (n, N)."""
    features: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for source in spec.sequential:
        mask = file[schema.mask_path(source.name)][start:stop]
        mask = mask if mask.dtype == np.bool_ else mask != 0
        stacked = np.empty((stop - start, mask.shape[1], source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            values = file[schema.feature_path(source.name, feature.name)][start:stop]
            stacked[:, :, f] = np.diagonal(values, axis1=1, axis2=2) if values.ndim == 3 else values
        np.copyto(stacked, 0.0, where=~mask[:, :, None])
        features[source.name] = stacked
        masks[source.name] = mask
    for source in spec.global_inputs:
        vector = np.empty((stop - start, source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            vector[:, f] = file[schema.feature_path(source.name, feature.name)][start:stop]
        features[source.name] = vector
    return features, masks


def read_pairs(file: h5py.File, layout: InputLayout, start: int, stop: int) -> dict[str, np.ndarray]:
    """Rows ``[start, stop)`` of each RELATIVE input's pairwise features: (n, N, N, C) float32,
    0 where either object is padding."""
    pairs: dict[str, np.ndarray] = {}
    for name, names in layout.pair_features.items():
        if not names:
            continue
        mask = file[schema.mask_path(name)][start:stop].astype(bool)
        stacked = np.stack([file[schema.feature_path(name, n)][start:stop] for n in names], -1)
        stacked = stacked.astype(np.float32, copy=False)
        np.copyto(stacked, 0.0, where=~(mask[:, :, None] & mask[:, None, :])[..., None])
        pairs[name] = stacked
    return pairs


def blocks(num_events: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering ``num_events`` in steps of ``size``."""
    for start in range(0, num_events, size):
        yield start, min(start + size, num_events)
