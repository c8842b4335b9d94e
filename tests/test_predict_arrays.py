"""``run.predict(features, masks)`` checks in-memory arrays against the run, as a file is checked.

A notebook hands arrays straight to the network, so a slip there (a mask narrower than the
objects, a mask for fewer events, features transposed, one event without its batch axis, NaN on
a real object) would otherwise be a torch traceback or, worse, plausible wrong numbers. Each is
one :class:`InputError` line naming the argument and the input.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from _evaluation_helpers import make_run_dir, write_ttbar_file
from _model_helpers import ttbar_yaml

from spanet_lite.errors import InputError
from spanet_lite.evaluation.run import Run, load_run

JETS = ("mass", "pt", "eta", "phi", "btag")
YAML = ttbar_yaml("{mass: log_normalize, pt: log_normalize, eta: normalize, phi: normalize, btag: none}",
                  global_inputs="Met: {met: log_normalize, phi: normalize}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path, dict, dict]:
    folder = tmp_path_factory.mktemp("arrays")
    data = write_ttbar_file(folder / "events.h5", num_events=40)
    rng = np.random.default_rng(3)
    with h5py.File(data, "a") as file:
        file["INPUTS/Met/met"] = rng.uniform(10, 200, 40).astype(np.float32)
        file["INPUTS/Met/phi"] = rng.uniform(-3, 3, 40).astype(np.float32)
        features = {"Jets": np.stack([file[f"INPUTS/Jets/{f}"][:] for f in JETS], axis=-1),
                    "Met": np.stack([file["INPUTS/Met/met"][:], file["INPUTS/Met/phi"][:]], axis=-1)}
        masks = {"Jets": file["INPUTS/Jets/MASK"][:]}
    return load_run(make_run_dir(folder / "run", YAML, data)), data, features, masks


X = "features['Jets']: expected (events, objects, 5) with 5 the event file's features (mass, pt, ...), got "
SLIPS = [
    ("narrow mask", lambda f, m: ({**f}, {"Jets": m["Jets"][:, :5]}),
     "masks['Jets']: expected (events, objects) = (40, 10) as features['Jets'], got (40, 5)"),
    ("mask of fewer events", lambda f, m: ({**f}, {"Jets": m["Jets"][:10]}),
     "masks['Jets']: expected 40 events, as features['Jets'] has, got 10 (shape (10, 10))"),
    ("features of fewer events", lambda f, m: ({**f, "Jets": f["Jets"][:10]}, m),
     "masks['Jets']: expected 10 events, as features['Jets'] has, got 40 (shape (40, 10))"),
    ("masks left out", lambda f, m: (f, None),
     "masks: expected a dict from each SEQUENTIAL input (Jets) to its (events, objects) bool mask, "
     "as arrays need one, got None"),
    ("unknown input name", lambda f, m: ({"Source": f["Jets"], "Met": f["Met"]}, m),
     "features['Source']: expected an input of the run's event file (Jets, Met), "
     "got a name it does not have"),
    ("GLOBAL input left out", lambda f, m: ({"Jets": f["Jets"]}, m),
     "features: expected an entry for every input (Jets, Met), got none for Met"),
    ("four features", lambda f, m: ({**f, "Jets": f["Jets"][..., :4]}, m), X + "(40, 10, 4)"),
    ("transposed", lambda f, m: ({**f, "Jets": f["Jets"].transpose(0, 2, 1)}, m),
     X + "(40, 5, 10) (transposed? the features are the last axis)"),
    ("one event", lambda f, m: ({**f, "Jets": f["Jets"][0]}, m),
     X + "(10, 5) (one event? pass x[None] or x[i:i + 1])"),
    ("mask of strings", lambda f, m: (f, {"Jets": np.where(m["Jets"], "y", "n")}),
     "masks['Jets']: expected an array of numbers, got dtype <U1"),
    ("GLOBAL mask with a False", lambda f, m: (f, {**m, "Met": np.arange(40)[:, None] > 0}),
     "masks['Met']: expected an all-True (events, 1) mask or none (a GLOBAL input is always one vector "
     "per event), got False in 1 event(s)"),
]


@pytest.mark.parametrize(("make", "line"), [s[1:] for s in SLIPS], ids=[s[0] for s in SLIPS])
def test_arrays_that_do_not_fit_the_run_are_one_line_naming_the_argument_and_input(setup, make, line):
    run, _, features, masks = setup
    with pytest.raises(InputError) as error:
        run.predict(*make(features, masks))
    assert str(error.value) == line


def test_nan_on_a_real_object_is_refused_as_in_a_file_and_nan_in_a_padded_slot_is_harmless(setup):
    run, _, features, masks = setup
    jets, mask = features["Jets"].copy(), masks["Jets"]
    jets[3, 0, 1] = np.nan  # event 3's first jet is real
    with pytest.raises(InputError, match=r"^features\['Jets'\]: expected finite values for real objects, "
                       r"got NaN/inf in 1 object\(s\) of 1 event\(s\), the first event 3$"):
        run.predict({**features, "Jets": jets}, masks)
    padded = features["Jets"].copy()
    padded[~mask] = np.nan
    clean = run.predict(features, masks)
    assert np.isfinite(run.predict({**features, "Jets": padded}, masks).detection_probabilities["t1"]).all()
    np.testing.assert_array_equal(run.predict({**features, "Jets": padded}, masks).assignments["t1"],
                                  clean.assignments["t1"])


def test_a_log_feature_at_or_below_minus_one_is_refused_as_in_a_file(setup):
    """log(x + 1) of pt = -3 is NaN inside the network; on a padded slot it is harmless."""
    run, _, features, masks = setup
    jets, met = features["Jets"].copy(), features["Met"].copy()
    jets[5, 0, 1] = -3.0  # event 5's first jet is real
    with pytest.raises(InputError) as raised:
        run.predict({**features, "Jets": jets}, masks)
    assert str(raised.value) == ("features['Jets'][..., 1] (pt): expected values above -1 for the log option "
                                 "(x -> log(x + 1)), got -3 in event 5 (1 event(s) in all)")
    met[7, 0] = -1.0
    with pytest.raises(InputError, match=r"^features\['Met'\]\[\.\.\., 0\] \(met\): .* got -1 in event 7 "):
        run.predict({**features, "Met": met}, masks)
    padded = features["Jets"].copy()
    padded[~masks["Jets"]] = -3.0
    np.testing.assert_array_equal(run.predict({**features, "Jets": padded}, masks).assignments["t1"],
                                  run.predict(features, masks).assignments["t1"])


def test_a_global_input_in_spanets_one_vector_layout_predicts_the_same(setup):
    run, data, features, masks = setup
    spanet_layout = {**features, "Met": features["Met"][:, None, :]}  # (B, 1, F), as the ONNX export
    as_spanet = run.predict(spanet_layout, {**masks, "Met": np.ones((40, 1), bool)}, threshold=0.0)
    from_file = run.predict(data, threshold=0.0)
    np.testing.assert_array_equal(as_spanet.assignments["t2"], from_file.assignments["t2"])


def test_a_mask_value_means_the_same_in_arrays_and_in_a_file_non_zero_is_a_real_object(setup, tmp_path):
    """SPANet reads MASK as bool, so a mask of 0 and 2 keeps the objects a bool mask keeps: one
    rule (``hdf5_layout.mask_values``) for ``run.predict``'s arrays and a file's MASK dataset."""
    run, data, features, masks = setup
    twos = np.where(masks["Jets"], 2, 0).astype(np.int8)
    expected = run.predict(features, masks, threshold=0.0).assignments["t1"]
    from_arrays = run.predict(features, {"Jets": twos}, threshold=0.0)
    np.testing.assert_array_equal(from_arrays.assignments["t1"], expected)
    copy = tmp_path / "mask_of_twos.h5"
    copy.write_bytes(Path(data).read_bytes())
    with h5py.File(copy, "a") as file:
        del file["INPUTS/Jets/MASK"]
        file["INPUTS/Jets/MASK"] = twos
    np.testing.assert_array_equal(run.predict(copy, threshold=0.0).assignments["t1"], expected)
    np.testing.assert_array_equal(run.predict(data, threshold=0.0).assignments["t1"], expected)


def test_masks_given_with_a_file_are_refused_not_ignored(setup):
    run, data, _, masks = setup
    with pytest.raises(InputError, match=r"^masks: expected None when source is a file \(the file's own "
                       r"INPUTS are read\), got dict$"):
        run.predict(data, masks)


def test_zero_events_give_every_key_of_any_other_call_with_arrays_of_length_zero(setup):
    """An empty selection (``X[cut]`` that kept nothing) is indexed like any other answer."""
    run, _, features, masks = setup
    nothing = run.predict({k: v[:0] for k, v in features.items()}, {"Jets": masks["Jets"][:0]},
                          threshold=0.5, embeddings=True)
    two = run.predict({k: v[:2] for k, v in features.items()}, {"Jets": masks["Jets"][:2]},
                      threshold=0.5, embeddings=True)
    assert len(nothing) == 0 and nothing.assignments["t1"].shape == (0, 3)
    for name in ("assignments", "assignment_probabilities", "detection_probabilities",
                 "marginal_probabilities", "reported", "embeddings"):
        empty, full = getattr(nothing, name), getattr(two, name)
        assert {k: (v.shape[1:], v.dtype) for k, v in empty.items()} == \
               {k: (v.shape[1:], v.dtype) for k, v in full.items()}, name
        assert all(len(v) == 0 for v in empty.values())


def test_tensors_that_need_grad_are_taken_as_their_values(setup):
    import torch

    run, _, features, masks = setup
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in features.items()}
    np.testing.assert_array_equal(run.predict(tensors, masks).assignments["t1"],
                                  run.predict(features, masks).assignments["t1"])
