"""SPANet's options keep SPANet's meaning: every key known, SPANet's defaults, its network rules.

The defaults below are facts read from SPANet v2.2.0's ``spanet/options.py`` (see
docs/migrating_from_spanet.md); a change to our defaults that drifts from them fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _model_helpers import TTBAR_YAML, small_options, spec_from, statistics_for
from rich.console import Console

from spanet_lite.config import SPANET_KEYS, Options, load_options, options_table
from spanet_lite.config.options import ACTIVATIONS
from spanet_lite.model.embedding import InputMLP, embedding_widths
from spanet_lite.model.encoder import ACTIVATION_FUNCTIONS
from spanet_lite.model.network import SpanetNetwork

SPANET_DEFAULTS = {
    "hidden_dim": 128,
    "transformer_dim": 128,
    "transformer_dim_scale": 2.0,
    "initial_embedding_dim": 16,
    "position_embedding_dim": 32,
    "num_embedding_layers": 10,
    "num_encoder_layers": 4,
    "num_branch_embedding_layers": 4,
    "num_branch_encoder_layers": 4,
    "num_jet_embedding_layers": 0,
    "num_jet_encoder_layers": 0,
    "num_detector_layers": 1,
    "num_regression_layers": 1,
    "num_classification_layers": 1,
    "split_symmetric_attention": True,
    "num_attention_heads": 4,
    "transformer_activation": "gelu",
    "skip_connections": True,
    "initial_embedding_skip_connections": True,
    "linear_block_type": "GRU",
    "transformer_type": "Gated",
    "linear_activation": "gelu",  # SPANet writes GELU; we store torch.nn.functional's spelling
    "normalization": "LayerNorm",
    "masking": "Filling",
    "linear_prelu_activation": True,
    "event_info_file": "",
    "training_file": "",
    "validation_file": "",
    "testing_file": "",
    "normalize_features": True,
    "limit_to_num_jets": 0,
    "balance_particles": False,
    "balance_jets": False,
    "balance_classifications": False,
    "partial_events": False,
    "dataset_limit": 1.0,
    "dataset_randomization": 0,
    "train_validation_split": 0.95,
    "batch_size": 4096,
    "num_dataloader_workers": 4,
    "mask_sequence_vectors": True,
    "combine_pair_loss": "min",
    "optimizer": "AdamW",
    "learning_rate": 0.001,
    "focal_gamma": 0.0,
    "combinatorial_scale": 0.0,
    "learning_rate_warmup_epochs": 1.0,
    "learning_rate_cycles": 0,
    "assignment_loss_scale": 1.0,
    "detection_loss_scale": 0.0,
    "kl_loss_scale": 0.0,
    "regression_loss_scale": 0.0,
    "classification_loss_scale": 0.0,
    "balance_losses": True,
    "l2_penalty": 0.0,
    "gradient_clip": 0.0,
    "dropout": 0.0,
    "epochs": 100,
    "num_gpu": 1,
    "verbose_output": True,
    "usable_gpus": "",
    "trial_time": "",
    "trial_output_dir": "./test_output",
}


def test_every_spanet_key_is_an_option_with_spanets_default():
    assert set(SPANET_DEFAULTS) == SPANET_KEYS
    defaults = Options()
    assert {key: getattr(defaults, key) for key in SPANET_DEFAULTS} == SPANET_DEFAULTS


def test_reference_options_table_shows_spanets_default_for_every_omitted_key(reference_dir: Path):
    options = load_options(reference_dir / "example.json")
    omitted = SPANET_KEYS - options.explicit
    assert omitted == {
        "combinatorial_scale",
        "balance_losses",
        "linear_prelu_activation",
        "balance_classifications",
        "dataset_randomization",
        "testing_file",
        "transformer_dim_scale",
        "validation_file",
        "usable_gpus",
        "trial_time",
        "trial_output_dir",
    }
    console = Console(record=True, width=300, color_system=None)
    console.print(options_table(options))
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in console.export_text().splitlines()
        if "│" in line
    }
    shown = {True: "true", False: "false", "": '""'}
    for key in omitted:
        expected = SPANET_DEFAULTS[key]
        text = shown.get(expected, expected) if isinstance(expected, (bool, str)) else repr(expected)
        assert rows[key] == text, key


@pytest.mark.parametrize(
    ("hidden", "initial", "layers", "widths"),
    [
        (128, 16, 10, [16, 32, 64, 128]),  # SPANet's defaults: 4 layers although the key says 10
        (128, 16, 1, [16, 32, 128]),  # at most num_embedding_layers doublings
        (128, 16, 0, [16, 128]),
        (64, 16, 10, [16, 32, 64]),  # SPANet's ttbar example
        (32, 32, 2, [32, 32]),  # the bundled examples: one layer, then one residual block
        (8, 16, 3, [16, 8]),
    ],
)
def test_the_embedding_stack_doubles_up_to_hidden_dim(hidden, initial, layers, widths):
    assert embedding_widths(hidden, initial, layers) == widths
    mlp = InputMLP(5, hidden, initial, layers, "gelu", 0.0)
    linear = [mlp.first, *mlp.widen, *([mlp.last] if mlp.last is not None else [])]
    assert [m.out_features for m in linear] == widths[: len(linear)]
    assert len(linear) + len(mlp.blocks) == len(widths)
    assert mlp(torch.randn(2, 3, 5)).shape == (2, 3, hidden)


def test_transformer_dim_scale_sets_the_feed_forward_width():
    spec = spec_from(TTBAR_YAML)
    net = SpanetNetwork(spec, small_options(hidden_dim=16, transformer_dim_scale=3.0), statistics_for(spec))
    assert net.encoder.layers[0].ff1.weight.shape[-1] == 48


def test_activation_functions_cover_exactly_the_option_names():
    assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATIONS)
