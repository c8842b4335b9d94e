"""Reject option values no training run could use, before any work starts: THE rule table.

Every constraint on an option's value lives here and nowhere else; the network, the data
module, training and the losses take validated options and do not check them again. Lists of
allowed names (activations, optimisers, decoding modes, precisions, pair-loss combinations)
come from :mod:`spanet_lite.config.options`, and whatever else offers those names (command-line
choices, the activation functions of the model) derives from the same tuples.

The loader checked types; this checks meaning: a learning rate must be positive, an
optimiser must exist in ``torch.optim``, a fraction must lie in its interval, and so on.
It runs on the final options (file + overrides), so a bad value a caller set (a keyword of
``train()``, a command's flag) is reported under the name the caller used rather than blamed on
the file.

Every rule is written as the condition a *good* value satisfies, so NaN always fails.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from spanet_lite.config.options import (
    ACTIVATIONS,
    COMBINE_PAIR_LOSSES,
    DATASET_MODES,
    DECODINGS,
    LAYER_COUNT_KEYS,
    NO_EFFECT,
    OPTIMIZERS,
    PAIR_FEATURES,
    PRECISIONS,
    UNSUPPORTED_OPTIMIZERS,
    Options,
    option_fields,
)
from spanet_lite.config.options_file import as_integer, check_type
from spanet_lite.config.suggest import describe, did_you_mean
from spanet_lite.errors import InputError

_Rule = tuple[str, Callable[[Any], bool], str]


def _at_least(minimum: int) -> Callable[[Any], bool]:
    return lambda value: value >= minimum


SEED_EXPECTED = "a seed in [0, 2**32)"


def is_seed(value: int) -> bool:
    """The ``seed`` option (torch, numpy and Lightning seed from it) and spanet-tune's sampler
    seed: Optuna's and ``np.random.seed``'s range, unsigned 32-bit integers."""
    return 0 <= value < 2**32


STORED_SEED_LIMIT = 2**64
"""Seeds recorded in an HDF5 attribute (the event generators' ``seed``) are stored as 64-bit
integers (int64, uint64 from 2**63); h5py has no type for a larger Python int."""


def check_seed(value: int, where: str, *, bounded: bool = False, stored: bool = False) -> int:
    """A seed a user gave, as numpy's generators take it (any integer >= 0: spanet-data's
    shuffles), with ``stored`` also below :data:`STORED_SEED_LIMIT` (the event generators, which
    record it in the file), or, with ``bounded``, in :func:`is_seed`'s range (Optuna's sampler).

    Raises a one-line InputError naming ``where``, as the caller spells the value: a command's
    flag (``--seed``), a function's keyword (``seed``); the words are the same. Returns the seed as
    an ``int`` (a notebook's ``5.0`` or ``numpy.int64(5)``), which the caller should use.
    """
    value = as_integer(value, where)
    if bounded and not is_seed(value):
        raise InputError(None, where, SEED_EXPECTED, str(value))
    if value < 0:
        raise InputError(None, where, "a seed >= 0", str(value))
    if stored and value >= STORED_SEED_LIMIT:
        raise InputError(None, where, "a seed below 2**64 (the file records it as a 64-bit integer: "
                         "int64, uint64 from 2**63)", str(value))
    return value


MAX_MATRIX_WEIGHTS = 2**60
"""No weight matrix is larger: at 8 bytes a weight it would fill a 64-bit address space. Below it a
network too large for memory fails as it is built, in one line (training.fit); above it the sizes
overflow first (torch's 64-bit sizes: a TypeError; round() of an infinite width: an OverflowError),
each a traceback."""
MATRIX_EXPECTED = ("weight matrices (hidden_dim x hidden_dim, x initial_embedding_dim and x round("
                   "transformer_dim_scale x hidden_dim)) below 2**60 weights, more than any memory holds")
LAYERS_EXPECTED = ("layers x hidden_dim below 2**60 weights (every layer built holds at least hidden_dim), "
                   "more than any memory holds")
"""Layer counts are built one by one: 1e30 layers ran until memory ran out instead of failing."""


def _finite(value: Any) -> bool:
    """Not NaN nor infinite. An integer always is: ``math.isfinite`` converts it to a float, which
    for one beyond float's range (a 400-digit count in a file) raised OverflowError, a traceback."""
    return isinstance(value, numbers.Integral) or math.isfinite(value)


_positive: Callable[[Any], bool] = lambda value: _finite(value) and value > 0  # noqa: E731
_non_negative: Callable[[Any], bool] = lambda value: _finite(value) and value >= 0  # noqa: E731
_fraction: Callable[[Any], bool] = lambda value: 0 < value <= 1  # noqa: E731

_RULES: tuple[_Rule, ...] = (
    ("learning_rate", _positive, "a learning rate > 0"),
    ("epochs", _at_least(1), "at least 1 epoch"),
    ("batch_size", _at_least(1), "a batch size of at least 1"),
    ("hidden_dim", _at_least(1), "a width of at least 1"),
    ("initial_embedding_dim", _at_least(1), "a width of at least 1"),
    ("position_embedding_dim", _non_negative, "a width >= 0"),
    ("transformer_dim_scale", _positive, "a feed-forward expansion > 0"),
    ("num_attention_heads", _at_least(1), "at least 1 attention head"),
    ("train_validation_split", _fraction, "a fraction in (0, 1] of events for training"),
    ("dataset_limit", _fraction, "a fraction in (0, 1] of the file to use"),
    (
        "dataset_randomization",
        lambda value: value < 2**32,
        "a shuffle seed below 2**32 (0 or negative: no shuffle, as in SPANet)",
    ),
    ("dropout", lambda value: 0 <= value < 1, "a dropout probability in [0, 1)"),
    ("detection_threshold", lambda value: 0 <= value <= 1, "a probability in [0, 1]"),
    ("focal_gamma", _non_negative, "a focal-loss exponent >= 0"),
    ("assignment_loss_scale", _non_negative, "a loss scale >= 0"),
    ("detection_loss_scale", _non_negative, "a loss scale >= 0"),
    ("kl_loss_scale", _non_negative, "a loss scale >= 0"),
    ("overlap_loss_scale", _non_negative, "a loss scale >= 0"),
    ("regression_loss_scale", _non_negative, "a loss scale >= 0"),
    ("classification_loss_scale", _non_negative, "a loss scale >= 0"),
    ("l2_penalty", _non_negative, "a weight decay >= 0"),
    ("gradient_clip", _non_negative, "a gradient-norm limit >= 0 (0 = no clipping)"),
    (
        "learning_rate_cycles",
        _non_negative,
        "a number of cosine cycles >= 0 (0: linear decay after warm-up, as in SPANet)",
    ),
    ("learning_rate_warmup_epochs", _non_negative, "a warm-up length >= 0 epochs"),
    ("limit_to_num_jets", _non_negative, "an object limit >= 0 (0 = no limit)"),
    ("num_dataloader_workers", _non_negative, "a number of workers >= 0"),
    ("num_gpu", _non_negative, "a number of GPUs >= 0"),
    ("seed", is_seed, SEED_EXPECTED),
    ("compile", lambda value: isinstance(value, bool) or value == "auto", 'true, false or "auto"'),
    *((key, _non_negative, "a number of layers >= 0") for key in LAYER_COUNT_KEYS),
)

_CHOICES: dict[str, tuple[str, ...]] = {
    "combine_pair_loss": COMBINE_PAIR_LOSSES,
    "transformer_activation": ACTIVATIONS,
    "linear_activation": ACTIVATIONS,
    "dataset_mode": DATASET_MODES,
    "decoding": DECODINGS,
    "pair_features": PAIR_FEATURES,
    "precision": PRECISIONS,
}


def validate_options(
    options: Options,
    source: str | Path | None = None,
    *,
    overrides: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`InputError` for the first impossible value.

    ``source`` is the options file; ``overrides`` maps the keys a caller set over it to the
    name the caller gave each (``train(event_file=...)`` sets ``event_info_file``), and their
    values are reported under that name without the file's.
    """
    given = overrides or {}

    def error(key: str, expected: str, got: str) -> InputError:
        if key in given:
            return InputError(None, given[key], expected, got)
        return InputError(source, key, expected, got)

    for item in option_fields():  # Options built in Python skipped the loader: its type rule
        key = item.name
        check_type(key, getattr(options, key), None if key in given else source, given.get(key, key))

    for key, is_good, expected in _RULES:
        value = getattr(options, key)
        if not is_good(value):
            raise error(key, expected, describe(value))

    for key, choices in _CHOICES.items():
        value = getattr(options, key)
        if value not in choices:
            raise error(key, f"one of {', '.join(choices)}", describe(value) + did_you_mean(value, choices))

    if options.optimizer in UNSUPPORTED_OPTIMIZERS:
        reason = UNSUPPORTED_OPTIMIZERS[options.optimizer]
        raise error("optimizer", f"an optimiser other than {options.optimizer} ({reason})", options.optimizer)
    if options.optimizer not in OPTIMIZERS:
        raise error(
            "optimizer",
            f"the name of a torch.optim optimiser ({', '.join(OPTIMIZERS)})",
            describe(options.optimizer) + did_you_mean(options.optimizer, OPTIMIZERS),
        )

    if options.train_validation_split >= 1 and not options.validation_file:
        raise error(
            "train_validation_split",
            "a split that leaves validation events (below 1.0), or a validation_file",
            describe(options.train_validation_split),
        )
    if options.hidden_dim >= MAX_MATRIX_WEIGHTS:  # before the float product below, which it overflows
        raise error("hidden_dim", MATRIX_EXPECTED, describe(options.hidden_dim))
    widths = {"hidden_dim": options.hidden_dim, "initial_embedding_dim": options.initial_embedding_dim,
              "transformer_dim_scale": options.transformer_dim_scale * options.hidden_dim}
    if not options.hidden_dim * max(widths.values()) < MAX_MATRIX_WEIGHTS:
        widest = max(widths, key=widths.__getitem__)
        key = "hidden_dim" if options.hidden_dim**2 >= MAX_MATRIX_WEIGHTS else widest
        raise error(key, MATRIX_EXPECTED, describe(getattr(options, key)))
    built_layers = [key for key in LAYER_COUNT_KEYS if key not in NO_EFFECT]
    if not sum(getattr(options, key) for key in built_layers) * options.hidden_dim < MAX_MATRIX_WEIGHTS:
        deepest = max(built_layers, key=lambda key: getattr(options, key))
        raise error(deepest, LAYERS_EXPECTED, describe(getattr(options, deepest)))
    if options.hidden_dim % options.num_attention_heads:
        raise error(
            "num_attention_heads",
            f"a number of heads that divides hidden_dim ({options.hidden_dim})",
            str(options.num_attention_heads),
        )


# The settings a prediction or an evaluation takes from its caller (a flag, a keyword) rather
# than from an options file. They obey the rules above for the options of the same meaning, so
# ``run.predict(path, threshold=7.5)`` is refused like ``detection_threshold: 7.5``; ``where``
# names what the caller gave (``--threshold`` for the CLI, ``threshold`` for the Python API).

def _expected(key: str) -> str:
    """The rule table's words for ``key``, so a flag or keyword of the same meaning says the same."""
    return next(expected for name, _, expected in _RULES if name == key)


THRESHOLD_EXPECTED = _expected("detection_threshold")
BATCH_SIZE_EXPECTED = _expected("batch_size")


def _rule(key: str) -> Callable[[Any], bool]:
    return next(is_good for name, is_good, _ in _RULES if name == key)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """The value as the CLI echoes it (``7.5``, ``nan``); a non-number described as such."""
    return str(value) if _is_number(value) else describe(value)


def check_chunk_size(value: Any, where: str) -> int:
    """Events per read or write of a streaming command (inspect, spanet-data, the generators):
    one rule and one line wherever the value is given, naming ``where`` (the flag or keyword).
    An integer by the rule of every integer setting (:func:`~spanet_lite.config.options_file.as_integer`:
    ``16.0`` counts, ``2.5`` or ``"10"`` do not: slicing by them fails deep in h5py), returned as
    the ``int`` the callers then use."""
    size = as_integer(value, where)
    if size < 1:
        raise InputError(None, where, "a positive number of events", str(size))
    return size


def check_threshold(value: Any, where: str) -> None:
    """A detection threshold (``detection_threshold``'s rule): refused as one line naming ``where``."""
    if not (_is_number(value) and _rule("detection_threshold")(value)):
        raise InputError(None, where, THRESHOLD_EXPECTED, _shown(value))


def check_decoding(value: Any, where: str) -> None:
    """A decoding mode, one of the names the ``decoding`` option takes (``DECODINGS``)."""
    choices = _CHOICES["decoding"]
    if value not in choices:
        got = describe(value) + did_you_mean(value, choices)
        raise InputError(None, where, f"one of {', '.join(choices)}", got)


def check_batch_size(value: Any, where: str) -> int:
    """Events per forward pass (``batch_size``'s rule, at least 1), returned as the ``int`` the
    loops need. An integer by the rule of every integer setting, as in an options file
    (:func:`~spanet_lite.config.options_file.as_integer`: ``32.0``, as SPANet writes integers,
    counts; 2.5 does not); 0 would loop forever. Each refused as one line naming ``where``."""
    size = as_integer(value, where)
    if not _rule("batch_size")(size):
        raise InputError(None, where, BATCH_SIZE_EXPECTED, _shown(value))
    return size
