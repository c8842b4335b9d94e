"""Options files: SPANet's JSON keys, strict types, warnings, impossible values, paths, table."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from spanet_lite.config import (
    NO_EFFECT,
    OPTION_GROUPS,
    SPANET_KEYS,
    Options,
    keys_without_effect,
    load_options,
    options_table,
    parse_options,
    parse_options_text,
    resolve_path,
    typed_overrides,
    validate_options,
    without_effect_summary,
)
from spanet_lite.config.options import OPTIMIZERS, UNSUPPORTED_OPTIMIZERS, option_fields
from spanet_lite.config.options_validation import LAYERS_EXPECTED, MATRIX_EXPECTED
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError, SpanetWarning


def write_options(tmp_path: Path, text: str, name: str = "options.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def parse(text: str) -> Options:
    return parse_options_text(text, source="options.json")


def parse_error(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse(text)
    return str(caught.value)


# ------------------------------------------------------------------ the reference file
def test_spanet_reference_options_load_unchanged(reference_dir: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        options = load_options(reference_dir / "example.json")
    summary = without_effect_summary(options)
    assert summary is not None and summary.startswith(
        "SPANet options without effect here (built instead in parentheses): "
        "position_embedding_dim=32 (a learned input-type vector"
    )
    named = ["position_embedding_dim", "num_jet_encoder_layers", "split_symmetric_attention"]
    named += ["linear_block_type", "transformer_type"]
    assert [key for key in NO_EFFECT if f"{key}=" in summary] == named
    assert "balance_losses" not in summary  # SPANet's own training ignores it too
    assert options.batch_size == 32
    assert options.learning_rate == 0.0015
    assert options.l2_penalty == 0.0002
    assert options.learning_rate_cycles == 5
    assert options.num_embedding_layers == 10
    assert options.balance_particles is True
    assert options.training_file == "./data/semi_leptonic_ttH/example.h5"  # kept as written; not checked
    assert len(options.explicit) == 52 and "batch_size" in options.explicit and "seed" not in options.explicit
    validate_options(options, reference_dir / "example.json")


def test_an_empty_object_gives_the_defaults():
    options = parse("{}")
    assert options == Options()
    assert options.explicit == frozenset()
    validate_options(options)


def test_resolved_options_round_trip_through_to_dict():
    options = Options().replace(batch_size=64, optimizer="SGD", dropout=0.1)
    again = parse(json.dumps(options.to_dict()))
    assert again == options
    assert again.explicit == frozenset(f.name for f in option_fields())


def test_replace_records_explicit_keys():
    options = parse('{"batch_size": 64}').replace(epochs=3)
    assert options.epochs == 3 and options.batch_size == 64
    assert options.explicit == {"batch_size", "epochs"}


# ------------------------------------------------------------------- syntax and types
def test_json_syntax_error_names_line_and_column():
    assert parse_error('{\n  "batch_size": 32\n  "epochs": 3\n}') == (
        "options.json: line 3, column 3: expected valid JSON, got a syntax error: Expecting ',' delimiter"
    )


def test_an_integer_too_long_for_python_is_one_line_in_options_and_run_files(tmp_path: Path):
    """An integer of over 4,300 digits (CPython's limit on converting text to int) made json raise
    a bare ValueError: a traceback from spanet-train for an options file, and from spanet-test,
    -predict and -export for a run's options.json or statistics.json."""
    long = "1" + "0" * 5000
    assert parse_error(f'{{\n  "batch_size": 32,\n  "epochs": {long}\n}}') == (
        "options.json: line 3: expected an options object, got an integer of 5,001 digits (Python reads "
        "at most 4,300)"
    )
    statistics = write_options(tmp_path, f'{{"feature_mean": {{"Jets": [{long}]}}}}', "statistics.json")
    with pytest.raises(InputError, match=r"statistics\.json: line 1: expected a statistics file written by "
                       r"spanet_lite, got an integer of 5,001 digits"):
        DatasetStatistics.load(statistics)


@pytest.mark.parametrize(("key", "message"), [
    ("learning_rate", "learning_rate (line 1): expected a finite number"),
    ("dropout", "dropout (line 1): expected a finite number"),
    ("hidden_dim", "hidden_dim: expected weight matrices"),
    ("num_encoder_layers", "num_encoder_layers: expected layers x hidden_dim below 2**60"),
])
def test_an_integer_beyond_floats_range_is_one_line(key: str, message: str):
    """A 400-digit integer (below Python's 4,300, above float's 1.8e308) was an OverflowError
    traceback: float(), math.isfinite() or transformer_dim_scale x hidden_dim converted it."""
    with pytest.raises(InputError) as caught:  # the loader refuses a float key, the rules the others
        validate_options(parse_options_text(f'{{"{key}": 1{"0" * 400}}}', "options.json"), "options.json")
    assert str(caught.value).startswith(f"options.json: {message}")


def test_an_integer_too_long_to_print_from_python_is_one_line():
    """repr() of an integer of over 4,300 digits raises ValueError, so describing it in the message
    was a traceback (a notebook's value; no decimal reader lets one through)."""
    with pytest.raises(InputError) as caught:
        validate_options(Options(epochs=-(10**5000)))
    assert str(caught.value) == (
        "epochs: expected at least 1 epoch, got a negative integer of about 5,001 digits (a number)")


def test_a_key_written_twice_is_an_error_on_its_second_line():
    assert parse_error('{\n  "epochs": 3,\n  "epochs": 30\n}') == (
        "options.json: epochs (line 3): expected each key once, got 'epochs' a second time"
    )


def test_top_level_must_be_an_object():
    assert (
        parse_error("[1, 2]")
        == "options.json: expected a JSON object of option keys and values, got a list [1, 2]"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"batch_size": "32"', "batch_size (line 2): expected an integer, got '32'"),
        ('"batch_size": 32.5', "batch_size (line 2): expected an integer, got 32.5 (a number)"),
        ('"batch_size": true', "batch_size (line 2): expected an integer, got true (a boolean)"),
        (
            '"partial_events": 2',
            "partial_events (line 2): expected true or false (a JSON boolean, or 0/1), got 2 (a number)",
        ),
        (
            '"partial_events": "true"',
            "partial_events (line 2): expected true or false (a JSON boolean, or 0/1), got 'true'",
        ),
        ('"learning_rate": "1e-3"', "learning_rate (line 2): expected a number, got '1e-3'"),
        ('"learning_rate": NaN', "learning_rate (line 2): expected a finite number, got nan (a number)"),
        ('"optimizer": 3', "optimizer (line 2): expected a string, got 3 (a number)"),
        ('"optimizer": null', "optimizer (line 2): expected a string, got nothing"),
        ('"hidden_dim": [64]', "hidden_dim (line 2): expected an integer, got a list [64]"),
    ],
)
def test_wrong_value_types_are_errors(line: str, message: str):
    assert parse_error("{\n  " + line + "\n}") == f"options.json: {message}"


def test_numbers_convert_where_nothing_is_lost():
    options = parse('{"learning_rate": 1, "batch_size": 32.0, "epochs": 5}')
    assert options.learning_rate == 1.0 and isinstance(options.learning_rate, float)
    assert options.batch_size == 32 and isinstance(options.batch_size, int)


def test_null_file_paths_mean_not_given():
    assert parse('{"testing_file": null}').testing_file == ""


def test_activation_names_in_spanet_spelling_are_understood():
    options = parse('{"transformer_activation": "GELU", "linear_activation": "LeakyReLU"}')
    assert (options.transformer_activation, options.linear_activation) == ("gelu", "leaky_relu")


@pytest.mark.parametrize(
    ("written", "loaded"), [("PReLU", "prelu"), ("CELU", "celu"), ("None", "none"), ("E LU", "elu")]
)
def test_spanets_activation_names_load_with_spanets_meaning(written: str, loaded: str):
    # SPANet's create_activation ignores case, underscores and spaces; "None" is no activation
    assert parse(json.dumps({"linear_activation": written})).linear_activation == loaded


# ------------------------------------------------------- SPANet spellings, unknown keys
def test_booleans_written_as_0_and_1_load_as_in_spanet():
    options = parse('{"partial_events": 1, "normalize_features": 0, "balance_jets": 1.0}')
    assert (options.partial_events, options.normalize_features, options.balance_jets) == (True, False, True)


@pytest.mark.parametrize(("written", "loaded"), [("None", "min"), ("MEAN", "mean"), ("softmin", "softmin")])
def test_combine_pair_loss_loads_as_in_spanet(written: str, loaded: str):
    # SPANet compares the lower-cased value with mean and softmin; everything else is the minimum
    options = parse(json.dumps({"combine_pair_loss": written}))
    assert options.combine_pair_loss == loaded
    validate_options(options)


def test_an_unknown_key_is_an_error_with_a_suggestion():
    assert parse_error('{\n  "learnig_rate": 0.01,\n  "colour": "blue"\n}') == (
        "options.json: expected known option keys (spanet-train --allow-unknown-keys, from Python "
        "allow_unknown_keys=True, ignores others), "
        "got unknown keys learnig_rate (line 2) (did you mean 'learning_rate'?), colour (line 3)"
    )


def test_allow_unknown_keys_ignores_them_with_one_warning():
    with pytest.warns(SpanetWarning) as record:
        options = parse_options_text(
            '{\n  "learnig_rate": 0.01,\n  "transformer_type": "NormFirst"\n}',
            source="options.json",
            allow_unknown_keys=True,
        )
    assert [str(w.message) for w in record] == [
        "options.json: unknown option keys ignored: learnig_rate (line 2) (did you mean 'learning_rate'?)"
    ]
    assert options.learning_rate == Options().learning_rate


def test_a_retired_spanet_key_is_ignored_as_spanet_v2_ignores_it_with_one_warning():
    # SPANet's options_files/tttt.json still sets its v1 detection-head depth; v2 never reads it
    with pytest.warns(SpanetWarning) as record:
        options = parse_options_text('{\n  "num_branch_classification_layers": 6\n}', source="tttt.json")
    assert [str(w.message) for w in record] == [
        "tttt.json: retired SPANet option keys ignored, as SPANet v2 ignores them: "
        "num_branch_classification_layers (line 2) (SPANet v1's detection-head depth, num_detector_layers "
        "since v2)"
    ]
    assert options == Options()


def test_a_retired_spanet_key_set_from_python_says_what_it_was_not_a_key_of_another_meaning():
    """From train()'s option_values, Options.replace or a search space it was refused with
    "did you mean 'num_classification_layers'?": the classification head, where v1's key was the
    detection head's depth."""
    from spanet_lite.tuning.space import parse_space

    for attempt in (lambda: typed_overrides({"num_branch_classification_layers": 2}),
                    lambda: Options().replace(num_branch_classification_layers=2),
                    lambda: parse_space({"num_branch_classification_layers": [1, 2]}, "space.yaml")):
        with pytest.raises(InputError) as caught:
            attempt()
        assert "did you mean" not in str(caught.value)
        assert "(retired: SPANet v1's detection-head depth, num_detector_layers since v2)" in str(
            caught.value)


def test_every_spanet_key_is_known_including_its_bookkeeping():
    text = json.dumps(
        {"usable_gpus": "0,1", "trial_time": "", "trial_output_dir": "./out", "combinatorial_scale": 0}
    )
    options = parse(text)
    assert options.usable_gpus == "0,1" and options.trial_output_dir == "./out"
    assert set(NO_EFFECT) <= SPANET_KEYS


def test_keys_without_effect_are_decided_from_effective_values_not_defaults():
    # every value spanet_lite builds as SPANet would: nothing is named
    built = Options(
        position_embedding_dim=0,
        split_symmetric_attention=False,
        transformer_type="NormFirst",
        balance_losses=False,
    )
    assert keys_without_effect(built) == {"linear_block_type": NO_EFFECT["linear_block_type"].built}
    # SPANet's own defaults (what a file that omits them gets) are named, each with what is built
    assert set(keys_without_effect(Options())) == {
        "position_embedding_dim",
        "split_symmetric_attention",
        "linear_block_type",
        "transformer_type",
    }
    assert "normalization" in keys_without_effect(Options(normalization="BatchNorm"))
    # SPANet reads these names ignoring case, underscores and spaces: layer_norm is its LayerNorm
    spelled = Options(transformer_type="norm_first", normalization="layer norm", masking="FILLING")
    assert not {"transformer_type", "normalization", "masking"} & set(keys_without_effect(spelled))


def test_keys_spanet_itself_ignores_are_never_without_effect_and_say_so_in_the_table():
    # balance_losses: JetReconstructionOptimization is not a base of SPANet's model;
    # combinatorial_scale: its use in SPANet's branch decoder is commented out
    options = Options(balance_losses=True, combinatorial_scale=0.5)
    assert not {"balance_losses", "combinatorial_scale"} & set(keys_without_effect(options))
    assert "balance_losses" not in (without_effect_summary(options) or "")
    lines = render(options_table(options))
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in lines if "│" in line}
    assert "no effect in SPANet either" in rows["balance_losses"]
    assert "no effect in SPANet either" in rows["combinatorial_scale"]


def test_table_notes_say_plainly_where_a_value_is_built_differently():
    options = Options(linear_activation="prelu", transformer_activation="silu", l2_penalty=0.01)
    lines = render(options_table(options))
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in lines if "│" in line}
    assert "one learned slope per block" in rows["linear_activation"]
    assert "only relu or gelu" in rows["transformer_activation"]
    assert "partial events also left out of validation" in rows["partial_events"]
    assert "Linear weights only" in rows["l2_penalty"]
    assert "keeps the last, short batch" in rows["batch_size"]  # SPANet's loaders drop it
    assert "after the branch transformer" in rows["num_branch_embedding_layers"]


# ------------------------------------------------------------------- impossible values
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_rate": -0.001}, "learning_rate: expected a learning rate > 0, got -0.001 (a number)"),
        ({"learning_rate": 0.0}, "learning_rate: expected a learning rate > 0, got 0.0 (a number)"),
        ({"learning_rate": float("nan")}, "learning_rate: expected a finite number, got nan (a number)"),
        ({"epochs": 0}, "epochs: expected at least 1 epoch, got 0 (a number)"),
        ({"batch_size": 0}, "batch_size: expected a batch size of at least 1, got 0 (a number)"),
        (
            {"train_validation_split": 0.0},
            "train_validation_split: expected a fraction in (0, 1] of events for training, "
            "got 0.0 (a number)",
        ),
        (
            {"train_validation_split": 1.5},
            "train_validation_split: expected a fraction in (0, 1] of events for training, "
            "got 1.5 (a number)",
        ),
        (
            {"train_validation_split": 1.0},
            "train_validation_split: expected a split that leaves validation events (below 1.0), or a "
            "validation_file, got 1.0 (a number)",
        ),
        (
            {"dataset_limit": 0.0},
            "dataset_limit: expected a fraction in (0, 1] of the file to use, got 0.0 (a number)",
        ),
        (
            {"dataset_randomization": 2**32},
            "dataset_randomization: expected a shuffle seed below 2**32 (0 or negative: no shuffle, "
            "as in SPANet), got 4294967296 (a number)",
        ),
        ({"dropout": 1.0}, "dropout: expected a dropout probability in [0, 1), got 1.0 (a number)"),
        ({"dropout": -0.1}, "dropout: expected a dropout probability in [0, 1), got -0.1 (a number)"),
        ({"focal_gamma": -1.0}, "focal_gamma: expected a focal-loss exponent >= 0, got -1.0 (a number)"),
        ({"kl_loss_scale": -0.5}, "kl_loss_scale: expected a loss scale >= 0, got -0.5 (a number)"),
        (
            {"learning_rate_cycles": -1},
            "learning_rate_cycles: expected a number of cosine cycles >= 0 "
            "(0: linear decay after warm-up, as in SPANet), got -1 (a number)",
        ),
        (
            {"transformer_dim_scale": 0.0},
            "transformer_dim_scale: expected a feed-forward expansion > 0, got 0.0 (a number)",
        ),
        (
            {"initial_embedding_dim": 0},
            "initial_embedding_dim: expected a width of at least 1, got 0 (a number)",
        ),
        (
            {"regression_loss_scale": -1.0},
            "regression_loss_scale: expected a loss scale >= 0, got -1.0 (a number)",
        ),
        (
            {"detection_threshold": 1.5},
            "detection_threshold: expected a probability in [0, 1], got 1.5 (a number)",
        ),
        (
            {"num_encoder_layers": -1},
            "num_encoder_layers: expected a number of layers >= 0, got -1 (a number)",
        ),
        (
            {"combine_pair_loss": "minimum"},
            "combine_pair_loss: expected one of min, softmin, mean, got 'minimum' (did you mean 'min'?)",
        ),
        (
            {"combine_pair_loss": "sum"},
            "combine_pair_loss: expected one of min, softmin, mean, got 'sum'",
        ),
        (
            {"transformer_activation": "swish"},
            "transformer_activation: expected one of relu, gelu, prelu, elu, celu, none, silu, tanh, "
            "leaky_relu, selu, got 'swish'",
        ),
        (
            {"dataset_mode": "stream"},
            "dataset_mode: expected one of auto, memory, streaming, device, "
            "got 'stream' (did you mean 'streaming'?)",
        ),
        ({"decoding": "optimal"}, "decoding: expected one of greedy, exact, got 'optimal'"),
        (
            {"optimizer": "adamw"},
            "optimizer: expected the name of a torch.optim optimiser "
            "(ASGD, Adadelta, Adafactor, Adagrad, Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, Rprop, SGD), "
            "got 'adamw' (did you mean 'AdamW'?)",
        ),
        (
            {"optimizer": "LBFGS"},
            "optimizer: expected an optimiser other than LBFGS "
            "(it needs a closure and allows only one parameter group (weight decay uses two)), got LBFGS",
        ),
        (
            {"num_attention_heads": 5},
            "num_attention_heads: expected a number of heads that divides hidden_dim (128), got 5",
        ),
        (  # torch's sizes overflowed: a TypeError traceback as the network was built
            {"hidden_dim": 10**30, "num_attention_heads": 1},
            f"hidden_dim: expected {MATRIX_EXPECTED}, got 1000000000000000000000000000000 (a number)",
        ),
        (
            {"initial_embedding_dim": 10**30},
            f"initial_embedding_dim: expected {MATRIX_EXPECTED}, got {10**30} (a number)",
        ),
        (  # round() of an infinite width: an OverflowError traceback
            {"transformer_dim_scale": 1e308},
            f"transformer_dim_scale: expected {MATRIX_EXPECTED}, got 1e+308 (a number)",
        ),
        (  # built one layer at a time until memory ran out
            {"num_encoder_layers": 10**30},
            f"num_encoder_layers: expected {LAYERS_EXPECTED}, got {10**30} (a number)",
        ),
    ],
)
def test_impossible_values_are_input_errors(changes: dict, message: str):
    with pytest.raises(InputError) as caught:
        validate_options(Options().replace(**changes), "options.json")
    assert str(caught.value) == f"options.json: {message}"


def test_a_negative_dataset_randomization_keeps_spanets_meaning_no_shuffle():
    """SPANet shuffles only for a positive seed; its options files may hold any value below."""
    from spanet_lite.dataset.selection import split_rows

    validate_options(Options().replace(dataset_randomization=-3), "options.json")
    training, validation = split_rows(
        10, dataset_limit=1.0, train_validation_split=0.8, randomization_seed=-3, has_validation_file=False
    )
    assert training.tolist() == list(range(8)) and validation.tolist() == [8, 9]


@pytest.mark.parametrize(("values", "message"), [
    ({"epochs": 1.5}, "epochs: expected an integer, got 1.5 (a number)"),
    ({"hidden_dim": "16"}, "hidden_dim: expected an integer, got '16'"),
    ({"partial_events": "yes"}, "partial_events: expected true or false (a JSON boolean, "
                                "or 0/1), got 'yes'"),
    ({"hiden_dim": 16}, "hiden_dim: expected a known option key, got 'hiden_dim' "
                        "(did you mean 'hidden_dim'?)"),
])
def test_values_from_python_are_typed_like_a_files(values: dict, message: str):
    """train(epochs=1.5) used to fail deep inside Lightning, after the run folder was made."""
    with pytest.raises(InputError) as caught:
        typed_overrides(values)
    assert str(caught.value) == message


def test_numpy_numbers_from_python_become_plain_numbers():
    import numpy as np

    typed = typed_overrides({"epochs": np.int64(3), "learning_rate": np.float32(0.5), "batch_size": 64.0})
    assert typed == {"epochs": 3, "learning_rate": 0.5, "batch_size": 64}
    assert [type(v) for v in typed.values()] == [int, float, int]


def test_numpy_booleans_from_python_are_booleans_in_every_way_in():
    """``partial_events=np.bool_(True)`` (a comparison, an array element) was refused as "expected true
    or false, got np.True_ (bool)" by train()'s keywords, a dict and an Options alike."""
    import numpy as np

    from spanet_lite.config import typed_options

    typed = typed_overrides({"partial_events": np.True_, "compile": np.False_})
    assert typed == {"partial_events": True, "compile": False}
    assert [type(v) for v in typed.values()] == [bool, bool]
    assert parse_options({"normalize_features": np.False_}).normalize_features is False
    built = Options(balance_jets=np.True_)
    validate_options(built, "options.json")
    assert type(typed_options(built).balance_jets) is bool
    with pytest.raises(InputError, match="hidden_dim: expected an integer"):
        typed_overrides({"hidden_dim": np.True_})  # a boolean is still no number


@pytest.mark.parametrize(("options", "message"), [
    (Options(batch_size="64"), "options.json: batch_size: expected an integer, got '64'"),
    (Options(dropout="0.1"), "options.json: dropout: expected a number, got '0.1'"),
    (Options(partial_events=2), "options.json: partial_events: expected true or false (a JSON boolean, or "
                                "0/1), got 2 (a number)"),
])
def test_options_built_in_python_are_type_checked_before_their_rules(options: Options, message: str):
    with pytest.raises(InputError) as caught:
        validate_options(options, "options.json")
    assert str(caught.value) == message


def test_options_built_in_python_take_what_the_file_takes_and_come_out_typed():
    """One type rule (the loader's) for files, flags, keywords and Options built in Python."""
    import numpy as np

    from spanet_lite.config import typed_options

    built = Options(hidden_dim=np.int64(32), dropout=np.float32(0.25), epochs=2.0,
                    training_file=Path("/data/x.h5")).replace(batch_size=np.int32(64))
    validate_options(built, "options.json")
    typed = typed_options(built)
    assert (typed.hidden_dim, typed.dropout, typed.epochs, typed.batch_size, typed.training_file) == (
        32, 0.25, 2, 64, "/data/x.h5")
    assert [type(v) for v in (typed.hidden_dim, typed.dropout, typed.epochs)] == [int, float, int]
    assert typed.explicit == built.explicit


def test_replacing_an_unknown_key_names_the_nearest_one():
    with pytest.raises(InputError) as caught:
        Options().replace(learnig_rate=0.1)
    assert str(caught.value) == "learnig_rate: expected a known option key, got 'learnig_rate' " \
                                "(did you mean 'learning_rate'?)"


def test_a_value_a_caller_set_is_named_as_the_caller_named_it_not_blamed_on_the_file():
    options = Options().replace(epochs=0)
    with pytest.raises(InputError) as caught:
        validate_options(options, "options.json")
    assert str(caught.value) == "options.json: epochs: expected at least 1 epoch, got 0 (a number)"
    with pytest.raises(InputError) as caught:
        validate_options(options, "options.json", overrides={"epochs": "-e/--epochs"})
    assert str(caught.value) == "-e/--epochs: expected at least 1 epoch, got 0 (a number)"


def test_an_override_is_typed_under_the_name_its_caller_gave_it():
    """train(event_file=...) sets event_info_file: a refusal names event_file."""
    with pytest.raises(InputError) as caught:
        typed_overrides({"event_info_file": 3}, {"event_info_file": "event_file"})
    assert str(caught.value).startswith("event_file: expected ")


def test_static_optimiser_list_matches_torch_optim():
    optim = pytest.importorskip("torch.optim")
    available = {
        name
        for name in dir(optim)
        if isinstance(getattr(optim, name), type)
        and issubclass(getattr(optim, name), optim.Optimizer)
        and name != "Optimizer"
    }
    assert set(OPTIMIZERS) | set(UNSUPPORTED_OPTIMIZERS) == available
    assert not set(OPTIMIZERS) & set(UNSUPPORTED_OPTIMIZERS)


def test_checking_options_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from spanet_lite.config import parse_options, validate_options; "
        "validate_options(parse_options({'optimizer': 'SGD'})); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------ paths
def test_paths_resolve_from_the_working_directory_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.h5").write_bytes(b"")
    (tmp_path / "run" / "data").mkdir(parents=True)
    (tmp_path / "run" / "data" / "train.h5").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    found = resolve_path("data/train.h5", "training_file", tmp_path / "run" / "options.json")
    assert found == Path("data/train.h5")


def test_paths_fall_back_to_the_options_file_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "topology.yaml").write_text("")
    monkeypatch.chdir(tmp_path / "configs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = resolve_path("topology.yaml", "event_info_file", tmp_path / "configs" / "options.json")
    assert found == tmp_path / "configs" / "topology.yaml"


def test_missing_path_error_names_both_places_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    options_path = tmp_path / "configs" / "options.json"
    with pytest.raises(InputError) as caught:
        resolve_path("data/train.h5", "training_file", options_path)
    assert str(caught.value) == (
        f"{options_path}: training_file: expected an existing file, got 'data/train.h5': "
        f"not found at {tmp_path / 'data/train.h5'} nor at {tmp_path / 'configs' / 'data/train.h5'}"
    )


def test_an_event_file_passed_as_the_options_file_is_named_so(tmp_path: Path):
    """'spanet-train topology.yaml' said only 'expected valid JSON, got a syntax error'."""
    event_file = tmp_path / "topology.yaml"
    event_file.write_text("# ttbar\nINPUTS:\n  SEQUENTIAL:\n    Jets: {pt: none}\nEVENT:\n  t: [b]\n")
    with pytest.raises(InputError) as caught:
        load_options(event_file)
    assert str(caught.value) == (
        f"{event_file}: line 1, column 1: expected valid JSON, got a syntax error: Expecting value (this is "
        "an event file, YAML: pass the options JSON, and the event file as -ef/--event-file or the "
        "options' event_info_file)"
    )
    with pytest.raises(InputError) as caught:  # other broken JSON: no hint
        parse_options_text('{"epochs": 1,}', "o.json")
    assert "event file" not in str(caught.value)


def test_missing_path_error_names_one_place_when_the_options_file_is_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:  # said 'not found at X nor at X', the same X twice
        resolve_path("./data/train.h5", "training_file", "options.json")
    assert str(caught.value) == (
        f"options.json: training_file: expected an existing file, got './data/train.h5': "
        f"not found at {tmp_path / 'data/train.h5'}"
    )


def test_absolute_and_empty_paths(tmp_path: Path):
    present = tmp_path / "x.h5"
    present.write_bytes(b"")
    assert resolve_path(str(present), "training_file", None) == present
    with pytest.raises(
        InputError, match=r"training_file: expected an existing file, got '/.*missing.h5': no such"
    ):
        resolve_path(str(tmp_path / "missing.h5"), "training_file", tmp_path / "o.json")
    with pytest.raises(InputError, match=r"testing_file: expected a file name .*, got nothing"):
        resolve_path("", "testing_file", None)


# ---------------------------------------------------------------------- files on disk
def test_missing_options_file(tmp_path: Path):
    with pytest.raises(InputError, match=r"nope\.json: expected an existing options file, got no such file"):
        load_options(tmp_path / "nope.json")


def test_load_options_reports_the_path(tmp_path: Path):
    path = write_options(tmp_path, '{"epochs": "many"}')
    with pytest.raises(InputError) as caught:
        load_options(path)
    assert caught.value.path == str(path)
    assert caught.value.where == "epochs (line 1)"


def test_parse_options_accepts_a_decoded_mapping():
    assert parse_options({"epochs": 2}).epochs == 2


# ------------------------------------------------------------------------------ table
def test_option_groups_cover_every_option_once():
    grouped = [key for keys in OPTION_GROUPS.values() for key in keys]
    assert sorted(grouped) == sorted(f.name for f in option_fields())
    assert list(OPTION_GROUPS)[:7] == ["files", "sizes", "depth", "blocks", "data", "loss", "optimisation"]


def render(table) -> list[str]:
    console = Console(record=True, width=200, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


def test_table_shows_groups_values_and_where_non_defaults_came_from():
    options = parse('{"batch_size": 32, "linear_block_type": "Resnet", "seed": 3}').replace(epochs=1)
    table = options_table(options, {"epochs": "1"})
    lines = render(table)
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:4]]
        for line in lines
        if "│" in line
    }
    assert rows["epochs"] == ["1", "(command line)"]
    kept = "keeps the last, short batch of an epoch and of validation (SPANet drops both)"
    assert rows["batch_size"] == ["32", f"default 4096; {kept}"]
    built = NO_EFFECT["linear_block_type"].built
    assert rows["linear_block_type"] == ["Resnet", f"default GRU; no effect: {built}"]
    assert rows["transformer_type"] == ["Gated", f"no effect: {NO_EFFECT['transformer_type'].built}"]
    assert rows["seed"] == ["3", "default 0; spanet_lite"]
    assert rows["learning_rate"] == ["0.001", ""]
    group_order = [name for name in rows if name in OPTION_GROUPS]
    assert group_order == list(OPTION_GROUPS)
    assert len(rows) == len(option_fields()) + len(OPTION_GROUPS)


def test_table_highlights_exactly_the_non_default_rows():
    options = Options().replace(batch_size=32)
    table = options_table(options, ["epochs"])
    keys = list(table.columns[0].cells)
    styles = {key.strip(): row.style for key, row in zip(keys, table.rows)}
    highlighted = {key for key, style in styles.items() if style == "bold yellow"}
    assert highlighted == {"batch_size", "epochs"}


def test_options_dataclass_fields_have_json_types():
    types = {f.name: str(f.type) for f in option_fields()}
    assert types.pop("compile") == "bool | str"  # true, false or "auto", checked by the loader
    assert set(types.values()) == {"str", "int", "float", "bool"}


def test_options_example_in_the_config_readme_loads(repo_root: Path):
    import re

    text = (repo_root / "docs" / "event_and_options_files.md").read_text()
    (block,) = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    options = parse(block)
    validate_options(options)
    assert options.learning_rate == 0.0015


def test_a_byte_order_mark_is_fine(tmp_path: Path):
    path = tmp_path / "bom.json"
    path.write_text('{"epochs": 2}', encoding="utf-8-sig")
    assert load_options(path).epochs == 2
