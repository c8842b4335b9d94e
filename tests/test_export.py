"""spanet-export: the ONNX graph gives the torch network's numbers, at other batch and object sizes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from _evaluation_helpers import TWO_INPUTS_YAML, make_run_dir, write_two_input_file
from conftest import needs

from spanet_lite.assignment import numpy_decoder
from spanet_lite.assignment.decoding import decode
from spanet_lite.cli import export as export_cli
from spanet_lite.errors import InputError
from spanet_lite.evaluation.export import Convention, example_inputs, export_onnx, input_names, output_names
from spanet_lite.evaluation.inference import embedding_vectors
from spanet_lite.evaluation.run import load_run

try:
    import onnxruntime
except ImportError:  # needs_onnxruntime skips (or, under CI, fails) the tests that use it
    onnxruntime = None

needs_onnxruntime = needs("onnxruntime", extra="onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, generated_tth):
    folder = tmp_path_factory.mktemp("export")
    event_yaml = (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(folder / "run", event_yaml, generated_tth / "example.h5", seed=3)
    model = folder / "model.onnx"
    assert export_cli.main([str(run_dir), str(model), "--copy-decoder"]) == 0
    return load_run(run_dir), model


LOGS = Convention(input_log_transform=True, output_log_transform=True, output_embeddings=True)


@pytest.fixture(scope="module")
def exported_with_logs(exported):
    run, model = exported
    other = model.with_name("logs.onnx")
    flags = ["--input-log-transform", "--output-log-transform", "--output-embeddings"]
    assert export_cli.main([str(run.directory), str(other), *flags]) == 0
    return run, other


def raw_inputs(run, inputs, convention):
    """The network's inputs (raw file units; GLOBAL (B, F)) from the ONNX feeds of ``convention``."""
    features, masks = {}, {}
    for i, source in enumerate(run.spec.inputs):
        data = inputs[2 * i]
        if not convention.input_log_transform:
            log = torch.tensor([f.log for f in source.features])
            data = torch.where(log, torch.expm1(data), data)
        if source.kind == "GLOBAL":
            features[source.name] = data[:, 0]
        else:
            features[source.name], masks[source.name] = data, inputs[2 * i + 1]
    return features, masks


def assert_same(onnx_out, expected):
    assert set(expected) == set(onnx_out)
    for name, value in expected.items():
        ours, theirs = onnx_out[name], value.numpy()
        assert ours.shape == theirs.shape, name
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs), err_msg=name)
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], atol=1e-4, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("opset", ["7", "13", "21"])
def test_export_refuses_an_opset_the_graph_cannot_be_written_in(exported, tmp_path, capsys, opset):
    run, _ = exported
    assert export_cli.main([str(run.directory), str(tmp_path / "model.onnx"), "--opset", opset]) == 2
    assert capsys.readouterr().err.strip() == (
        f"spanet-export: error: --opset: expected an ONNX opset from 14 to 20, got {opset}"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_opset_from_python_follows_the_integer_rule(exported, tmp_path):
    """opset="17" read 'expected an ONNX opset from 14 to 20, got 17' (a valid-looking value),
    and opset=17.0 passed the range test and went on as a float."""
    from spanet_lite.evaluation.export import check_opset

    run, _ = exported
    with pytest.raises(InputError, match=r"^opset: expected an integer, got '17'$"):
        export_onnx(run, tmp_path / "model.onnx", opset="17")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    assert check_opset(17.0, "opset") == 17 and type(check_opset(17.0, "opset")) is int


@needs_onnxruntime
@pytest.mark.parametrize(("batch", "objects"), [(5, 13), (1, 19), (3, 7)])
def test_onnxruntime_matches_torch_in_spanets_default_convention(exported, batch, objects):
    run, model = exported
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = example_inputs(run.spec, batch=batch, objects=objects)
    feeds = {name: tensor.numpy() for name, tensor in zip(input_names(run.spec), inputs)}
    onnx_out = dict(zip(output_names(run.spec), session.run(None, feeds)))
    with torch.no_grad():
        outputs = run.network(*raw_inputs(run, inputs, Convention()))
        regressions = run.network.denormalize_regressions(outputs.regressions)
    particles = run.spec.particle_names
    expected = {f"{p}_assignment_probability": outputs.assignments[p].exp() for p in particles}
    expected |= {f"{p}_detection_probability": torch.sigmoid(outputs.detections[p]) for p in particles}
    expected |= dict(regressions)
    expected["EVENT/signal"] = torch.softmax(outputs.classifications["EVENT/signal"], -1)
    assert_same(onnx_out, expected)
    for p in particles:  # probabilities, normalised over the tuples
        total = onnx_out[f"{p}_assignment_probability"].reshape(batch, -1).sum(1)
        np.testing.assert_allclose(total, 1.0, rtol=1e-4)


@needs_onnxruntime
def test_log_transforms_and_embeddings_follow_spanets_flags(exported_with_logs):
    run, model = exported_with_logs
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = example_inputs(run.spec, batch=4, objects=9, convention=LOGS)
    feeds = {name: tensor.numpy() for name, tensor in zip(input_names(run.spec), inputs)}
    names = output_names(run.spec, LOGS)
    assert [o.name for o in session.get_outputs()] == names
    onnx_out = dict(zip(names, session.run(None, feeds)))
    with torch.no_grad():
        outputs = run.network(*raw_inputs(run, inputs, LOGS))
        regressions = run.network.denormalize_regressions(outputs.regressions)
        vectors = embedding_vectors(run.spec, outputs)
    particles = run.spec.particle_names
    expected = {f"{p}_assignment_log_probability": outputs.assignments[p] for p in particles}
    expected |= {
        f"{p}_detection_log_probability": torch.nn.functional.logsigmoid(outputs.detections[p])
        for p in particles
    }
    expected |= dict(regressions)
    expected["EVENT/signal"] = torch.log_softmax(outputs.classifications["EVENT/signal"], -1)
    expected |= {f"{key}/embedding_vector": value for key, value in vectors.items()}
    assert_same(onnx_out, expected)
    assert "EVENT/embedding_vector" in onnx_out and "ht/q1/embedding_vector" in onnx_out


@needs_onnxruntime
def test_numpy_decoder_on_onnx_probabilities_matches_the_torch_decoder(exported):
    run, model = exported
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = example_inputs(run.spec, batch=16, objects=11)
    feeds = {name: tensor.numpy() for name, tensor in zip(input_names(run.spec), inputs)}
    out = dict(zip(output_names(run.spec), session.run(None, feeds)))
    particles = run.spec.particle_names
    chosen = numpy_decoder.decode(
        {p: out[f"{p}_assignment_probability"] for p in particles},
        detections={p: out[f"{p}_detection_probability"] for p in particles},
        threshold=0.5,
        probabilities=True,
    )
    with torch.no_grad():
        outputs = run.network(*raw_inputs(run, inputs, Convention()))
    detections = {p: torch.sigmoid(v) for p, v in outputs.detections.items()}
    reference = decode(outputs.assignments, run.spec, detections=detections, threshold=0.5)
    for p in particles:
        np.testing.assert_array_equal(chosen[p], reference[p].numpy())


def test_the_onnx_decoder_imports_nothing_but_numpy(exported):
    _, model = exported
    copy = model.with_name("onnx_decoder.py")
    assert copy.is_file()
    script = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('torch', 'spanet_lite', 'onnxruntime'):\n"
        "        raise ImportError(name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        f"sys.path.insert(0, {str(copy.parent)!r})\n"
        "import numpy as np, onnx_decoder\n"
        "lp = np.log(np.full((1, 4, 4), 1 / 12.0)); lp[:, range(4), range(4)] = -np.inf\n"
        "print(onnx_decoder.decode({'h': lp})['h'].tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[[0, 1]]"


@needs("onnx", extra="onnx")
def test_input_and_output_names_and_shapes_are_spanets(exported):
    import onnx

    run, model = exported
    graph = onnx.load(str(model))
    assert [i.name for i in graph.graph.input] == ["Momenta_data", "Momenta_mask", "Met_data", "Met_mask"]
    assert [o.name for o in graph.graph.output] == [
        "lt_assignment_probability", "ht_assignment_probability", "h_assignment_probability",
        "lt_detection_probability", "ht_detection_probability", "h_detection_probability",
        "EVENT/neutrino_eta", "EVENT/neutrino_px", "EVENT/neutrino_py", "EVENT/neutrino_pz",
        "EVENT/log_invariant_mass", "EVENT/signal",
    ]
    dims = {i.name: i.type.tensor_type.shape.dim for i in graph.graph.input}
    assert [d.dim_param for d in dims["Momenta_data"][:2]] == ["batch_size", "num_Momenta"]
    met_features = run.spec.input("Met").num_features
    assert dims["Met_data"][2].dim_value == met_features and len(dims["Met_data"]) == 3  # GLOBAL: (B, 1, F)
    assert len(dims["Met_mask"]) == 2
    metadata = json.loads({p.key: p.value for p in graph.metadata_props}["spanet_lite"])
    assert metadata["particles"][1] == {"name": "ht", "products": ["b", "q1", "q2"]}
    assert metadata["output_names"] == [o.name for o in graph.graph.output]
    assert metadata["convention"] == {
        "layout": "spanet", "input_log_transform": False, "output_log_transform": False,
        "output_embeddings": False,
    }


def test_export_refuses_a_name_without_onnx_suffix(exported, tmp_path, capsys):
    run, _ = exported
    assert export_cli.main([str(run.directory), str(tmp_path / "model.bin")]) == 2
    assert ".onnx" in capsys.readouterr().err


@needs_onnxruntime
def test_two_inputs_narrower_than_training_keep_the_combined_index_space(tmp_path):
    from spanet_lite.evaluation.export import export_onnx

    data = write_two_input_file(tmp_path / "two.h5")  # trained widths: Jets 6, Leptons 2
    run = load_run(make_run_dir(tmp_path / "run", TWO_INPUTS_YAML, data))
    model = export_onnx(run, tmp_path / "model.onnx", convention=Convention(input_log_transform=True))
    generator = torch.Generator().manual_seed(0)
    jets = torch.rand(4, 5, 2, generator=generator) * 50 + 1
    jets_mask = torch.ones(4, 5, dtype=torch.bool)
    jets_mask[0, 3:] = False
    leptons = torch.rand(4, 1, 2, generator=generator) * 50 + 1
    leptons_mask = torch.ones(4, 1, dtype=torch.bool)
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {"Jets_data": jets.numpy(), "Jets_mask": jets_mask.numpy(),
             "Leptons_data": leptons.numpy(), "Leptons_mask": leptons_mask.numpy()}
    out = dict(zip(output_names(run.spec), session.run(None, feeds)))
    with torch.no_grad():
        masks = {"Jets": jets_mask, "Leptons": leptons_mask}
        reference = run.network({"Jets": jets, "Leptons": leptons}, masks)
    for particle in ("lt", "ht"):
        with np.errstate(divide="ignore"):  # probability 0 where impossible: log -inf, as the network's
            ours = np.log(out[f"{particle}_assignment_probability"])
        theirs = reference.assignments[particle].numpy()
        assert ours.shape == theirs.shape == (4,) + (6,) * (2 if particle == "lt" else 3)
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], atol=1e-4, rtol=1e-4)


def test_the_default_opset_is_spanets_and_the_help_says_which():
    from spanet_lite.evaluation.export import OPSET

    assert OPSET == 15  # SPANet's --opset default (shared/spanet_reference.md)
    assert f"default: {OPSET}, SPANet's" in export_cli.build_parser().format_help()


def test_exporting_a_run_loaded_on_a_gpu_leaves_it_there(exported, tmp_path, monkeypatch):
    """The graph is traced on the CPU: a notebook's run loaded with device="cuda" was left on the
    CPU by export_onnx, so its next run.predict ran there, with nothing said."""
    from spanet_lite.evaluation.export import export_onnx
    from spanet_lite.evaluation.trained import TrainedRun

    run, _ = exported
    moves: list[torch.device] = []
    monkeypatch.setattr(TrainedRun, "device", property(lambda self: torch.device("cuda", 0)))
    monkeypatch.setattr(run.network, "to", lambda device: moves.append(torch.device(device)) or run.network)
    export_onnx(run, tmp_path / "model.onnx")
    assert moves == [torch.device("cpu"), torch.device("cuda", 0)]


@needs_onnxruntime
def test_a_log_gaussian_regression_exports_and_matches_torch(tmp_path):
    """ONNX has no expm1, which undoes log_gaussian's log: exporting any run with a log_gaussian
    target stopped with torch's UnsupportedOperatorError traceback."""
    import h5py

    from spanet_lite.evaluation.export import export_onnx

    data = write_two_input_file(tmp_path / "two.h5")
    with h5py.File(data, "a") as file:
        file["REGRESSIONS/EVENT/mass"] = np.linspace(500.0, 3000.0, 40).astype(np.float32)
    event_yaml = TWO_INPUTS_YAML + "REGRESSIONS:\n  EVENT: [[mass, log_gaussian]]\n"
    run = load_run(make_run_dir(tmp_path / "run", event_yaml, data))
    model = export_onnx(run, tmp_path / "model.onnx", convention=Convention(input_log_transform=True))
    generator = torch.Generator().manual_seed(0)
    jets, leptons = (torch.rand(3, n, 2, generator=generator) * 50 + 1 for n in (6, 2))
    masks = {"Jets": torch.ones(3, 6, dtype=torch.bool), "Leptons": torch.ones(3, 2, dtype=torch.bool)}
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    feeds = {"Jets_data": jets.numpy(), "Jets_mask": masks["Jets"].numpy(),
             "Leptons_data": leptons.numpy(), "Leptons_mask": masks["Leptons"].numpy()}
    out = dict(zip(output_names(run.spec), session.run(None, feeds)))
    with torch.no_grad():
        outputs = run.network({"Jets": jets, "Leptons": leptons}, masks)
        expected = run.network.denormalize_regressions(dict(outputs.regressions))["EVENT/mass"]
    np.testing.assert_allclose(out["EVENT/mass"], expected.numpy(), rtol=1e-4)


@needs_onnxruntime
def test_regression_and_classification_outputs_come_in_spanets_order_whatever_the_file_order(tmp_path):
    """SPANet's export orders these outputs by the event's structure (EVENT targets, then per
    particle in EVENT order its PARTICLE targets and its products' in product order), not by
    where the event file lists them: one listing t2 before EVENT exported them in file order, so
    code reading SPANet's outputs by position got another target's numbers."""
    import h5py

    from spanet_lite.evaluation.export import export_onnx

    data = write_two_input_file(tmp_path / "two.h5")
    with h5py.File(data, "a") as file:
        for key in ("EVENT/ht", "lt/PARTICLE/mass", "lt/l/pt", "ht/b/pt"):
            file[f"REGRESSIONS/{key}"] = np.linspace(1.0, 2.0, 40).astype(np.float32)
        for key in ("EVENT/signal", "ht/PARTICLE/charge"):
            file[f"CLASSIFICATIONS/{key}"] = np.arange(40) % 2
    event_yaml = TWO_INPUTS_YAML + (
        "REGRESSIONS:\n  ht: {b: [pt]}\n  lt: {l: [pt], PARTICLE: [mass]}\n  EVENT: [ht]\n"
        "CLASSIFICATIONS:\n  ht: {PARTICLE: [charge]}\n  EVENT: [signal]\n"
    )
    run = load_run(make_run_dir(tmp_path / "run", event_yaml, data))
    model = export_onnx(run, tmp_path / "model.onnx", convention=Convention(input_log_transform=True))
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names[4:] == [
        "EVENT/ht", "lt/PARTICLE/mass", "lt/l/pt", "ht/b/pt", "EVENT/signal", "ht/PARTICLE/charge",
    ]
    assert output_names(run.spec) == names
    generator = torch.Generator().manual_seed(0)
    jets, leptons = (torch.rand(3, n, 2, generator=generator) * 50 + 1 for n in (6, 2))
    masks = {"Jets": torch.ones(3, 6, dtype=torch.bool), "Leptons": torch.ones(3, 2, dtype=torch.bool)}
    feeds = {"Jets_data": jets.numpy(), "Jets_mask": masks["Jets"].numpy(),
             "Leptons_data": leptons.numpy(), "Leptons_mask": masks["Leptons"].numpy()}
    out = dict(zip(names, session.run(None, feeds)))
    with torch.no_grad():
        outputs = run.network({"Jets": jets, "Leptons": leptons}, masks)
        regressions = run.network.denormalize_regressions(dict(outputs.regressions))
    for key, value in regressions.items():  # each output holds its own target's numbers
        np.testing.assert_allclose(out[key], value.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    for key, logits in outputs.classifications.items():
        np.testing.assert_allclose(out[key], torch.softmax(logits, -1).numpy(), rtol=1e-4, atol=1e-6)


def test_graph_inputs_put_object_inputs_before_global_ones_as_the_docs_say():
    """docs/migrating_from_spanet.md: SPANet keeps the event file's order, here object inputs come
    first, so only the positions (never the names) differ with a GLOBAL section written first."""
    from spanet_lite.config import parse_event_spec

    spec = parse_event_spec(
        "INPUTS:\n  GLOBAL:\n    Met: {met: log_normalize}\n  SEQUENTIAL:\n    Jets: {pt: log_normalize}\n"
        "EVENT:\n  t: [a, b]\n"
    )
    assert input_names(spec) == ["Jets_data", "Jets_mask", "Met_data", "Met_mask"]
