"""Training options: SPANet's option-file keys, with defaults, as one plain dataclass.

The field names are exactly SPANet's JSON keys, so an existing ``options.json`` loads
unchanged. Fields marked *spanet_lite* are ours. Architecture keys we accept but do not
implement are listed in :data:`UNIMPLEMENTED_KEYS`; loading warns once, naming them.

Reading a file is :func:`spanet_lite.config.options_file.load_options`; impossible values
are caught by :func:`spanet_lite.config.options_validation.validate_options`, called after
command-line overrides are applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMBINE_PAIR_LOSSES = ("min", "softmin", "mean")
ACTIVATIONS = ("relu", "gelu", "silu", "elu", "tanh", "leaky_relu", "selu")
DATASET_MODES = ("auto", "memory", "streaming", "device")
DECODINGS = ("greedy", "exact")
# Lightning's precision spellings (``Trainer(precision=...)``).
PRECISIONS = (
    *("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true"),
    *("64", "32", "16", "bf16"),
)

# ``torch.optim`` classes usable by name, kept as a static list so that checking an options
# file does not import torch (CLI start-up stays fast); a test compares it with torch.optim.
OPTIMIZERS = (
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
)
# torch.optim classes that exist but cannot train this network as configured.
UNSUPPORTED_OPTIMIZERS: dict[str, str] = {
    "LBFGS": "it needs a closure and allows only one parameter group (weight decay uses two)",
    "SparseAdam": "it needs sparse gradients",
    "Muon": "it only handles 2-D weight matrices",
}

# Options that name files; resolved with resolve_path() only when a command needs them.
PATH_KEYS = ("event_info_file", "training_file", "validation_file", "testing_file")


@dataclass
class Options:
    # ---- files (relative to the working directory, then to the options file's folder)
    event_info_file: str = ""
    training_file: str = ""
    validation_file: str = ""
    testing_file: str = ""

    # ---- sizes
    hidden_dim: int = 64
    transformer_dim: int = 64
    transformer_dim_scale: float = 2.0
    initial_embedding_dim: int = 16
    position_embedding_dim: int = 32

    # ---- depth
    num_embedding_layers: int = 2
    num_encoder_layers: int = 4
    num_branch_embedding_layers: int = 2
    num_branch_encoder_layers: int = 2
    num_jet_embedding_layers: int = 0
    num_jet_encoder_layers: int = 1
    num_detector_layers: int = 2
    num_regression_layers: int = 2
    num_classification_layers: int = 2

    # ---- blocks
    split_symmetric_attention: bool = True
    num_attention_heads: int = 4
    transformer_activation: str = "gelu"
    linear_block_type: str = "Resnet"
    transformer_type: str = "NormFirst"
    linear_activation: str = "gelu"
    normalization: str = "LayerNorm"
    masking: str = "Filling"
    skip_connections: bool = True
    initial_embedding_skip_connections: bool = True

    # ---- data
    normalize_features: bool = True
    limit_to_num_jets: int = 0
    balance_jets: bool = False
    balance_particles: bool = False
    balance_classifications: bool = False
    partial_events: bool = True
    dataset_limit: float = 1.0
    dataset_randomization: int = 0
    train_validation_split: float = 0.95
    batch_size: int = 256
    num_dataloader_workers: int = 0
    mask_sequence_vectors: bool = True
    drop_invalid_events: bool = False  # spanet_lite: drop events with NaN/inf features instead of failing
    dataset_mode: str = "auto"  # spanet_lite: auto | memory | streaming | device
    event_weight_dataset: str = "WEIGHTS/EVENT/weight"  # spanet_lite: optional per-event physics weight

    # ---- loss
    combine_pair_loss: str = "min"
    focal_gamma: float = 0.0
    assignment_loss_scale: float = 1.0
    detection_loss_scale: float = 1.0
    kl_loss_scale: float = 0.0
    regression_loss_scale: float = 1.0
    classification_loss_scale: float = 1.0

    # ---- optimisation
    optimizer: str = "AdamW"
    learning_rate: float = 0.001
    learning_rate_cycles: int = 1
    learning_rate_warmup_epochs: float = 1.0
    l2_penalty: float = 0.0
    gradient_clip: float = 0.0
    dropout: float = 0.0
    epochs: int = 20
    num_gpu: int = 0
    verbose_output: bool = True

    # ---- run (spanet_lite)
    seed: int = 0
    precision: str = "32-true"
    detection_threshold: float = 0.5
    decoding: str = "greedy"  # greedy | exact
    compile: bool = False  # spanet_lite: torch.compile the network on CUDA (default: to be measured on GPU)

    # Keys the user set explicitly (filled by the loader; not an option itself).
    explicit: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """All options as a JSON-able dict (without bookkeeping fields)."""
        return {f.name: getattr(self, f.name) for f in option_fields()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Options) -> Options:
        """Options a run stored with :meth:`to_dict`; keys from other versions are ignored.

        Stored options were validated when the run started, so no type checks are repeated.
        """
        if isinstance(data, Options):
            return data
        known = {f.name for f in option_fields()}
        return cls(**{key: value for key, value in data.items() if key in known})

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied and recorded as explicitly set."""
        updated = dataclasses.replace(self, **changes)
        updated.explicit = self.explicit | frozenset(changes)
        return updated


def option_fields() -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(Options) if f.name != "explicit")


# SPANet architecture keys that are accepted but have no effect here (one warning names them).
UNIMPLEMENTED_KEYS: dict[str, str] = {
    "transformer_dim": "the encoder width is hidden_dim",
    "transformer_dim_scale": "the feed-forward width is 2 x hidden_dim",
    "initial_embedding_dim": "embeddings go straight to hidden_dim",
    "position_embedding_dim": "no positional encoding (outputs are permutation-equivariant)",
    "num_jet_embedding_layers": "no separate jet embedding",
    "num_jet_encoder_layers": "no separate jet encoder",
    "split_symmetric_attention": "attention is always symmetric",
    "linear_block_type": "one residual block type",
    "transformer_type": "pre-norm transformer",
    "normalization": "LayerNorm is always used",
    "masking": "padded objects are always masked out",
    "skip_connections": "residual connections are always on",
    "initial_embedding_skip_connections": "residual connections are always on",
    "mask_sequence_vectors": "padded objects are always masked out",
}

# Keys SPANet writes into options files that have no field here (run bookkeeping of its own
# scripts). Accepted and named in the same warning as UNIMPLEMENTED_KEYS when set.
SPANET_KEYS_WITHOUT_FIELD: dict[str, str] = {
    "usable_gpus": "use --gpus (or CUDA_VISIBLE_DEVICES)",
    "trial_time": "use --time-limit",
    "trial_output": "not used",
}

# How the options table groups keys (FORMATS.md section 3, plus our own "run" group).
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "files": PATH_KEYS,
    "sizes": (
        "hidden_dim",
        "transformer_dim",
        "transformer_dim_scale",
        "initial_embedding_dim",
        "position_embedding_dim",
    ),
    "depth": (
        "num_embedding_layers",
        "num_encoder_layers",
        "num_branch_embedding_layers",
        "num_branch_encoder_layers",
        "num_jet_embedding_layers",
        "num_jet_encoder_layers",
        "num_detector_layers",
        "num_regression_layers",
        "num_classification_layers",
    ),
    "blocks": (
        "split_symmetric_attention",
        "num_attention_heads",
        "transformer_activation",
        "linear_block_type",
        "transformer_type",
        "linear_activation",
        "normalization",
        "masking",
        "skip_connections",
        "initial_embedding_skip_connections",
    ),
    "data": (
        "normalize_features",
        "limit_to_num_jets",
        "balance_jets",
        "balance_particles",
        "balance_classifications",
        "partial_events",
        "dataset_limit",
        "dataset_randomization",
        "train_validation_split",
        "batch_size",
        "num_dataloader_workers",
        "mask_sequence_vectors",
        "drop_invalid_events",
        "dataset_mode",
        "event_weight_dataset",
    ),
    "loss": (
        "combine_pair_loss",
        "focal_gamma",
        "assignment_loss_scale",
        "detection_loss_scale",
        "kl_loss_scale",
        "regression_loss_scale",
        "classification_loss_scale",
    ),
    "optimisation": (
        "optimizer",
        "learning_rate",
        "learning_rate_cycles",
        "learning_rate_warmup_epochs",
        "l2_penalty",
        "gradient_clip",
        "dropout",
        "epochs",
        "num_gpu",
        "verbose_output",
    ),
    "run": ("seed", "precision", "detection_threshold", "decoding", "compile"),
}
