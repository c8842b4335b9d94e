"""Tiny run directories and files for the evaluation tests (spanet-test, -predict, -export).

A run directory is written the way spanet-train writes one (docs/ARCHITECTURE.md): the event
file text, resolved options, statistics measured on the file, and a Lightning-style
checkpoint whose ``state_dict`` holds an untrained network's weights under ``network.``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
from _model_helpers import ttbar_yaml

from spanet_lite.config import parse_event_spec
from spanet_lite.config.options import Options
from spanet_lite.dataset import reader
from spanet_lite.dataset.normalization import compute_statistics
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.model.network import SpanetNetwork

TINY = dict(
    hidden_dim=16,
    num_attention_heads=2,
    num_embedding_layers=1,
    num_encoder_layers=1,
    num_branch_embedding_layers=0,
    num_branch_encoder_layers=1,
    num_detector_layers=1,
    num_regression_layers=1,
    num_classification_layers=1,
)

# The all-hadronic ttbar topology with one feature: enough for decoding and metric tests.
TTBAR = parse_event_spec(ttbar_yaml("{pt: none}"))

TTBAR_YAML = ttbar_yaml(
    "{mass: log_normalize, pt: log_normalize, eta: normalize, phi: normalize, btag: none}"
)


def statistics_of(spec, path: Path, options: Options) -> DatasetStatistics:
    with h5py.File(path, "r") as file:
        layout = reader.resolve_layout(file, spec, path, options.event_weight_dataset)
        block = reader.read_block(file, spec, layout, 0, layout.num_events)
    return compute_statistics(
        spec, options, [block], source=str(path), max_objects=layout.max_objects,
        classifications=block.classifications,
    )


def make_run_dir(directory: Path, event_yaml: str, data_file: Path, seed: int = 0, **options) -> Path:
    """Write a run directory with an untrained network for ``event_yaml``, statistics from ``data_file``."""
    spec = parse_event_spec(event_yaml, source="event_file.yaml")
    resolved = Options(**{"partial_events": True, **TINY, **options})
    statistics = statistics_of(spec, data_file, resolved)
    torch.manual_seed(seed)
    network = SpanetNetwork(spec, resolved, statistics)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "event_file.yaml").write_text(event_yaml, encoding="utf-8")
    (directory / "options.json").write_text(json.dumps(resolved.to_dict(), indent=2), encoding="utf-8")
    (directory / "statistics.json").write_text(statistics.to_json(), encoding="utf-8")
    (directory / "checkpoints").mkdir(exist_ok=True)
    checkpoint = {
        "state_dict": {f"network.{k}": v for k, v in network.state_dict().items()},
        "hyper_parameters": {
            "event_file_text": event_yaml,
            "options": resolved.to_dict(),
            "statistics": statistics.to_dict(),
        },
    }
    torch.save(checkpoint, directory / "checkpoints" / "last.ckpt")
    (directory / "metrics.csv").write_text(
        "epoch,step,lr,train/total_loss,val/total_loss,val/event_purity\n"
        "0,10,0.001,3.2,3.0,0.12\n1,20,0.001,2.5,2.4,0.31\n2,30,0.0005,2.1,2.2,0.40\n",
        encoding="utf-8",
    )
    return directory


def write_ttbar_file(path: Path, num_events: int = 200, width: int = 10, seed: int = 0) -> Path:
    """Random all-hadronic ttbar events: 6 to ``width`` jets, both tops matched in most events."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(6, width + 1, num_events)
    mask = np.arange(width)[None, :] < counts[:, None]
    with h5py.File(path, "w") as file:
        file["INPUTS/Jets/MASK"] = mask
        file["INPUTS/Jets/pt"] = np.where(mask, rng.uniform(20, 300, mask.shape), 0).astype(np.float32)
        file["INPUTS/Jets/mass"] = np.where(mask, rng.uniform(2, 30, mask.shape), 0).astype(np.float32)
        file["INPUTS/Jets/eta"] = np.where(mask, rng.normal(0, 1.5, mask.shape), 0).astype(np.float32)
        file["INPUTS/Jets/phi"] = np.where(mask, rng.uniform(-np.pi, np.pi, mask.shape), 0).astype(np.float32)
        file["INPUTS/Jets/btag"] = np.where(mask, rng.integers(0, 2, mask.shape), 0).astype(np.float32)
        order = np.argsort(rng.random((num_events, width)) + ~mask, axis=1)  # real jets first, shuffled
        targets = order[:, :6].copy()
        targets[rng.random(num_events) < 0.2, 3] = -1  # some events with t2 not reconstructable
        for p, particle in enumerate(("t1", "t2")):
            for j, product in enumerate(("q1", "q2", "b")):
                file[f"TARGETS/{particle}/{product}"] = targets[:, 3 * p + j].astype(np.int64)
        file["WEIGHTS/EVENT/weight"] = rng.uniform(0.5, 1.5, num_events).astype(np.float32)
    return path


# Two SEQUENTIAL inputs: an associated product per input, and an unassociated 3-product particle.
TWO_INPUTS_YAML = """
INPUTS:
  SEQUENTIAL:
    Jets: {pt: log_normalize, eta: normalize}
    Leptons: {pt: log_normalize, eta: normalize}
EVENT:
  lt: [{b: Jets}, {l: Leptons}]
  ht: [b, q1, q2]
PERMUTATIONS:
  ht: [[q1, q2]]
"""


def write_two_input_file(path: Path, n: int = 40, seed: int = 1) -> Path:
    """Jets (6 slots) and Leptons (2 slots); lt = (Jets 0, Leptons 0), ht = combined 1, 2, 3."""
    rng = np.random.default_rng(seed)
    jets = rng.integers(3, 7, n)
    leptons = rng.integers(1, 3, n)
    with h5py.File(path, "w") as file:
        for name, counts, width in (("Jets", jets, 6), ("Leptons", leptons, 2)):
            mask = np.arange(width)[None, :] < counts[:, None]
            file[f"INPUTS/{name}/MASK"] = mask
            file[f"INPUTS/{name}/pt"] = np.where(mask, rng.uniform(20, 200, mask.shape), 0).astype(np.float32)
            file[f"INPUTS/{name}/eta"] = np.where(mask, rng.normal(0, 1, mask.shape), 0).astype(np.float32)
        file["TARGETS/lt/b"] = np.zeros(n, dtype=np.int64)  # Jets slot 0
        file["TARGETS/lt/l"] = np.zeros(n, dtype=np.int64)  # Leptons slot 0 = combined index 6
        for j, product in enumerate(("b", "q1", "q2")):
            file[f"TARGETS/ht/{product}"] = np.full(n, j + 1, dtype=np.int64)
    return path
