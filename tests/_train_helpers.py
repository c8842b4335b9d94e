"""Tiny training set-ups shared by the training tests: a ttH file laid out like SPANet's example, shrunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TINY_OPTIONS: dict[str, Any] = {
    "hidden_dim": 16,
    "num_attention_heads": 2,
    "num_embedding_layers": 1,
    "num_encoder_layers": 1,
    "num_branch_embedding_layers": 1,
    "num_branch_encoder_layers": 1,
    "num_detector_layers": 1,
    "num_regression_layers": 1,
    "num_classification_layers": 1,
    "dataset_limit": 0.3,  # 300 of the file's 1,000 events
    "train_validation_split": 0.8,  # 240 training events: 4 batches of 64
    "batch_size": 64,
    "epochs": 2,
    "learning_rate": 0.003,
    "learning_rate_warmup_epochs": 0.5,
    "l2_penalty": 0.0001,
    "gradient_clip": 1.0,
    "num_dataloader_workers": 0,
    "seed": 7,
    # SPANet's defaults would train the assignment only, on full events, with linear decay
    "detection_loss_scale": 1.0,
    "regression_loss_scale": 1.0,
    "classification_loss_scale": 1.0,
    "partial_events": True,
    "learning_rate_cycles": 1,
}


def write_options(directory: Path, data_dir: Path, **changes: Any) -> Path:
    """An options file in ``directory`` pointing at ``data_dir``'s ``semi_leptonic_ttH.yaml`` and
    ``example.h5`` (the suite's generated file, or SPANet's reference folder)."""
    values = {
        "event_info_file": str(data_dir / "semi_leptonic_ttH.yaml"),
        "training_file": str(data_dir / "example.h5"),
        **TINY_OPTIONS,
        **changes,
    }
    path = directory / "options.json"
    path.write_text(json.dumps(values, indent=2), encoding="utf-8")
    return path


def network_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The ``network.`` tensors of a checkpoint."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("network.")}
