"""Pairwise inputs: SPANet's RELATIVE inputs and the ParT pair features as attention bias."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from _evaluation_helpers import write_ttbar_file
from _model_helpers import small_options, spec_from, ttbar_yaml
from conftest import needs
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.dataset import hdf5_layout, reader, schema
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.normalization import compute_statistics
from spanet_lite.dataset.pair_features import kinematic_columns, pair_features
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.model.network import SpanetNetwork

JETS = "{mass: log_normalize, pt: log_normalize, eta: normalize, phi: normalize, btag: none}"
PHYSICS = spec_from(ttbar_yaml(JETS))
RELATIVE_YAML = ttbar_yaml(
    "{mass: log_normalize, pt: log_normalize, eta: normalize, phi: normalize, btag: none, "
    "delta_r: normalize, mjj: log_normalize}"
).replace("  SEQUENTIAL:", "  RELATIVE:")
RELATIVE = spec_from(RELATIVE_YAML)


def write_relative_file(path: Path, num_events: int = 64, seed: int = 0) -> Path:
    """The random ttbar file of the evaluation tests with two (N, W, W) features added: the jets'
    Delta R (eta, phi) and their invariant mass, padding filled with NaN as files may."""
    write_ttbar_file(path, num_events=num_events, seed=seed)
    with h5py.File(path, "a") as file:
        jets = {name: file[f"INPUTS/Jets/{name}"][:] for name in ("pt", "eta", "phi", "mass")}
        mask = file["INPUTS/Jets/MASK"][:]
        d_eta = jets["eta"][:, :, None] - jets["eta"][:, None, :]
        d_phi = np.angle(np.exp(1j * (jets["phi"][:, :, None] - jets["phi"][:, None, :])))
        px, py = jets["pt"] * np.cos(jets["phi"]), jets["pt"] * np.sin(jets["phi"])
        pz = jets["pt"] * np.sinh(jets["eta"])
        energy = np.sqrt(jets["mass"] ** 2 + px**2 + py**2 + pz**2)
        four = np.stack([energy, px, py, pz], -1)
        total = four[:, :, None] + four[:, None, :]
        mjj = np.sqrt(np.maximum(total[..., 0] ** 2 - (total[..., 1:] ** 2).sum(-1), 0))
        real = mask[:, :, None] & mask[:, None, :]
        file["INPUTS/Jets/delta_r"] = np.where(real, np.hypot(d_eta, d_phi), np.nan).astype(np.float32)
        file["INPUTS/Jets/mjj"] = np.where(real, mjj, np.nan).astype(np.float32)
    return path


# ----------------------------------------------------------------------------- event file


def test_relative_inputs_are_object_inputs_in_event_file_order():
    spec = spec_from(
        "INPUTS:\n  RELATIVE:\n    Jets: {pt: none}\n  SEQUENTIAL:\n    Leptons: {pt: none}\n"
        "  GLOBAL:\n    Met: {met: none}\n"
        "EVENT:\n  lt: [{b: Jets}, {l: Leptons}]\n"
    )
    assert [(s.name, s.kind) for s in spec.sequential] == [("Jets", "RELATIVE"), ("Leptons", "SEQUENTIAL")]
    assert [s.name for s in spec.relative] == ["Jets"]
    assert spec.particle("lt").products[0].input == "Jets"


# ----------------------------------------------------------------------------- file layout


def test_a_spanet_layout_relative_file_passes_validation(tmp_path):
    path = write_relative_file(tmp_path / "relative.h5")
    report = schema.validate_file(path, RELATIVE)
    assert report.ok, report.first_error()
    assert report.summary["inputs"]["Jets"]["kind"] == "RELATIVE"
    assert report.summary["inputs"]["Jets"]["pair_features"] == ["delta_r", "mjj"]


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((64, 10, 11), "expected 10 objects per event like INPUTS/Jets/MASK, got 11 partners per object"),
        ((64, 10, 10, 2), "expected a 2-D dataset (N_events, max_objects) or a 3-D one"),
    ],
)
def test_a_badly_shaped_pair_feature_is_one_line_error(tmp_path, shape, message):
    path = write_relative_file(tmp_path / "relative.h5")
    with h5py.File(path, "a") as file:
        del file["INPUTS/Jets/mjj"]
        file["INPUTS/Jets/mjj"] = np.zeros(shape, dtype=np.float32)
    problem = schema.validate_file(path, RELATIVE).first_error()
    assert problem is not None and problem.where == "INPUTS/Jets/mjj"
    assert problem.message.startswith(message) and "\n" not in problem.message


def test_a_nonfinite_value_counts_only_between_real_objects(tmp_path):
    path = write_relative_file(tmp_path / "relative.h5")  # padding pairs hold NaN already
    assert schema.validate_file(path, RELATIVE).ok
    with h5py.File(path, "a") as file:
        values = file["INPUTS/Jets/delta_r"][:]
        values[3, 0, 1] = np.inf
        file["INPUTS/Jets/delta_r"][...] = values
    problem = schema.validate_file(path, RELATIVE).first_error()
    assert problem.where == "INPUTS/Jets/delta_r" and "first: event 3" in problem.message


def test_reader_gives_pairs_their_diagonal_and_zero_padding(tmp_path):
    path = write_relative_file(tmp_path / "relative.h5", num_events=8)
    with h5py.File(path) as file:
        layout = reader.resolve_layout(file, RELATIVE, path, "")
        block = reader.read_block(file, RELATIVE, layout, 0, 8)
        raw = file["INPUTS/Jets/mjj"][:]
    mask = block.masks["Jets"]
    assert layout.pair_features == {"Jets": ("delta_r", "mjj")}
    assert block.pairs["Jets"].shape == (8, 10, 10, 2)
    real = mask[:, :, None] & mask[:, None, :]
    np.testing.assert_array_equal(block.pairs["Jets"][..., 1][real], raw[real])
    assert (block.pairs["Jets"][~real] == 0).all()
    diagonal = np.diagonal(raw, axis1=1, axis2=2)  # an object with itself: its own mass
    np.testing.assert_array_equal(block.features["Jets"][..., 6][mask], diagonal[mask])


def test_pair_statistics_apply_the_log_option_over_real_pairs(tmp_path):
    path = write_relative_file(tmp_path / "relative.h5")
    with h5py.File(path) as file:
        layout = reader.resolve_layout(file, RELATIVE, path, "")
        block = reader.read_block(file, RELATIVE, layout, 0, layout.num_events)
        mjj, mask = file["INPUTS/Jets/mjj"][:], file["INPUTS/Jets/MASK"][:]
    stats = compute_statistics(RELATIVE, small_options(), [block], source=str(path),
                               max_objects=layout.max_objects, classifications={},
                               pair_features=layout.pair_features)
    real = np.log1p(mjj[mask[:, :, None] & mask[:, None, :]].astype(np.float64))  # SPANet: log(x + 1)
    assert stats.pair_features == {"Jets": ["delta_r", "mjj"]}
    assert stats.pair_mean["Jets"][1] == pytest.approx(real.mean(), rel=1e-6)
    assert stats.pair_std["Jets"][1] == pytest.approx(real.std(), rel=1e-5)


def test_a_test_file_must_store_the_same_pair_features_as_the_training_file():
    with pytest.raises(InputError, match=r"INPUTS/Jets/mjj: expected \(N, W, W\) per object pair"):
        hdf5_layout.check_pair_features({"Jets": ("delta_r",)}, {"Jets": ["delta_r", "mjj"]}, "test.h5")


def test_the_pair_feature_named_for_a_mismatch_does_not_change_from_run_to_run():
    """The feature named was the first of a set, which follows Python's per-process string hashing:
    spanet-test on one file said delta_r in one run and mjj in the next (found comparing runs of
    spanet-test). It is now the first in event-file order, whatever PYTHONHASHSEED is."""
    code = ("from spanet_lite.dataset import hdf5_layout\n"
            "try:\n"
            "    hdf5_layout.check_pair_features({'Jets': ('a', 'b', 'c', 'd', 'e', 'f')}, {}, 'test.h5')\n"
            "except Exception as error:\n"
            "    print(error)\n")
    said = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(Path(__file__).parents[1])}
        said.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True, timeout=60).stdout)
    assert len(said) == 1 and "INPUTS/Jets/a: expected (N, W) per object" in said.pop()


def test_trimming_cuts_pairs_on_both_object_axes():
    mask = torch.tensor([[True, True, False, False], [True, False, False, False]])
    pairs = torch.arange(2 * 4 * 4, dtype=torch.float32).view(2, 4, 4, 1)
    batch = Batch({"Jets": torch.zeros(2, 4, 1)}, {"Jets": mask}, pairs={"Jets": pairs})
    trimmed = batch.trimmed(["Jets"])
    assert trimmed.pairs["Jets"].shape == (2, 2, 2, 1)
    torch.testing.assert_close(trimmed.pairs["Jets"], pairs[:, :2, :2])


# ----------------------------------------------------------------------------- physics features


def test_physics_pair_features_of_two_perpendicular_massless_jets():
    # (pt, eta, sin_phi, cos_phi, mass): 100 GeV along x, 50 GeV along y, both at eta = 0.
    kin = torch.tensor([[[100.0, 0, 0, 1, 0], [50.0, 0, 1, 0, 0], [7.0, 1, 0, 1, 3]]])
    features = pair_features(kin, torch.tensor([[True, True, False]]))
    ln_dr, ln_kt, ln_z, ln_m2 = features[0, 0, 1].tolist()
    assert ln_dr == pytest.approx(math.log(math.pi / 2), abs=1e-5)
    assert ln_kt == pytest.approx(math.log(50 * math.pi / 2), abs=1e-5)
    assert ln_z == pytest.approx(math.log(1 / 3), abs=1e-5)
    assert ln_m2 == pytest.approx(math.log(2 * 100 * 50), abs=1e-5)  # m^2 = 2 E1 E2 (1 - cos 90 deg)
    torch.testing.assert_close(features[0, 1, 0], features[0, 0, 1])
    assert (features[0, 2] == 0).all() and (features[0, :, 2] == 0).all()  # padding
    assert (features[0, 0, 0] == 0).all()  # diagonal


def _ln_m2(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """ln m^2 of two (pt, eta, phi, mass) objects in float64, from the invariant form."""
    (pa, ea, fa, ma), (pb, eb, fb, mb) = a, b
    mta, mtb = math.hypot(pa, ma), math.hypot(pb, mb)
    ya, yb = math.asinh(pa / mta * math.sinh(ea)), math.asinh(pb / mtb * math.sinh(eb))
    return math.log(ma**2 + mb**2 + 2 * (mta * mtb * math.cosh(ya - yb) - pa * pb * math.cos(fa - fb)))


@pytest.mark.parametrize("a, b", [
    ((30.0, 4.5, 0.0, 0.0), (40.0, 4.52, 0.03, 0.0)),  # two close forward jets
    ((40.0, 4.0, 0.0, 4.0), (35.0, 4.05, 0.05, 3.0)),
    ((1000.0, 20.0, 0.0, 5.0), (30.0, 0.0, 0.0, 3.0)),
])
def test_ln_m2_keeps_its_digits_for_forward_pairs(a, b):
    # E^2 - p^2 of the pair sum cancelled ~cosh^2(y) of float32's digits: 0.69 for 0.44 in the
    # first pair, and ln(1e-8) (m^2 "zero") for the third.
    kin = torch.tensor([[[p, e, math.sin(f), math.cos(f), m] for p, e, f, m in (a, b)]])
    ln_m2 = pair_features(kin, torch.ones(1, 2, dtype=torch.bool))[0, 0, 1, 3].item()
    assert ln_m2 == pytest.approx(_ln_m2(a, b), abs=1e-4)


def test_an_object_far_along_the_beam_keeps_every_pair_feature_finite():
    # |eta| = 40 with pt = 1 TeV overflowed E^2: inf - inf made ln m^2 NaN, hence the training
    # statistics and every output of the network NaN. Beyond MAX_ETA = 30 eta counts as 30.
    kin = torch.tensor([[[1000.0, 40.0, 0, 1, 5.0], [30.0, 0.0, 0, 1, 3.0], [1e6, -89.0, 1, 0, 1e3],
                         [1e20, 0.0, 0, 1, 0.0], [1e20, 0.0, 0, 1, 1e20]]])  # pt^2 overflows float32
    features = pair_features(kin, torch.ones(1, 5, dtype=torch.bool))
    assert torch.isfinite(features).all()
    assert features[0, 0, 1, 3].item() == pytest.approx(
        _ln_m2((1000.0, 30.0, 0.0, 5.0), (30.0, 0.0, 0.0, 3.0)), abs=1e-4)


def test_phi_and_its_sine_and_cosine_give_the_same_pair_features():
    sincos = spec_from(ttbar_yaml("{pt: none, eta: none, sin_phi: none, cos_phi: none, mass: none}"))
    phi = torch.rand(2, 5) * 6 - 3
    pt, eta, mass = torch.rand(2, 5) * 100 + 20, torch.randn(2, 5), torch.rand(2, 5) * 10
    mask = torch.ones(2, 5, dtype=torch.bool)
    a = pair_features(torch.stack([pt, eta, phi.sin(), phi.cos(), mass], -1), mask)
    columns = kinematic_columns(sincos)["Jets"]
    assert (columns.sin_phi, columns.cos_phi) == (2, 3)
    from spanet_lite.dataset.pair_features import kinematics

    by_phi = kinematics(torch.stack([mass, pt, eta, phi, torch.zeros_like(pt)], -1),
                        kinematic_columns(PHYSICS)["Jets"])
    torch.testing.assert_close(pair_features(by_phi, mask), a, atol=1e-4, rtol=1e-5)


def test_auto_uses_physics_pairs_when_every_object_input_has_the_kinematics():
    without = spec_from(ttbar_yaml("{pt: log_normalize, eta: normalize, btag: none}"))

    def bias(spec, option):
        return SpanetNetwork(spec, small_options(pair_features=option), DatasetStatistics()).pair_bias

    assert bias(without, "auto") is None and bias(PHYSICS, "none") is None
    assert bias(PHYSICS, "auto") is not None


def test_a_run_stored_before_the_option_existed_has_no_pair_features():
    from spanet_lite.config.options import Options

    stored = {k: v for k, v in Options().to_dict().items() if k != "pair_features"}
    assert Options.from_dict(stored).pair_features == "none"
    assert Options().pair_features == "auto"


def test_missing_kinematics_are_a_one_line_error_naming_the_input():
    spec = spec_from(ttbar_yaml("{pt: log_normalize, eta: normalize, btag: none}"))
    with pytest.raises(InputError) as error:
        SpanetNetwork(spec, small_options(pair_features="physics"), DatasetStatistics())
    text = str(error.value)
    assert "INPUTS.SEQUENTIAL.Jets" in text and "no mass, no phi (or sin_phi and cos_phi)" in text
    assert "\n" not in text


# ----------------------------------------------------------------------------- network


def pair_network(spec=PHYSICS, **changes) -> SpanetNetwork:
    torch.manual_seed(0)
    stats = DatasetStatistics(pair_features={s.name: ["delta_r"] for s in spec.relative})
    net = SpanetNetwork(spec, small_options(**changes), stats).eval()
    torch.nn.init.normal_(net.pair_bias.mlp[-1].weight)  # trained-like: a fresh bias is exactly 0
    torch.nn.init.normal_(net.pair_bias.mlp[-1].bias)
    return net


def jets(batch: int, width: int, generator: torch.Generator):
    x = torch.rand(batch, width, 5, generator=generator) * torch.tensor([10.0, 200, 4, 6, 1]) + torch.tensor(
        [0.0, 20, -2, -3, 0]
    )
    counts = torch.randint(3, width + 1, (batch, 1), generator=generator)
    return x, torch.arange(width)[None] < counts


def test_a_fresh_pair_bias_is_zero_and_a_trained_one_changes_the_outputs():
    generator = torch.Generator().manual_seed(1)
    x, mask = jets(2, 6, generator)
    torch.manual_seed(0)
    plain = SpanetNetwork(PHYSICS, small_options(pair_features="none"), DatasetStatistics()).eval()
    torch.manual_seed(0)
    fresh = SpanetNetwork(PHYSICS, small_options(pair_features="physics"), DatasetStatistics()).eval()
    fresh.load_state_dict({**fresh.state_dict(), **plain.state_dict()})
    with torch.no_grad():
        a = plain({"Jets": x}, {"Jets": mask}).assignments["t1"]
        b = fresh({"Jets": x}, {"Jets": mask}).assignments["t1"]
        c = pair_network(pair_features="physics")({"Jets": x}, {"Jets": mask}).assignments["t1"]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a.nan_to_num(0, 0, 0), c.nan_to_num(0, 0, 0))


def test_physics_pair_features_are_bitwise_symmetric_so_training_runs_the_mlp_on_half_the_pairs():
    generator = torch.Generator().manual_seed(3)
    x, mask = jets(16, 7, generator)
    net = pair_network(pair_features="physics")
    bias = net.pair_bias
    assert not bias.relative  # physics only: the half-pair form applies
    features = bias.features({"Jets": x}, {"Jets": mask}, {})
    assert torch.equal(features, features.transpose(1, 2))
    evaluated = bias({"Jets": x}, {"Jets": mask}, {})  # eval: the MLP on every pair
    bias.train()
    trained = bias({"Jets": x}, {"Jets": mask}, {})  # training: pairs a <= b, mirrored
    torch.testing.assert_close(trained, evaluated, rtol=1e-6, atol=1e-6)
    trained.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in bias.mlp.parameters())


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_with_pairs_permuting_objects_permutes_the_outputs(seed):
    net = pair_network(pair_features="physics")
    generator = torch.Generator().manual_seed(seed)
    x, mask = jets(3, 6, generator)
    order = torch.randperm(6, generator=generator)
    with torch.no_grad():
        out = net({"Jets": x}, {"Jets": mask})
        shuffled = net({"Jets": x[:, order]}, {"Jets": mask[:, order]})
    for name in ("t1", "t2"):
        expected = out.assignments[name][:, order][:, :, order][:, :, :, order]
        torch.testing.assert_close(shuffled.assignments[name], expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(shuffled.detections[name], out.detections[name], atol=1e-4, rtol=1e-4)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(1, 3))
def test_with_pairs_padded_objects_and_pairs_change_nothing(seed, extra):
    net = pair_network(RELATIVE, pair_features="physics")
    generator = torch.Generator().manual_seed(seed)
    x, mask = jets(3, 5, generator)
    x = torch.cat([x, torch.rand(3, 5, 2, generator=generator)], -1)
    pairs = torch.rand(3, 5, 5, 1, generator=generator) * (mask[:, :, None] & mask[:, None, :])[..., None]
    wide_x = torch.cat([x, torch.full((3, extra, 7), 123.0)], 1)
    wide_mask = torch.cat([mask, torch.zeros(3, extra, dtype=torch.bool)], 1)
    wide_pairs = torch.nn.functional.pad(pairs, (0, 0, 0, extra, 0, extra), value=55.0)
    with torch.no_grad():
        out = net({"Jets": x}, {"Jets": mask}, {"Jets": pairs})
        wide = net({"Jets": wide_x}, {"Jets": wide_mask}, {"Jets": wide_pairs})
    for name in ("t1", "t2"):
        torch.testing.assert_close(wide.assignments[name][:, :5, :5, :5], out.assignments[name],
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(wide.detections[name], out.detections[name], atol=1e-4, rtol=1e-4)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_with_pairs_symmetric_products_stay_bitwise_equal(seed):
    net = pair_network(RELATIVE, pair_features="physics")
    generator = torch.Generator().manual_seed(seed)
    x, mask = jets(2, 6, generator)
    x = torch.cat([x, torch.rand(2, 6, 2, generator=generator)], -1)
    pairs = torch.rand(2, 6, 6, 1, generator=generator)  # not even symmetric in the two objects
    with torch.no_grad():
        out = net({"Jets": x}, {"Jets": mask}, {"Jets": pairs}).assignments
    for name in ("t1", "t2"):
        for element in RELATIVE.particle(name).symmetry.elements:
            assert torch.equal(out[name].permute(0, *[1 + a for a in element]), out[name])


# ----------------------------------------------------------------------------- end to end


@needs("onnxruntime", extra="onnx")
@pytest.mark.parametrize("mode", ["memory", "device"])
def test_a_relative_input_trains_tests_and_predicts(tmp_path, capsys, mode):
    import json

    from spanet_lite.cli import inspect as inspect_cli
    from spanet_lite.cli import predict as predict_cli
    from spanet_lite.cli import test as test_cli
    from spanet_lite.cli import train as train_cli

    data = write_relative_file(tmp_path / "relative.h5", num_events=96)
    (tmp_path / "event.yaml").write_text(RELATIVE_YAML, encoding="utf-8")
    options = {"event_info_file": str(tmp_path / "event.yaml"), "training_file": str(data),
               "hidden_dim": 16, "num_attention_heads": 2, "num_encoder_layers": 1,
               "num_branch_encoder_layers": 1, "batch_size": 32, "epochs": 1,
               "train_validation_split": 0.75, "pair_features": "physics", "dataset_mode": mode}
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    assert inspect_cli.main([str(data), "--event-file", str(tmp_path / "event.yaml")]) == 0
    runs = str(tmp_path / "runs")
    assert train_cli.main([str(tmp_path / "options.json"), "-l", runs, "-n", "rel", "-q"]) == 0
    run_dir = tmp_path / "runs" / "rel" / "version_0"
    statistics = json.loads((run_dir / "statistics.json").read_text())
    assert statistics["pair_features"] == {"Jets": ["delta_r", "mjj"]}
    with pytest.warns(SpanetWarning, match="training file"):  # tested on its own training events
        assert test_cli.main([str(run_dir), "-tf", str(data), "--json", str(tmp_path / "test.json")]) == 0
    assert 0 <= json.loads((tmp_path / "test.json").read_text())["event_purity"] <= 1
    assert predict_cli.main([str(run_dir), str(data), str(tmp_path / "predicted.h5")]) == 0
    with h5py.File(tmp_path / "predicted.h5") as file:
        assert file["INPUTS/Jets/mjj"].shape == (96, 10, 10)
    _onnx_matches_torch(run_dir, data, tmp_path / "model.onnx")
    capsys.readouterr()


def _onnx_matches_torch(run_dir: Path, data: Path, model: Path) -> None:
    """The exported graph, fed the file's first events in SPANet's RELATIVE layout (8 of 10
    slots), gives the network's outputs."""
    import onnxruntime

    from spanet_lite.cli import export as export_cli
    from spanet_lite.evaluation.run import load_run

    assert export_cli.main([str(run_dir), str(model)]) == 0
    run = load_run(run_dir)
    with h5py.File(data) as file:
        inputs = reader.read_inputs(file, RELATIVE, 0, 4)
    x, mask = inputs.features["Jets"][:, :8], inputs.masks["Jets"][:, :8]
    pairs = inputs.pairs["Jets"][:, :8, :8]
    # SPANet's layout: [b, i, j] = object j's per-object features, then pair (i, j)'s features;
    # log features enter as log(1 + x) (SPANet's default export convention).
    logs = np.array([f.log for f in RELATIVE.input("Jets").features])
    per_object = np.where(logs[:5], np.log1p(np.maximum(x[..., :5], 0)), x[..., :5])
    spanet = np.concatenate([np.broadcast_to(per_object[:, None], (4, 8, 8, 5)),
                             np.where(logs[5:], np.log1p(pairs), pairs)], -1).astype(np.float32)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    session = onnxruntime.InferenceSession(str(model))
    onnx_t1 = session.run(["t1_assignment_probability"],
                          {"Jets_data": spanet, "Jets_mask": pair_mask})[0]
    with torch.no_grad():
        torch_t1 = run.network({"Jets": torch.from_numpy(x)}, {"Jets": torch.from_numpy(mask)},
                               {"Jets": torch.from_numpy(pairs)}).assignments["t1"].exp().numpy()
    predictions = run.predict({"Jets": x}, {"Jets": mask}, pairs={"Jets": pairs}, threshold=0)
    assert predictions.assignments["t1"].shape == (4, 3)
    with pytest.raises(InputError, match=r"^pairs: expected an entry for every RELATIVE input with pair "
                                         r"features \(Jets\), got none for Jets$"):
        run.predict({"Jets": x}, {"Jets": mask})
    real = torch_t1 > 1e-6
    np.testing.assert_allclose(onnx_t1[real], torch_t1[real], rtol=2e-3)
    assert np.abs(onnx_t1 - torch_t1).max() < 1e-4


def test_physics_pair_statistics_come_from_the_first_training_events_only(tmp_path, monkeypatch):
    """The computed pair features' mean and std are measured on a bounded sample (the first
    PHYSICS_PAIR_EVENTS training events), in slices, so a large file costs no more than that."""
    from _evaluation_helpers import TTBAR_YAML, write_ttbar_file

    from spanet_lite.dataset import normalization, reader
    from spanet_lite.dataset.hdf5_layout import EVENT_WEIGHT_DATASET

    spec = spec_from(TTBAR_YAML)
    options = small_options(pair_features="physics")
    path = write_ttbar_file(tmp_path / "events.h5", num_events=60)
    with h5py.File(path) as file:
        layout = reader.resolve_layout(file, spec, path, EVENT_WEIGHT_DATASET)
        block = reader.read_block(file, spec, layout, 0, 60)

    def statistics(events: int):
        part = block.select(slice(0, events))
        return compute_statistics(spec, options, [part], source=str(path), max_objects=layout.max_objects,
                                  classifications=part.classifications)

    monkeypatch.setattr(normalization, "PHYSICS_PAIR_EVENTS", 25)
    monkeypatch.setattr(normalization, "PHYSICS_PAIR_SLICE", 7)  # several slices
    sampled = statistics(60)
    monkeypatch.setattr(normalization, "PHYSICS_PAIR_EVENTS", 10**9)
    first = statistics(25)
    np.testing.assert_allclose(sampled.physics_pair_mean, first.physics_pair_mean, rtol=1e-12)
    np.testing.assert_allclose(sampled.physics_pair_std, first.physics_pair_std, rtol=1e-12)
    assert sampled.num_training_events == 60  # the other statistics still see every event
