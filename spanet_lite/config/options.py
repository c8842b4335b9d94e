"""Training options: SPANet's option-file keys, with defaults, as one plain dataclass.

The field names are exactly SPANet's JSON keys (:data:`SPANET_KEYS`, every key of SPANet's
``spanet/options.py``) with SPANet's defaults, so an existing ``options.json`` loads unchanged
and an omitted key means what it means in SPANet. Fields marked *spanet_lite* are ours.
SPANet keys whose meaning is not built here are in :data:`NO_EFFECT`; which of them a run
ignores is decided from its effective values (:func:`keys_without_effect`), and loading names
them in one line. Keys SPANet's own training never reads (:data:`UNUSED_IN_SPANET`:
``transformer_dim``, ``linear_prelu_activation``, ``balance_losses``, ``combinatorial_scale`` and
the search bookkeeping) are unused here too, with the same meaning, and are never named there.
Keys built with a documented difference get a note in the options table (:func:`mapped_notes`).

Reading a file is :func:`spanet_lite.config.options_file.load_options`; impossible values
are caught by :func:`spanet_lite.config.options_validation.validate_options`, called after
command-line overrides are applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spanet_lite.config.suggest import did_you_mean
from spanet_lite.errors import InputError
from spanet_lite.hdf5_paths import EVENT_WEIGHT_DATASET

# SPANet also accepts "None"; its code then combines as "min" (the loader maps it so).
COMBINE_PAIR_LOSSES = ("min", "softmin", "mean")
# SPANet's names (its create_activation: relu, prelu, elu, celu, gelu; "None" = no activation),
# then spanet_lite's extensions (SPANet builds no activation for these names).
SPANET_ACTIVATIONS = ("relu", "gelu", "prelu", "elu", "celu", "none")
ACTIVATIONS = (*SPANET_ACTIVATIONS, "silu", "tanh", "leaky_relu", "selu")
DATASET_MODES = ("auto", "memory", "streaming", "device")
DECODINGS = ("greedy", "exact")
PAIR_FEATURES = ("auto", "none", "physics")
# Lightning's precision spellings (``Trainer(precision=...)``), and "auto": 32-true on the CPU,
# mixed precision on a GPU (training.hardware.gpu_mixed_precision).
PRECISIONS = (
    "auto",
    *("64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true"),
    *("64", "32", "16", "bf16"),
)
PRECISION_SHORT_FORMS = {"64": "64-true", "32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed"}
"""Lightning's older spellings and the names it reads them as (it warns about the short ones)."""


def full_precision(name: str) -> str:
    """``name`` (one of :data:`PRECISIONS`) as Lightning reads it: ``"bf16"`` is ``"bf16-mixed"``."""
    return PRECISION_SHORT_FORMS.get(name, name)

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
LAYER_COUNT_KEYS = (
    "num_embedding_layers",
    "num_encoder_layers",
    "num_branch_embedding_layers",
    "num_branch_encoder_layers",
    "num_jet_embedding_layers",
    "num_jet_encoder_layers",
    "num_detector_layers",
    "num_regression_layers",
    "num_classification_layers",
)
"""The options that count network layers (each ``>= 0``; the table's "depth" group)."""


@dataclass
class Options:
    # Every SPANet key (spanet/options.py, v2.2.0) with SPANet's default, so a file that omits a
    # key trains what SPANet would; fields marked *spanet_lite* are ours. Keys whose SPANet
    # meaning is not built here are described in NO_EFFECT.

    # ---- files (relative to the working directory, then to the options file's folder)
    event_info_file: str = ""
    training_file: str = ""
    validation_file: str = ""
    testing_file: str = ""

    # ---- sizes
    hidden_dim: int = 128
    transformer_dim: int = 128
    transformer_dim_scale: float = 2.0
    initial_embedding_dim: int = 16
    position_embedding_dim: int = 32

    # ---- depth
    num_embedding_layers: int = 10
    num_encoder_layers: int = 4
    num_branch_embedding_layers: int = 4
    num_branch_encoder_layers: int = 4
    num_jet_embedding_layers: int = 0
    num_jet_encoder_layers: int = 0
    num_detector_layers: int = 1
    num_regression_layers: int = 1
    num_classification_layers: int = 1

    # ---- blocks
    split_symmetric_attention: bool = True
    num_attention_heads: int = 4
    transformer_activation: str = "gelu"
    linear_block_type: str = "GRU"
    transformer_type: str = "Gated"
    linear_activation: str = "gelu"
    normalization: str = "LayerNorm"
    masking: str = "Filling"
    skip_connections: bool = True
    initial_embedding_skip_connections: bool = True
    linear_prelu_activation: bool = True
    # spanet_lite: ParT pair features as attention bias; auto = physics when every object input has
    # pt, eta, phi (or sin_phi, cos_phi) and mass, else none (docs/model.md, "Pairwise inputs")
    pair_features: str = "auto"

    # ---- data
    normalize_features: bool = True
    limit_to_num_jets: int = 0
    balance_jets: bool = False
    balance_particles: bool = False
    balance_classifications: bool = False
    partial_events: bool = False
    dataset_limit: float = 1.0
    dataset_randomization: int = 0
    train_validation_split: float = 0.95
    batch_size: int = 4096
    num_dataloader_workers: int = 4
    mask_sequence_vectors: bool = True
    drop_invalid_events: bool = False  # spanet_lite: drop events with NaN/inf features instead of failing
    dataset_mode: str = "auto"  # spanet_lite: auto | memory | streaming | device
    # spanet_lite: training batches of events of similar size, so trimming cuts more (dataset.grouped_order)
    group_by_multiplicity: bool = True
    event_weight_dataset: str = EVENT_WEIGHT_DATASET  # spanet_lite: optional per-event physics weight

    # ---- loss
    combine_pair_loss: str = "min"
    focal_gamma: float = 0.0
    combinatorial_scale: float = 0.0
    assignment_loss_scale: float = 1.0
    detection_loss_scale: float = 0.0
    kl_loss_scale: float = 0.0
    regression_loss_scale: float = 0.0
    classification_loss_scale: float = 0.0
    overlap_loss_scale: float = 0.0  # spanet_lite: object-overlap penalty (losses.overlap_penalty)
    balance_losses: bool = True

    # ---- optimisation
    optimizer: str = "AdamW"
    learning_rate: float = 0.001
    learning_rate_cycles: int = 0
    learning_rate_warmup_epochs: float = 1.0
    l2_penalty: float = 0.0
    gradient_clip: float = 0.0
    dropout: float = 0.0
    epochs: int = 100
    num_gpu: int = 1
    verbose_output: bool = True

    # ---- SPANet's hyper-parameter search bookkeeping (its sherpa scripts; unused in training)
    usable_gpus: str = ""
    trial_time: str = ""
    trial_output_dir: str = "./test_output"

    # ---- run (spanet_lite)
    seed: int = 0
    precision: str = "auto"  # 32-true on the CPU, bf16-mixed (16-mixed) on a GPU
    detection_threshold: float = 0.5
    decoding: str = "greedy"  # greedy | exact
    # spanet_lite: torch.compile of the network: true, false, or auto = only long CPU runs
    # (training.compilation.choose_compile)
    compile: bool | str = "auto"

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
        if "pair_features" not in data:  # a run stored before the option existed had no pair features
            data = {**data, "pair_features": "none"}
        if "compile" not in data:  # stored before "auto" existed: those runs never compiled unasked
            data = {**data, "compile": False}
        if "group_by_multiplicity" not in data:  # stored before the option existed: plain shuffling
            data = {**data, "group_by_multiplicity": False}
        return cls(**{key: value for key, value in data.items() if key in known})

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied and recorded as explicitly set; a key that is no option
        is a one-line InputError with the nearest key (not dataclasses' TypeError)."""
        known = {f.name for f in option_fields()}
        for key in changes:
            if key not in known:
                raise InputError(None, key, "a known option key", repr(key) + unknown_key_hint(key, known))
        updated = dataclasses.replace(self, **changes)
        updated.explicit = self.explicit | frozenset(changes)
        return updated


def option_fields() -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(Options) if f.name != "explicit")


SPANET_KEYS: frozenset[str] = frozenset(
    f.name
    for f in dataclasses.fields(Options)
    if f.name
    not in {
        "explicit",
        "drop_invalid_events",
        "dataset_mode",
        "group_by_multiplicity",
        "event_weight_dataset",
        "overlap_loss_scale",
        "seed",
        "precision",
        "detection_threshold",
        "decoding",
        "compile",
        "pair_features",
    }
)
"""Every key of SPANet's ``spanet/options.py``; the other fields are spanet_lite's own."""


@dataclass(frozen=True)
class NoEffect:
    """A SPANet key whose meaning spanet_lite does not build (for most of its values)."""

    built: str
    """What spanet_lite builds instead, in a few words."""
    same_as_spanet: Callable[[Any], bool]
    """True for the values at which SPANet would build what we build (the key then keeps its
    meaning, and nothing is reported)."""


def _is(*values: Any) -> Callable[[Any], bool]:
    return lambda value: value in values


def _spanet_spelling(name: str) -> str:
    """A layer-type name as SPANet compares it (create_transformer, create_normalization,
    create_masking): lower case, without underscores or spaces."""
    return name.lower().replace("_", "").replace(" ", "")


def _named(name: str) -> Callable[[str], bool]:
    """True for ``name`` in any spelling SPANet reads as it (``layer_norm`` is its LayerNorm)."""
    return lambda value: _spanet_spelling(value) == _spanet_spelling(name)


NO_EFFECT: dict[str, NoEffect] = {
    "position_embedding_dim": NoEffect(
        "a learned input-type vector of width hidden_dim is added to each object", _is(0)
    ),
    "num_jet_embedding_layers": NoEffect("no per-product layers before the tensor attention", _is(0)),
    "num_jet_encoder_layers": NoEffect("no per-product encoder before the tensor attention", _is(0)),
    "split_symmetric_attention": NoEffect(
        "one joint (CP-factorised) symmetric tensor attention per particle", _is(False)
    ),
    "linear_block_type": NoEffect("pre-norm residual blocks x + act(W LN(x))", lambda value: False),
    "transformer_type": NoEffect("pre-norm transformer layers (SPANet's NormFirst)", _named("NormFirst")),
    "normalization": NoEffect("LayerNorm", _named("LayerNorm")),
    "masking": NoEffect("padded objects are masked out of attention and outputs", _named("Filling")),
    "skip_connections": NoEffect("residual connections are always on", _is(True)),
    "initial_embedding_skip_connections": NoEffect(
        "the embedding stack's equal-width layer is always residual", _is(True)
    ),
    "mask_sequence_vectors": NoEffect("padded objects are always masked", _is(True)),
}

UNUSED_IN_SPANET: dict[str, str] = {
    "transformer_dim": "deprecated; unused in SPANet too",
    "linear_prelu_activation": "deprecated; unused in SPANet too",
    "balance_losses": "no effect in SPANet either (its gradient balancing is not in its model)",
    "combinatorial_scale": "no effect in SPANet either (its use is commented out)",
    "usable_gpus": "bookkeeping of SPANet's search scripts; not read by training",
    "trial_time": "bookkeeping of SPANet's search scripts; not read by training",
    "trial_output_dir": "bookkeeping of SPANet's search scripts; not read by training",
}
"""SPANet keys that SPANet's own training does not read: same meaning (none) here, so they are
never among the keys without effect; the options table says so in the row's note."""

RETIRED_SPANET_KEYS: dict[str, str] = {
    "num_branch_classification_layers": "SPANet v1's detection-head depth, num_detector_layers since v2",
}
"""Keys of SPANet's older options files (its own ``options_files/tttt.json`` still has one) that
SPANet v2 stores and never reads: the loader accepts them with one warning naming each and what it
was, since a suggestion for an unknown key would offer a key of another meaning."""


def unknown_key_hint(key: Any, known: Iterable[str]) -> str:
    """What a refusal of the unknown option ``key`` adds: for a retired SPANet key, what it was
    (the nearest name, ``num_classification_layers`` for v1's detection-head depth, means something
    else), otherwise the nearest of ``known`` (``" (did you mean 'learning_rate'?)"``) or nothing."""
    if key in RETIRED_SPANET_KEYS:
        return f" (retired: {RETIRED_SPANET_KEYS[key]})"
    return did_you_mean(key, known)


def mapped_notes(options: Options) -> dict[str, str]:
    """Options table notes for SPANet keys whose *value* is built differently from SPANet
    (docs/migrating_from_spanet.md, rows marked "mapped"); key -> the plain difference."""
    notes: dict[str, str] = {}
    for key in ("linear_activation", "transformer_activation"):
        value = getattr(options, key)
        if key == "transformer_activation" and value not in ("relu", "gelu"):
            notes[key] = "spanet_lite: SPANet's transformer layers take only relu or gelu"
        elif value == "prelu":
            notes[key] = "one learned slope per block (SPANet: one per feature)"
        elif value == "none":
            notes[key] = "no activation (SPANet's None)"
        elif value not in SPANET_ACTIVATIONS:
            notes[key] = f"spanet_lite extension (SPANet builds no activation for {value})"
    if not options.partial_events:
        notes["partial_events"] = "partial events also left out of validation (SPANet: training only)"
    notes["batch_size"] = "keeps the last, short batch of an epoch and of validation (SPANet drops both)"
    if options.num_branch_embedding_layers:
        notes["num_branch_embedding_layers"] = "run after the branch transformer (SPANet: before it)"
    if options.l2_penalty:
        notes["l2_penalty"] = "decays Linear weights only (SPANet: every parameter but biases)"
    return notes


def keys_without_effect(options: Options) -> dict[str, str]:
    """SPANet keys whose *effective* value (given or default) asks for something not built here.

    Decided from the value alone, never from whether it differs from a default: a file that
    omits ``linear_block_type`` gets SPANet's GRU default, which is not built, so it is named.
    Maps key -> what is built instead.
    """
    return {
        key: rule.built for key, rule in NO_EFFECT.items() if not rule.same_as_spanet(getattr(options, key))
    }


def without_effect_summary(options: Options) -> str | None:
    """The one line naming every key without effect (None when there is none)."""
    keys = keys_without_effect(options)
    if not keys:
        return None
    named = ", ".join(f"{key}={getattr(options, key)!r} ({built})" for key, built in keys.items())
    return f"SPANet options without effect here (built instead in parentheses): {named}"


# How the options table groups keys (docs/formats.md section 3, plus our own "run" group).
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "files": PATH_KEYS,
    "sizes": (
        "hidden_dim",
        "transformer_dim",
        "transformer_dim_scale",
        "initial_embedding_dim",
        "position_embedding_dim",
    ),
    "depth": LAYER_COUNT_KEYS,
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
        "linear_prelu_activation",
        "pair_features",
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
        "group_by_multiplicity",
        "event_weight_dataset",
    ),
    "loss": (
        "combine_pair_loss",
        "focal_gamma",
        "combinatorial_scale",
        "assignment_loss_scale",
        "detection_loss_scale",
        "kl_loss_scale",
        "regression_loss_scale",
        "classification_loss_scale",
        "overlap_loss_scale",
        "balance_losses",
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
    "bookkeeping": ("usable_gpus", "trial_time", "trial_output_dir"),
    "run": ("seed", "precision", "detection_threshold", "decoding", "compile"),
}
