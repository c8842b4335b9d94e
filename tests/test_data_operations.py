"""`spanet-data`: every event arrives exactly once, re-padding moves indices, bad input writes nothing.

Files are the six-input-kinds ``TINY_SPEC`` layout of ``_dataset_helpers`` (two SEQUENTIAL
inputs, so unassociated indices of ``h`` live in the combined space), a few hundred events,
moved in chunks of 64 so that every operation crosses many block boundaries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from _dataset_helpers import EVENT_WEIGHT, TINY_SPEC, TINY_YAML, random_arrays, tiny_arrays, write_h5

from spanet_lite.cli.data import main, parse_labels
from spanet_lite.config import load_event_spec
from spanet_lite.dataset import operations
from spanet_lite.dataset.operations import Streaming, commands
from spanet_lite.dataset.reader import read_block, resolve_layout
from spanet_lite.dataset.schema import validate_file
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.hdf5_paths import EVENT_WEIGHT_DATASET

SMALL = Streaming(chunk_size=64, bucket_memory=8 * 1024)  # ~ 100-event shuffle buckets


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as file:
        arrays: dict[str, np.ndarray] = {}
        file.visititems(lambda name, node: arrays.__setitem__(name, node[()])
                        if isinstance(node, h5py.Dataset) else None)
        return arrays


def _events(arrays: dict[str, np.ndarray], skip: tuple[str, ...] = ()) -> Counter:
    """Each event as the bytes of its row in every dataset: a multiset to compare by content."""
    names = sorted(k for k in arrays if k not in skip)
    count = len(arrays[names[0]])
    return Counter(b"|".join(arrays[k][i].tobytes() for k in names) for i in range(count))


def _widen_jets(arrays: dict[str, np.ndarray], extra: int) -> dict[str, np.ndarray]:
    """The same events with ``extra`` more padded Jets slots: what concat must produce from
    narrower files (MASK False, features 0, combined indices moved past the new slots)."""
    wide = dict(arrays)
    for key, values in arrays.items():
        if key.startswith("INPUTS/Jets/"):
            pad = np.zeros((len(values), extra), dtype=values.dtype)
            wide[key] = np.concatenate([values, pad], axis=1)
    for key in ("TARGETS/h/x1", "TARGETS/h/x2"):
        index = arrays[key]
        wide[key] = np.where(index >= 5, index + extra, index)  # Leptons start after the Jets slots
    return wide


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_YAML, encoding="utf-8")
    return path


def test_split_then_concat_gives_back_every_event_once(tmp_path):
    source = write_h5(tmp_path / "all.h5", random_arrays(300, seed=1))
    parts = [tmp_path / f"part{i}.h5" for i in range(3)]
    written = operations.split(source, parts, [0.5, 0.3, 0.2], TINY_SPEC, streaming=SMALL)
    assert [w.events for w in written] == [150, 90, 60]
    assert all(validate_file(p, TINY_SPEC).ok for p in parts)

    operations.concat(parts, tmp_path / "back.h5", TINY_SPEC, streaming=SMALL)
    original, back = _read(source), _read(tmp_path / "back.h5")
    assert set(back) == set(original)
    for key in original:  # in order, bit for bit (NaN padding included)
        assert original[key].tobytes() == back[key].tobytes(), key


def test_shuffle_keeps_every_event_once_in_a_new_order_reproducibly(tmp_path):
    source = write_h5(tmp_path / "all.h5", random_arrays(500, seed=2))
    operations.shuffle(source, tmp_path / "a.h5", TINY_SPEC, seed=5, streaming=SMALL)
    operations.shuffle(source, tmp_path / "b.h5", TINY_SPEC, seed=5, streaming=SMALL)
    operations.shuffle(source, tmp_path / "c.h5", TINY_SPEC, seed=6, streaming=SMALL)
    original, a, b, c = (_read(p) for p in (source, tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"))
    assert _events(a) == _events(original)
    pt = "INPUTS/Jets/pt"
    assert a[pt].tobytes() == b[pt].tobytes()  # same seed, same order
    assert a[pt].tobytes() != c[pt].tobytes()
    # A shuffle, not a rotation: events from the file's start end up spread over the output.
    first = {row.tobytes() for row in original[pt][:50]}
    positions = [i for i, row in enumerate(a[pt]) if row.tobytes() in first]
    assert max(positions) - min(positions) > 300
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # scratch file removed


def test_split_with_shuffle_and_by_event_number_partition_the_events(tmp_path):
    source = write_h5(tmp_path / "all.h5", random_arrays(400, seed=3))
    original = _events(_read(source))
    shuffled = [tmp_path / f"s{i}.h5" for i in range(2)]
    operations.split(source, shuffled, [0.75, 0.25], TINY_SPEC, shuffle=True, seed=1, streaming=SMALL)
    assert sum((_events(_read(p)) for p in shuffled), Counter()) == original
    assert [len(_read(p)["INPUTS/Met/met"]) for p in shuffled] == [300, 100]

    hashed = [tmp_path / f"h{i}.h5" for i in range(2)]
    operations.split(source, hashed, [0.5, 0.5], TINY_SPEC, by_event_number=True, streaming=SMALL)
    assert sum((_events(_read(p)) for p in hashed), Counter()) == original
    sizes = [len(_read(p)["INPUTS/Met/met"]) for p in hashed]
    assert 150 < sizes[0] < 250
    # Deterministic per event: with 200 more events appended, the first 400 go where they went.
    first, extra = random_arrays(400, seed=3), random_arrays(200, seed=30)
    bigger = write_h5(tmp_path / "bigger.h5", {k: np.concatenate([first[k], extra[k]]) for k in first})
    more = [tmp_path / f"m{i}.h5" for i in range(2)]
    operations.split(bigger, more, [0.5, 0.5], TINY_SPEC, by_event_number=True, streaming=SMALL)
    for before, after in zip(hashed, more):
        old, new = _read(before)["INPUTS/Jets/pt"], _read(after)["INPUTS/Jets/pt"]
        assert new[: len(old)].tobytes() == old.tobytes()


def test_concat_repads_to_the_widest_input_and_adds_labels(tmp_path):
    narrow_arrays = random_arrays(120, seed=4)
    wide_arrays = _widen_jets(random_arrays(80, seed=5), extra=3)
    narrow = write_h5(tmp_path / "narrow.h5", narrow_arrays)
    wide = write_h5(tmp_path / "wide.h5", wide_arrays)
    written = operations.concat([narrow, wide], tmp_path / "out.h5", TINY_SPEC,
                                labels={"EVENT/sample": [1, 0]}, streaming=SMALL)
    assert written[0].events == 200
    out = _read(tmp_path / "out.h5")
    assert out["INPUTS/Jets/MASK"].shape == (200, 8)
    expected = _widen_jets(narrow_arrays, extra=3)
    for key in expected:
        if key.startswith("INPUTS/Jets/") and key != "INPUTS/Jets/MASK":
            # padded slots: the narrow file's NaN stay, the new ones are 0; compare real objects
            mask = expected["INPUTS/Jets/MASK"]
            assert np.array_equal(out[key][:120][mask], expected[key][mask]), key
        else:
            floats = expected[key].dtype.kind == "f"
            assert np.array_equal(out[key][:120], expected[key], equal_nan=floats), key
    assert out["CLASSIFICATIONS/EVENT/sample"].tolist() == [1] * 120 + [0] * 80
    assert validate_file(tmp_path / "out.h5", TINY_SPEC).ok  # moved indices still point at real objects


RELATIVE_YAML = """
INPUTS:
  RELATIVE:
    Jets: {pt: log_normalize, dr: normalize}
  SEQUENTIAL:
    Fat: {pt: log_normalize}
EVENT:
  t: [a, b]
"""


def _relative_file(path: Path, events: int, width: int, seed: int, per_pair: bool = True) -> Path:
    """Jets (RELATIVE, ``width`` slots, dr per pair, or per object) then Fat (2 slots);
    t = (Jets 0, Fat 0), combined indices 0 and ``width``."""
    rng = np.random.default_rng(seed)
    mask = np.arange(width) < rng.integers(2, width + 1, events)[:, None]
    with h5py.File(path, "w") as file:
        file["INPUTS/Jets/MASK"] = mask
        file["INPUTS/Jets/pt"] = np.where(mask, rng.uniform(20, 200, mask.shape), 0).astype(np.float32)
        pairs = mask[:, :, None] & mask[:, None, :]
        dr = np.where(pairs, rng.uniform(0, 4, pairs.shape), 0) if per_pair else np.where(mask, 1.0, 0)
        file["INPUTS/Jets/dr"] = dr.astype(np.float32)
        file["INPUTS/Fat/MASK"] = np.ones((events, 2), dtype=bool)
        file["INPUTS/Fat/pt"] = rng.uniform(200, 600, (events, 2)).astype(np.float32)
        file["TARGETS/t/a"] = np.zeros(events, dtype=np.int64)
        file["TARGETS/t/b"] = np.full(events, width, dtype=np.int64)
    return path


def test_concat_refuses_a_needed_dataset_stored_per_object_in_one_input_and_per_pair_in_another(tmp_path):
    """Dropped with a warning, it left an output that failed every command's check."""
    pairs = _relative_file(tmp_path / "pairs.h5", 30, width=3, seed=1)
    objects = _relative_file(tmp_path / "objects.h5", 20, width=3, seed=2, per_pair=False)
    spec = tmp_path / "relative.yaml"
    spec.write_text(RELATIVE_YAML, encoding="utf-8")
    for path in (pairs, objects):
        assert validate_file(path, load_event_spec(spec)).ok
    with pytest.raises(InputError) as error:
        operations.concat([pairs, objects], tmp_path / "out.h5", spec, streaming=SMALL)
    assert str(error.value) == (f"{objects}: INPUTS/Jets/dr: expected the shape of {pairs}'s (N, 3, 3): "
                                "the inputs of one output must agree, got (N, 3)")
    assert not (tmp_path / "out.h5").exists()


def test_concat_repads_a_relative_inputs_pairwise_features_too(tmp_path):
    """A pairwise feature (N, W, W) of inputs of different widths was dropped with a warning
    ('shaped differently'), so the merged file no longer matched the event file."""
    narrow = _relative_file(tmp_path / "narrow.h5", 30, width=3, seed=1)
    wide = _relative_file(tmp_path / "wide.h5", 20, width=5, seed=2)
    spec = tmp_path / "relative.yaml"
    spec.write_text(RELATIVE_YAML, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpanetWarning)
        operations.concat([narrow, wide], tmp_path / "out.h5", spec, streaming=SMALL)
    out, before = _read(tmp_path / "out.h5"), _read(narrow)
    assert out["INPUTS/Jets/dr"].shape == (50, 5, 5)
    assert np.array_equal(out["INPUTS/Jets/dr"][:30, :3, :3], before["INPUTS/Jets/dr"])
    assert not out["INPUTS/Jets/dr"][:30, 3:].any() and not out["INPUTS/Jets/dr"][:30, :, 3:].any()
    assert out["TARGETS/t/b"].tolist() == [5] * 50  # Fat slot 0 after the widest Jets
    assert validate_file(tmp_path / "out.h5", load_event_spec(spec)).ok


def test_select_keeps_events_by_object_count_up_to_a_limit(tmp_path):
    arrays = random_arrays(300, seed=6)
    source = write_h5(tmp_path / "all.h5", arrays)
    jets = arrays["INPUTS/Jets/MASK"].sum(axis=1)
    operations.select(source, tmp_path / "out.h5", TINY_SPEC, min_objects=4, max_objects=4, streaming=SMALL)
    out = _read(tmp_path / "out.h5")
    assert len(out["INPUTS/Met/met"]) == int((jets == 4).sum())
    assert np.array_equal(out["INPUTS/Met/met"], arrays["INPUTS/Met/met"][jets == 4])
    operations.select(source, tmp_path / "few.h5", TINY_SPEC, min_objects=5, limit=7, streaming=SMALL)
    few = _read(tmp_path / "few.h5")["INPUTS/Met/met"]
    assert np.array_equal(few, arrays["INPUTS/Met/met"][jets >= 5][:7])


def test_select_counts_an_integer_masks_non_zero_slots_as_the_reader_does(tmp_path):
    """A MASK of 0 and 2 means what a bool MASK means (``hdf5_layout.mask_values``): the event
    with four real jets has four, not eight."""
    arrays = random_arrays(300, seed=6)
    jets = arrays["INPUTS/Jets/MASK"].sum(axis=1)
    twos = arrays["INPUTS/Jets/MASK"] * np.int8(2)
    source = write_h5(tmp_path / "twos.h5", {**arrays, "INPUTS/Jets/MASK": twos})
    operations.select(source, tmp_path / "out.h5", TINY_SPEC, min_objects=4, max_objects=4, streaming=SMALL)
    assert np.array_equal(_read(tmp_path / "out.h5")["INPUTS/Met/met"], arrays["INPUTS/Met/met"][jets == 4])


def test_dataset_attributes_the_inputs_share_travel_with_their_datasets(tmp_path):
    """A ``units`` attribute is what spanet-test labels a regression with: every operation lost
    every dataset attribute, so a TeV target of a generated file read as GeV afterwards."""
    files = []
    for index, calibration in enumerate(("v1", "v2")):
        path = write_h5(tmp_path / f"in{index}.h5", random_arrays(100, seed=index))
        with h5py.File(path, "r+") as file:
            file["INPUTS/Met/met"].attrs["units"] = "TeV"
            file["INPUTS/Jets/pt"].attrs["units"] = "GeV"
            file["INPUTS/Jets/pt"].attrs["calibration"] = calibration
            file.attrs.update({"process": "ttbar", "seed": index})
            file["INFO/number"] = np.arange(100)
            file["INFO/number"].make_scale("event")  # refers to its file: not copied, not a traceback
            file["INPUTS/Met/met"].dims[0].attach_scale(file["INFO/number"])
        files.append(path)
    with pytest.warns(SpanetWarning) as caught:
        operations.concat(files, tmp_path / "all.h5", TINY_SPEC, labels={"EVENT/sample": [1, 0]},
                          streaming=SMALL)
    assert [str(w.message) for w in caught] == [  # said, not dropped silently
        "attributes not kept (the inputs give different values, or some lack them): the file: "
        "seed; INPUTS/Jets/pt: calibration"
    ]
    operations.shuffle(files[0], tmp_path / "shuffled.h5", TINY_SPEC, streaming=SMALL)
    operations.select(files[0], tmp_path / "few.h5", TINY_SPEC, limit=7, streaming=SMALL)
    parts = [tmp_path / "a.h5", tmp_path / "b.h5"]
    operations.split(files[0], parts, [0.5, 0.5], TINY_SPEC, shuffle=True, streaming=SMALL)
    for path in [tmp_path / "all.h5", tmp_path / "shuffled.h5", tmp_path / "few.h5", *parts]:
        with h5py.File(path, "r") as file:
            assert dict(file["INPUTS/Met/met"].attrs) == {"units": "TeV"}, path.name
            assert "REFERENCE_LIST" not in file["INFO/number"].attrs
            pt = dict(file["INPUTS/Jets/pt"].attrs)
    assert pt == {"units": "GeV", "calibration": "v1"}  # one input: all of its attributes
    with h5py.File(tmp_path / "all.h5", "r") as file:
        assert dict(file["INPUTS/Jets/pt"].attrs) == {"units": "GeV"}  # the inputs disagree on calibration
        assert dict(file.attrs) == {"process": "ttbar"}
        assert dict(file["CLASSIFICATIONS/EVENT/sample"].attrs) == {}


def test_an_attribute_every_input_holds_as_nan_is_kept_not_called_a_disagreement(tmp_path):
    """A NaN compared unequal to itself: a cross section every input gave as NaN (unknown) was
    dropped from the merged file, and the warning said the inputs gave different values."""
    files = []
    for index in range(2):
        path = write_h5(tmp_path / f"in{index}.h5", random_arrays(50, seed=index))
        with h5py.File(path, "r+") as file:
            file.attrs["cross_section"] = np.nan
            file["INPUTS/Jets/pt"].attrs["scale"] = [1.0, np.nan]
            file["INPUTS/Jets/pt"].attrs["units"] = "GeV"
        files.append(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpanetWarning)
        operations.concat(files, tmp_path / "all.h5", TINY_SPEC, streaming=SMALL)
    with h5py.File(tmp_path / "all.h5", "r") as file:
        assert np.isnan(file.attrs["cross_section"])
        assert np.array_equal(file["INPUTS/Jets/pt"].attrs["scale"], [1.0, np.nan], equal_nan=True)
        assert file["INPUTS/Jets/pt"].attrs["units"] == "GeV"


def _read_events(path: Path) -> dict[str, object]:
    """Every event of ``path`` as the training reader sees it (targets, masks, weights, labels)."""
    with h5py.File(path, "r") as file:
        layout = resolve_layout(file, TINY_SPEC, path, EVENT_WEIGHT_DATASET)
        block = read_block(file, TINY_SPEC, layout, 0, layout.num_events)
    return {f.name: getattr(block, f.name) for f in dataclasses.fields(block) if f.name != "rows"}


def test_an_optional_dataset_one_input_lacks_is_filled_with_what_its_absence_means(tmp_path):
    """A weighted file and an unweighted one merged: the weights were dropped for all events
    (a warning said so). The reader takes a missing weight as 1, a missing GLOBAL MASK as True,
    a missing particle MASK as "every product matched", so writing exactly that keeps every
    event's meaning: the merged file reads,
    event for event, as its inputs read alone. A dataset only the second input has was
    dropped without a word (only the first input's were looked at); it is named now."""
    weighted = tiny_arrays()
    weighted["INPUTS/Met/MASK"] = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    optional = ("TARGETS/t/MASK", "TARGETS/lt/WEIGHT", "WEIGHTS/EVENT/weight", "INPUTS/Met/MASK")
    plain = {key: value for key, value in tiny_arrays().items() if key not in optional}
    plain["INFO/run"] = np.arange(6)
    files = [write_h5(tmp_path / "weighted.h5", weighted), write_h5(tmp_path / "plain.h5", plain)]
    out = tmp_path / "all.h5"
    with pytest.warns(SpanetWarning) as caught:
        operations.concat(files, out, TINY_SPEC, streaming=SMALL)
    assert [str(w.message) for w in caught] == [
        "not copied (missing from an input, or shaped differently): INFO/run"
    ]
    merged, alone = _read_events(out), [_read_events(path) for path in files]
    for name, value in merged.items():
        for index, part in enumerate((slice(0, 6), slice(6, 12))):
            expected = alone[index][name]
            if value is None:
                assert expected is None, name
            elif isinstance(value, dict):
                assert value.keys() == expected.keys(), name
                for key in value:
                    assert np.array_equal(value[key][part], expected[key], equal_nan=True), (name, key, index)
            else:
                assert np.array_equal(value[part], expected, equal_nan=True), (name, index)
    stored = _read(out)
    assert stored["WEIGHTS/EVENT/weight"].tolist() == EVENT_WEIGHT + [1.0] * 6
    assert stored["INPUTS/Met/MASK"].dtype == np.bool_
    # no MASK is not MASK True: the particle is usable where all its products are matched (event
    # 1's t: False in the first file's MASK, True where the second file has none), as SPANet reads it
    matched = [True, True, False, False, True, False]
    assert stored["TARGETS/t/MASK"].tolist() == [*weighted["TARGETS/t/MASK"].tolist(), *matched]
    assert set(stored) >= set(optional)
    report = validate_file(out, TINY_SPEC)
    assert report.ok and not [p for p in report.problems if p.level == "warning"], report.problems


def test_inputs_whose_units_differ_are_not_merged(tmp_path):
    """A GeV and a TeV file concatenated mixed the two scales in one column, and the output
    named no unit (the inputs disagreed), so nothing showed it. An input that names no unit is
    no disagreement."""
    files = []
    for index, units in enumerate(("GeV", "TeV", None)):
        path = write_h5(tmp_path / f"in{index}.h5", random_arrays(50, seed=index))
        if units is not None:
            with h5py.File(path, "r+") as file:
                file["INPUTS/Met/met"].attrs["unit"] = units
        files.append(path)
    out = tmp_path / "all.h5"
    with pytest.raises(InputError) as caught:
        operations.concat(files[:2], out, TINY_SPEC, streaming=SMALL)
    assert str(caught.value) == (
        f"{files[1]}: INPUTS/Met/met: expected the units of {files[0]} ('GeV'): the inputs of one "
        "output must agree, got 'TeV'"
    )
    assert not out.exists()
    with pytest.warns(SpanetWarning, match="some lack them\\): INPUTS/Met/met: unit$"):
        operations.concat([files[0], files[2]], out, TINY_SPEC, streaming=SMALL)
    with h5py.File(out, "r") as file:
        assert "unit" not in file["INPUTS/Met/met"].attrs  # the second input names none


# ----------------------------------------------------------------------------- SPANet 1.x


V1_YAML = """
INPUTS:
  SEQUENTIAL:
    Source: {mass: log_normalize, pt: log_normalize, eta: normalize, btag: none}
EVENT:
  t1: [q1, q2, b]
  t2: [q1, q2, b]
PERMUTATIONS:
  EVENT: [[t1, t2]]
  t1: [[q1, q2]]
  t2: [[q1, q2]]
"""


def _v1_file(path: Path, n: int = 150) -> dict[str, np.ndarray]:
    """A SPANet 1.x ttbar file: source/<feature>, source/mask, <particle>/<product>, <particle>/mask."""
    rng = np.random.default_rng(9)
    count = rng.integers(6, 9, n)
    mask = np.arange(10)[None, :] < count[:, None]
    arrays = {"source/mask": mask}
    for feature in ("mass", "pt", "eta", "btag"):
        arrays[f"source/{feature}"] = np.where(mask, rng.random((n, 10)), 0).astype(np.float32)
    order = np.argsort(rng.random((n, 6)), axis=1)  # six distinct jets among the first six
    for p, particle in enumerate(("t1", "t2")):
        for j, product in enumerate(("q1", "q2", "b")):
            arrays[f"{particle}/{product}"] = order[:, 3 * p + j].astype(np.int64)
        arrays[f"{particle}/mask"] = rng.random(n) < 0.8
    write_h5(path, arrays)
    return arrays


def test_convert_v1_renames_the_layout_and_keeps_the_particle_mask(tmp_path):
    from spanet_lite.config import parse_event_spec

    spec = parse_event_spec(V1_YAML, source="v1.yaml")
    v1 = _v1_file(tmp_path / "old.h5")
    operations.convert_v1(tmp_path / "old.h5", tmp_path / "new.h5", spec, streaming=SMALL)
    new = _read(tmp_path / "new.h5")
    assert validate_file(tmp_path / "new.h5", spec).ok
    assert np.array_equal(new["INPUTS/Source/MASK"], v1["source/mask"])
    assert np.array_equal(new["INPUTS/Source/pt"], v1["source/pt"])
    assert np.array_equal(new["TARGETS/t2/b"], v1["t2/b"])
    assert np.array_equal(new["TARGETS/t1/MASK"], v1["t1/mask"])
    assert not any(key.startswith(("source", "t1/", "t2/")) for key in new)


def test_convert_v1_names_a_missing_dataset_by_its_v1_name(tmp_path, capsys):
    (tmp_path / "v1.yaml").write_text(V1_YAML, encoding="utf-8")
    _v1_file(tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as file:
        del file["source/eta"]
    code = main(["convert-v1", str(tmp_path / "old.h5"), "-e", str(tmp_path / "v1.yaml"),
                 "-o", str(tmp_path / "new.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "old.h5: source/eta: expected feature eta" in err[0]
    assert not (tmp_path / "new.h5").exists()


# ----------------------------------------------------------------------------- bad input


def _one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("spanet-data: error: ")
    return lines[0]


def _nothing_left(folder: Path, keep: set[str]) -> bool:
    return {p.name for p in folder.iterdir()} == keep


def test_an_invalid_input_is_one_line_and_writes_nothing(tmp_path, spec_file, capsys):
    arrays = random_arrays(100, seed=7)
    arrays["TARGETS/t/b"][40] = 9  # outside the 5 Jets slots
    good = write_h5(tmp_path / "good.h5", random_arrays(100, seed=8))
    bad = write_h5(tmp_path / "bad.h5", arrays)
    keep = {p.name for p in tmp_path.iterdir()}
    for argv in (["concat", str(good), str(bad), "-o", str(tmp_path / "out.h5")],
                 ["split", str(bad), "--fractions", "0.5", "0.5", "-o", str(tmp_path / "a.h5"),
                  str(tmp_path / "b.h5")],
                 ["shuffle", str(bad), "-o", str(tmp_path / "out.h5")]):
        assert main([*argv, "-e", str(spec_file), "--quiet", "--chunk-size", "32"]) == 2
        assert "bad.h5: TARGETS/t/b: expected an object index" in _one_line_error(capsys)
        assert _nothing_left(tmp_path, keep)


def test_a_file_an_input_links_to_or_reads_through_a_virtual_dataset_is_never_an_output(
        tmp_path, spec_file, capsys):
    """The data of an input may live in another file (an external link) or be read from one (a
    virtual dataset); --overwrite of that file replaced the input's data under it."""
    base = write_h5(tmp_path / "base.h5", random_arrays(100, seed=9))
    linked, virtual = tmp_path / "linked.h5", tmp_path / "virtual.h5"
    with h5py.File(base, "r") as source, h5py.File(linked, "w") as a, h5py.File(virtual, "w") as v:
        for name in source:
            source.copy(source[name], v, name)
            if name != "TARGETS":
                source.copy(source[name], a, name)
        a["TARGETS"] = h5py.ExternalLink(base.name, "/TARGETS")
        pt = source["INPUTS/Jets/pt"]
        layout = h5py.VirtualLayout(shape=pt.shape, dtype=pt.dtype)
        layout[:] = h5py.VirtualSource(base.name, "INPUTS/Jets/pt", shape=pt.shape)
        del v["INPUTS/Jets/pt"]
        v.create_virtual_dataset("INPUTS/Jets/pt", layout)
    before = base.read_bytes()
    keep = {p.name for p in tmp_path.iterdir()}
    for source in (linked, virtual):
        assert main(["shuffle", str(source), "-o", str(base), "--overwrite",
                     "-e", str(spec_file), "--quiet"]) == 2
        assert "base.h5: -o/--output: expected an output different from the command's inputs" in (
            _one_line_error(capsys))
        with pytest.raises(InputError, match="outputs\\[1\\]: expected an output different"):
            operations.split(source, [tmp_path / "a.h5", base], [0.5, 0.5], TINY_SPEC,
                             overwrite=True, streaming=SMALL)
        assert base.read_bytes() == before and _nothing_left(tmp_path, keep)


def test_a_damaged_chunk_of_a_dataset_carried_along_is_one_line_and_writes_nothing(
        tmp_path, spec_file, capsys):
    """Datasets outside the event file are copied, not validated: their bytes are first read
    while writing, and a damaged chunk there still names the dataset and its events."""
    damaged = write_h5(tmp_path / "damaged.h5", random_arrays(100, seed=8))
    with h5py.File(damaged, "r+") as file:
        file.create_dataset("EXTRA/run", data=np.arange(100), chunks=(32,), compression="gzip")
        info = file["EXTRA/run"].id.get_chunk_info(1)
    with damaged.open("r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)
    keep = {p.name for p in tmp_path.iterdir()}
    argv = ["split", str(damaged), "--fractions", "0.5", "0.5", "-o", str(tmp_path / "a.h5"),
            str(tmp_path / "b.h5"), "-e", str(spec_file), "--quiet", "--chunk-size", "32"]
    assert main(argv) == 2
    assert "damaged.h5: EXTRA/run, events 32-63: expected data HDF5 can read, got a damaged chunk" \
        in _one_line_error(capsys)
    assert _nothing_left(tmp_path, keep)


@pytest.mark.parametrize(("argv", "message"), [
    (["select", "{good}", "-o", "{good}", "--overwrite"], "an output different from the command's inputs"),
    (["shuffle", "{good}", "-o", "{spec}", "--overwrite"], "an output different from the command's inputs"),
    (["select", "{good}", "-o", "{other}"], "pass --overwrite"),
    (["split", "{good}", "--fractions", "0.5", "0.4", "-o", "{a}", "{b}"], "add up to 1"),
    (["split", "{good}", "--fractions", "0.5", "0.5", "-o", "{a}"], "one fraction per output"),
    (["select", "{good}", "-o", "{a}", "--min-jets", "9"],
     "expected at least one event in every output, got none: no event has at least 9 objects in Jets"),
    (["select", "{good}", "-o", "{a}", "--min-jets", "1", "--max-jets", "2"],
     "got none: no event has 1 to 2 objects in Jets"),
    (["select", "{missing}", "-o", "{a}"], "no such file"),
    (["shuffle", "{good}", "-o", "{a}", "--scratch-dir", "{other}"], "existing folder, got a file"),
    (["shuffle", "{good}", "-o", "{a}", "--scratch-dir", "{b}"], "got no such folder"),
    (["concat", "{good}", "{good}", "-o", "{a}", "--label", "signal=1"], "one label per input"),
])
def test_refusals_are_one_line_and_leave_files_as_they_were(tmp_path, spec_file, capsys, argv, message):
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    other = tmp_path / "other.h5"
    other.write_bytes(b"keep me")
    names = {"good": good, "other": other, "a": tmp_path / "a.h5", "b": tmp_path / "b.h5",
             "missing": tmp_path / "missing.h5", "spec": spec_file}
    keep = {p.name for p in tmp_path.iterdir()}
    before, event_file = good.read_bytes(), spec_file.read_bytes()
    assert main([a.format(**names) for a in argv] + ["-e", str(spec_file), "--quiet"]) == 2
    assert message in _one_line_error(capsys)
    assert _nothing_left(tmp_path, keep)
    assert good.read_bytes() == before and other.read_bytes() == b"keep me"
    assert spec_file.read_bytes() == event_file


# (an operation's call, the line it raises; the same on the command line, the line spanet-data prints).
# f.good / {good} is a 50-event file, f.a and f.b new outputs, f.other an existing file that is no folder.
NAMED_REFUSALS = [
    (lambda f: Streaming(bucket_memory=0),
     "bucket_memory: expected a positive number of bytes, got 0",
     ["shuffle", "{good}", "-o", "{a}", "--memory", "0"],
     "--memory: expected a positive number of MB, got 0.0"),
    (lambda f: Streaming(bucket_memory=float("nan")),
     "bucket_memory: expected a positive number of bytes, got nan",
     ["shuffle", "{good}", "-o", "{a}", "--memory", "nan"],
     "--memory: expected a positive number of MB, got nan"),
    (lambda f: Streaming(bucket_memory=float("inf")),
     "bucket_memory: expected a positive number of bytes, got inf",
     ["shuffle", "{good}", "-o", "{a}", "--memory", "1e303"],  # finite MB, infinite bytes
     "--memory: expected a positive number of MB whose bytes are finite, got 1e+303"),
    (lambda f: Streaming(chunk_size=0),
     "chunk_size: expected a positive number of events, got 0",
     ["shuffle", "{good}", "-o", "{a}", "--chunk-size", "0"],
     "--chunk-size: expected a positive number of events, got 0"),
    (lambda f: Streaming(scratch_dir=f.other),
     "{other}: scratch_dir: expected an existing folder, got a file",
     ["shuffle", "{good}", "-o", "{a}", "--scratch-dir", "{other}"],
     "{other}: --scratch-dir: expected an existing folder, got a file"),
    (lambda f: operations.shuffle(f.good, f.a, TINY_SPEC, seed=-1),
     "seed: expected a seed >= 0, got -1",
     ["shuffle", "{good}", "-o", "{a}", "--seed", "-1"],
     "--seed: expected a seed >= 0, got -1"),
    (lambda f: operations.split(f.good, [f.a, f.b], [0.5, 0.4], TINY_SPEC),
     "fractions: expected fractions that add up to 1, got 0.5 0.4 (sum 0.9)",
     ["split", "{good}", "--fractions", "0.5", "0.4", "-o", "{a}", "{b}"],
     "--fractions: expected fractions that add up to 1, got 0.5 0.4 (sum 0.9)"),
    (lambda f: operations.split(f.good, [f.a, f.b], [0.99, 0.01], TINY_SPEC),
     "fractions: expected a part of at least one event for every output (50 events), got 0.99 0.01",
     ["split", "{good}", "--fractions", "0.99", "0.01", "-o", "{a}", "{b}"],
     "--fractions: expected a part of at least one event for every output (50 events), got 0.99 0.01"),
    (lambda f: operations.split(f.good, [f.a, f.b], [0.5, 0.5], TINY_SPEC, shuffle=True,
                                by_event_number=True),
     "shuffle: expected either shuffle or by_event_number, not both",
     ["split", "{good}", "--fractions", "0.5", "0.5", "-o", "{a}", "{b}", "--shuffle", "--by-event-number"],
     "--shuffle: expected either --shuffle or --by-event-number, not both"),
    (lambda f: operations.select(f.good, f.a, TINY_SPEC, min_objects=3, max_objects=2),
     "max_objects: expected a number >= min_objects (3), got 2",
     ["select", "{good}", "-o", "{a}", "--min-jets", "3", "--max-jets", "2"],
     "--max-jets: expected a number >= --min-jets (3), got 2"),
    (lambda f: operations.select(f.good, f.a, TINY_SPEC, limit=0),
     "limit: expected a number >= 1, got 0",
     ["select", "{good}", "-o", "{a}", "--limit", "0"],
     "--limit: expected a number >= 1, got 0"),
    (lambda f: operations.select(f.good, f.a, TINY_SPEC, input_name="Jet"),
     "input_name: expected a SEQUENTIAL input of the event file (Jets, Leptons), got 'Jet'",
     ["select", "{good}", "-o", "{a}", "--input", "Jet"],
     "--input: expected a SEQUENTIAL input of the event file (Jets, Leptons), got 'Jet'"),
    (lambda f: operations.concat([f.good, f.good], f.a, TINY_SPEC, labels={"signal": [1]}),
     "labels['signal']: expected one label per input (2), in the inputs' order, got 1",
     ["concat", "{good}", "{good}", "-o", "{a}", "--label", "signal=1"],
     "--label: expected one label per input (2), in the inputs' order, got 1"),
    (lambda f: operations.select(f.good, f.good, TINY_SPEC, overwrite=True),
     "{good}: output: expected an output different from the command's inputs, got the input {good}",
     ["select", "{good}", "-o", "{good}", "--overwrite"],
     "{good}: -o/--output: expected an output different from the command's inputs, got the input {good}"),
    (lambda f: operations.split(f.good, [f.a, f.a], [0.5, 0.5], TINY_SPEC),
     "{a}: outputs[1]: expected a path different from outputs[0], got the same path",
     ["split", "{good}", "--fractions", "0.5", "0.5", "-o", "{a}", "{a}"],
     "{a}: -o/--output: expected a path different from -o/--output, got the same path"),
]


@pytest.mark.parametrize(("call", "line", "argv", "flag_line"), NAMED_REFUSALS,
                         ids=[" ".join(argv[:1] + argv[2:]) for _, _, argv, _ in NAMED_REFUSALS])
def test_a_refusal_names_the_keyword_from_python_and_the_flag_from_the_command(
        tmp_path, spec_file, capsys, call, line, argv, flag_line):
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    other = tmp_path / "other.h5"
    other.write_bytes(b"keep me")
    names = {"good": good, "other": other, "a": tmp_path / "a.h5", "b": tmp_path / "b.h5"}
    keep = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(InputError) as error:
        call(SimpleNamespace(**names))
    assert str(error.value) == line.format(**names)
    assert main([a.format(**names) for a in argv] + ["-e", str(spec_file), "--quiet"]) == 2
    assert _one_line_error(capsys) == f"spanet-data: error: {flag_line.format(**names)}"
    assert _nothing_left(tmp_path, keep)


def test_a_notebook_may_name_the_event_file_and_a_lone_path_is_not_a_list(tmp_path, spec_file):
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    written = operations.shuffle(good, tmp_path / "shuffled.h5", str(spec_file), seed=1)
    assert [w.events for w in written] == [50]
    with pytest.raises(InputError, match=r"^inputs: expected a list of input files, got 'good.h5'$"):
        operations.concat("good.h5", tmp_path / "out.h5", spec_file)
    with pytest.raises(InputError, match=r"^outputs: expected a list of output files, got '.*a\.h5'$"):
        operations.split(good, tmp_path / "a.h5", [1.0], spec_file)


def test_a_seed_is_an_integer_and_a_whole_float_is_taken_as_one(tmp_path, spec_file):
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    with pytest.raises(InputError, match=r"^seed: expected an integer, got 1.5 \(a number\)$"):
        operations.shuffle(good, tmp_path / "a.h5", spec_file, seed=1.5)
    operations.shuffle(good, tmp_path / "b.h5", spec_file, seed=7.0)
    operations.shuffle(good, tmp_path / "c.h5", spec_file, seed=7)
    pt = [_read(tmp_path / name)["INPUTS/Jets/pt"] for name in ("b.h5", "c.h5")]
    assert np.array_equal(*pt, equal_nan=True)  # padded slots hold NaN


# A notebook's values of the wrong type: each one line naming the keyword, never a TypeError
# from a comparison or an f-string (the command's flags are typed by argparse).
WRONG_TYPES = [
    (lambda f: Streaming(chunk_size="10"), "chunk_size: expected an integer, got '10'"),
    (lambda f: Streaming(chunk_size=None), "chunk_size: expected an integer, got nothing"),
    (lambda f: Streaming(chunk_size=2.5), "chunk_size: expected an integer, got 2.5 (a number)"),
    (lambda f: Streaming(bucket_memory="64"), "bucket_memory: expected a positive number of bytes, got '64'"),
    (lambda f: Streaming(bucket_memory=True),
     "bucket_memory: expected a positive number of bytes, got true (a boolean)"),
    (lambda f: Streaming(scratch_dir=5), "scratch_dir: expected a folder path, got 5 (a number)"),
    (lambda f: operations.split(f.good, [f.a, f.b], ["0.5", "0.5"], TINY_SPEC),
     "fractions: expected numbers (fractions > 0), got '0.5'"),
    (lambda f: operations.select(f.good, f.a, TINY_SPEC, min_objects="3"),
     "min_objects: expected an integer, got '3'"),
    (lambda f: operations.select(f.good, f.a, TINY_SPEC, limit=2.5),
     "limit: expected an integer, got 2.5 (a number)"),
]


@pytest.mark.parametrize(("call", "line"), WRONG_TYPES, ids=[line for _, line in WRONG_TYPES])
def test_a_value_of_the_wrong_type_is_one_line_naming_the_keyword(tmp_path, call, line):
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    names = SimpleNamespace(good=good, a=tmp_path / "a.h5", b=tmp_path / "b.h5")
    with pytest.raises(InputError) as error:
        call(names)
    assert str(error.value) == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.h5"]


def test_whole_float_counts_are_used_as_integers(tmp_path, spec_file):
    """``chunk_size=16.0`` (JSON's or a notebook's integer) is the int 16 where it is used, and
    ``max_objects=4.0`` selects like 4: the rules return the ints, and the callers keep them."""
    from spanet_lite.dataset.schema import open_h5, validate_h5

    streaming = Streaming(chunk_size=16.0, bucket_memory=2**20)
    assert type(streaming.chunk_size) is int and streaming.chunk_size == 16
    good = write_h5(tmp_path / "good.h5", random_arrays(50, seed=9))
    whole = operations.select(good, tmp_path / "a.h5", spec_file, max_objects=4.0, limit=10.0,
                              streaming=streaming)
    exact = operations.select(good, tmp_path / "b.h5", spec_file, max_objects=4, limit=10)
    assert [w.events for w in whole] == [w.events for w in exact]
    pt = [_read(tmp_path / name)["INPUTS/Jets/pt"] for name in ("a.h5", "b.h5")]
    assert np.array_equal(*pt, equal_nan=True)
    with open_h5(good) as file:
        assert validate_h5(file, TINY_SPEC, source=str(good), chunk_size=16.0).num_events == 50


def test_labels_parse_one_per_input():
    assert parse_labels(["signal=1,kind=2", "kind=0,signal=0"], 2) == {"EVENT/signal": [1, 0],
                                                                       "EVENT/kind": [2, 0]}
    with pytest.raises(InputError, match="the same keys"):
        parse_labels(["signal=1", "kind=0"], 2)
    with pytest.raises(InputError, match="integer class label"):
        parse_labels(["signal=yes"], 1)
    with pytest.raises(InputError, match="integer class label from 0 to below 2\\*\\*31"):
        parse_labels(["signal=99999999999999999999"], 1)  # an OverflowError traceback while writing
    with pytest.raises(InputError, match="each KEY once per --label, got 'signal=1,signal=0'"):
        parse_labels(["signal=1,signal=0"], 1)  # was {"EVENT/signal": [0]}, the 1 dropped


BAD_LABELS = [
    ({"signal": ["a", 0]}, "labels['signal'][0]: expected an integer, got 'a'"),
    ({"signal": [1, -1]}, "labels['signal'][1]: expected a class label >= 0, got -1"),
    ({"signal": [1, 2**63]}, f"labels['signal'][1]: expected a class label below 2**31 = 2,147,483,648, "
                             f"got {2**63}"),
    ({"signal": "10"}, "labels['signal']: expected a list of labels, one per input, got '10'"),
    (["signal", 1], "labels: expected a mapping from a classification key to one label per input, "
                    "got a list ['signal', 1]"),
    ({"signal": [1, 0], "EVENT/signal": [0, 1]},
     "labels['EVENT/signal']: expected one entry per classification (also given as 'signal'), "
     "got two for EVENT/signal"),
]


@pytest.mark.parametrize(("labels", "line"), BAD_LABELS,
                         ids=["text", "negative", "huge", "string", "list", "twice"])
def test_concat_refuses_labels_that_are_no_class_labels_in_one_line_and_writes_nothing(
    tmp_path, labels, line
):
    """``--label`` text is parsed by the command; from Python the same rule (an integer >= 0 per
    input) holds for ``labels``, whose values failed deep in ``int()`` as a traceback."""
    good = write_h5(tmp_path / "good.h5", random_arrays(20, seed=3))
    with pytest.raises(InputError) as error:
        operations.concat([good, good], tmp_path / "out.h5", TINY_SPEC, labels=labels, streaming=SMALL)
    assert str(error.value) == line
    assert not (tmp_path / "out.h5").exists()


def test_concat_labels_take_whole_floats_as_every_integer_setting_does(tmp_path):
    good = write_h5(tmp_path / "good.h5", random_arrays(20, seed=3))
    operations.concat([good, good], tmp_path / "out.h5", TINY_SPEC, labels={"sample": [1.0, np.int64(0)]},
                      streaming=SMALL)
    labels = _read(tmp_path / "out.h5")["CLASSIFICATIONS/EVENT/sample"]
    assert labels.tolist() == [1] * 20 + [0] * 20


def test_split_leaves_all_its_outputs_or_none_when_one_fails_as_it_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outputs are closed one after the other; a failure closing one (the disk filled by
    its last flush) used to leave those already moved into place: half a split."""
    source = write_h5(tmp_path / "source.h5", random_arrays(300, seed=4))
    parts = [tmp_path / "a.h5", tmp_path / "b.h5"]
    real = commands.atomic_hdf5

    @contextlib.contextmanager
    def first_fails_at_its_end(target: Path, **kwargs: object) -> Iterator[h5py.File]:
        with real(target, **kwargs) as file:
            yield file
        if Path(target) == parts[0]:  # closed last (the outputs' contexts end in reverse)
            raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(commands, "atomic_hdf5", first_fails_at_its_end)
    with pytest.raises(OSError, match="No space left"):
        operations.split(source, parts, [0.5, 0.5], TINY_SPEC, streaming=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.h5"]


def test_concat_labels_take_a_numpy_array_per_key(tmp_path):
    """A notebook's labels as a numpy array, as ``[int(v) for v in values]`` took them before
    ``check_labels``; a 2-D array or a string is still refused."""
    good = write_h5(tmp_path / "good.h5", random_arrays(20, seed=3))
    operations.concat([good, good], tmp_path / "out.h5", TINY_SPEC, labels={"sample": np.array([1, 0])},
                      streaming=SMALL)
    labels = _read(tmp_path / "out.h5")["CLASSIFICATIONS/EVENT/sample"]
    assert labels.tolist() == [1] * 20 + [0] * 20
    with pytest.raises(InputError, match=r"^labels\['sample'\]: expected a list of labels, one per input"):
        operations.concat([good, good], tmp_path / "two.h5", TINY_SPEC, labels={"sample": np.array([[1, 0]])},
                          streaming=SMALL)


@pytest.mark.parametrize("flag", ["-ef", "--event_file", "-e", "--event-file"])
@pytest.mark.parametrize("command", ["concat", "split", "shuffle", "select", "convert-v1"])
def test_every_command_takes_spanets_spelling_of_the_event_file_flag(command, flag):
    """SPANet writes -ef/--event_file; -ef used to read as -e f (event file 'f', the YAML a stray
    argument)."""
    from spanet_lite.cli.data import build_parser

    extra = ["--fractions", "0.5", "0.5"] if command == "split" else []
    args = build_parser().parse_args([command, "in.h5", "-o", "out.h5", flag, "event.yaml", *extra])
    assert args.event_file == "event.yaml"


def test_a_link_back_to_an_enclosing_group_is_not_followed_and_linked_datasets_are_copied(tmp_path):
    """The input's datasets are found by following links (a soft link to a dataset is copied
    under the link's name), and a link to a group that holds it (``INFO/back -> /``) was
    followed until Python's RecursionError: a traceback in every spanet-data command."""
    source = write_h5(tmp_path / "all.h5", random_arrays(100, seed=4))
    with h5py.File(source, "r+") as file:
        file["INFO/back"] = h5py.SoftLink("/")
        file["INFO/up"] = file["INFO"]
        file["INFO/pt"] = h5py.SoftLink("/INPUTS/Jets/pt")
    operations.select(source, tmp_path / "out.h5", TINY_SPEC, limit=10, streaming=SMALL)
    out = _read(tmp_path / "out.h5")
    assert out["INFO/pt"].tobytes() == out["INPUTS/Jets/pt"].tobytes()
    assert not [name for name in out if "back" in name or "up/" in name]
