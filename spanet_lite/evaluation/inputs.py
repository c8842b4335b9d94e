"""Reading only the INPUTS of a file, in blocks: all that prediction needs.

A file to predict on need not hold TARGETS, REGRESSIONS or CLASSIFICATIONS, so this reader
checks and reads just ``INPUTS/<input>/...``. Features are stacked in event-file order; padded
slots are set to 0 (files may hold anything there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
    """SEQUENTIAL input -> number of slots in this file."""

    @property
    def total_objects(self) -> int:
        return sum(self.max_objects.values())


def check_inputs(file: h5py.File, spec: EventSpec, path: str | Path) -> InputLayout:
    """Every INPUTS dataset ``spec`` names exists with a consistent shape; else InputError."""
    num_events: int | None = None
    max_objects: dict[str, int] = {}

    def need(name: str, rank: int, width: int | None) -> None:
        nonlocal num_events
        node = file.get(name)
        if not isinstance(node, h5py.Dataset):
            raise InputError(path, name, "a dataset named by the event file", "nothing")
        if node.ndim != rank:
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
            need(schema.feature_path(source.name, feature.name), 2, max_objects[source.name])
    for source in spec.global_inputs:
        for feature in source.features:
            need(schema.feature_path(source.name, feature.name), 1, None)
    return InputLayout(str(path), int(num_events or 0), max_objects)


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
            stacked[:, :, f] = file[schema.feature_path(source.name, feature.name)][start:stop]
        np.copyto(stacked, 0.0, where=~mask[:, :, None])
        features[source.name] = stacked
        masks[source.name] = mask
    for source in spec.global_inputs:
        vector = np.empty((stop - start, source.num_features), dtype=np.float32)
        for f, feature in enumerate(source.features):
            vector[:, f] = file[schema.feature_path(source.name, feature.name)][start:stop]
        features[source.name] = vector
    return features, masks


def blocks(num_events: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering ``num_events`` in steps of ``size``."""
    for start in range(0, num_events, size):
        yield start, min(start + size, num_events)
