"""SpanetNetwork: contract shapes, equivariance, padding, batch independence, normalisation."""

from __future__ import annotations

import math

import pytest
import torch
from _model_helpers import (
    MIXED_YAML,
    TTBAR_YAML,
    random_inputs,
    small_options,
    spec_from,
    statistics_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config import load_event_spec, validate_options
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError
from spanet_lite.model.network import SpanetNetwork
from spanet_lite.model.normalization import FeatureNormalizer, RegressionNormalizer
from spanet_lite.training.optimizer import parameter_groups

TTBAR = spec_from(TTBAR_YAML)
MIXED = spec_from(MIXED_YAML)


def network(spec=TTBAR, **changes) -> SpanetNetwork:
    torch.manual_seed(0)
    return SpanetNetwork(spec, small_options(**changes), statistics_for(spec)).eval()


def test_outputs_follow_the_contract():
    net = network()
    features, masks = random_inputs(TTBAR, 4, {"Jets": 7}, torch.Generator().manual_seed(1), min_objects=3)
    out = net(features, masks)
    assert set(out.assignments) == {"t1", "t2"}
    assert out.assignments["t1"].shape == (4, 7, 7, 7)
    assert out.detections["t1"].shape == (4,)
    assert set(out.regressions) == {"EVENT/ht", "t1/PARTICLE/mass", "t1/b/pt", "t2/PARTICLE/mass", "t2/b/pt"}
    assert all(v.shape == (4,) for v in out.regressions.values())
    assert out.classifications["EVENT/signal"].shape == (4, 3)
    assert out.event_vector.shape == (4, 16)
    total = torch.logsumexp(out.assignments["t2"].reshape(4, -1), 1)
    torch.testing.assert_close(total, torch.zeros(4), atol=1e-5, rtol=0)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permuting_input_objects_permutes_the_assignment_outputs(seed):
    net = network()
    generator = torch.Generator().manual_seed(seed)
    features, masks = random_inputs(TTBAR, 3, {"Jets": 6}, generator)
    order = torch.randperm(6, generator=generator)
    shuffled = {"Jets": features["Jets"][:, order], "Met": features["Met"]}
    with torch.no_grad():
        out = net(features, masks)
        out_shuffled = net(shuffled, {"Jets": masks["Jets"][:, order]})
    for name in ("t1", "t2"):
        expected = out.assignments[name][:, order][:, :, order][:, :, :, order]
        torch.testing.assert_close(out_shuffled.assignments[name], expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out_shuffled.detections[name], out.detections[name], atol=1e-4, rtol=1e-4)
    for key, value in out.regressions.items():
        torch.testing.assert_close(out_shuffled.regressions[key], value, atol=1e-4, rtol=1e-4)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(1, 3))
def test_appending_padded_objects_changes_nothing(seed, extra):
    net = network()
    features, masks = random_inputs(TTBAR, 3, {"Jets": 5}, torch.Generator().manual_seed(seed))
    padded_features = {
        "Jets": torch.cat([features["Jets"], torch.full((3, extra, 4), 123.0)], 1),
        "Met": features["Met"],
    }
    padded_masks = {"Jets": torch.cat([masks["Jets"], torch.zeros(3, extra, dtype=torch.bool)], 1)}
    with torch.no_grad():
        out = net(features, masks)
        wide = net(padded_features, padded_masks)
    for name in ("t1", "t2"):
        torch.testing.assert_close(
            wide.assignments[name][:, :5, :5, :5], out.assignments[name], atol=1e-4, rtol=1e-4
        )
        assert torch.isneginf(wide.assignments[name][:, 5:]).all()
        torch.testing.assert_close(wide.detections[name], out.detections[name], atol=1e-4, rtol=1e-4)
    assert out.regressions and out.classifications  # TTBAR has both heads, so both are checked
    for key, value in out.regressions.items():
        torch.testing.assert_close(wide.regressions[key], value, atol=1e-4, rtol=1e-4)
    for key, value in out.classifications.items():
        torch.testing.assert_close(wide.classifications[key], value, atol=1e-4, rtol=1e-4)


def test_a_batch_of_one_gives_the_same_outputs_as_inside_a_larger_batch():
    net = network(dropout=0.3)  # eval mode: dropout must be off
    features, masks = random_inputs(TTBAR, 5, {"Jets": 6}, torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = net(features, masks)
        single = net({k: v[2:3] for k, v in features.items()}, {k: v[2:3] for k, v in masks.items()})
    for name in ("t1", "t2"):
        torch.testing.assert_close(
            single.assignments[name][0], full.assignments[name][2], atol=1e-5, rtol=1e-5
        )
    for key in full.regressions:
        torch.testing.assert_close(single.regressions[key][0], full.regressions[key][2], atol=1e-5, rtol=1e-5)


def test_symmetric_products_get_bitwise_equal_probabilities_in_the_whole_network():
    net = network(MIXED)
    features, masks = random_inputs(MIXED, 2, {"Jets": 5, "Leptons": 3}, torch.Generator().manual_seed(4))
    with torch.no_grad():
        tri = net(features, masks).assignments["tri"]
    for element in MIXED.particle("tri").symmetry.elements:
        assert torch.equal(tri.permute(0, *[1 + a for a in element]), tri)
    lt = net(features, masks).assignments["lt"]
    assert lt.shape == (2, 8, 8)
    assert torch.isneginf(lt[:, 5:, :]).all() and torch.isneginf(lt[:, :, :5]).all()


def test_dropout_is_active_in_training_mode_only():
    net = network(dropout=0.5)
    features, masks = random_inputs(TTBAR, 2, {"Jets": 6}, torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = net(features, masks).detections["t1"]
        b = net(features, masks).detections["t1"]
        net.train()
        c = net(features, masks).detections["t1"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_tth_network_builds_and_runs(repo_root):
    spec = load_event_spec(repo_root / "event_files" / "semi_leptonic_ttH.yaml")  # SPANet's particles
    stats = DatasetStatistics(num_classes={"EVENT/signal": 2})
    net = SpanetNetwork(spec, small_options(), stats).eval()
    features = {"Momenta": torch.rand(2, 19, 9), "Met": torch.rand(2, spec.input("Met").num_features)}
    masks = {"Momenta": torch.arange(19)[None] < torch.tensor([[7], [19]])}
    out = net(features, masks)
    assert out.assignments["lt"].shape == (2, 19)
    assert out.assignments["ht"].shape == (2, 19, 19, 19)
    assert out.classifications["EVENT/signal"].shape == (2, 2)
    assert torch.isneginf(out.assignments["h"][0, 7:]).all()


def test_feature_normalizer_applies_log_then_standardises_and_zeroes_padding():
    stats = statistics_for(TTBAR)  # mean 0.5, std 2 everywhere
    normalizer = FeatureNormalizer(TTBAR, stats)
    jets = torch.tensor([[[math.e - 1, 3.0, 4.5, 1.0], [float("nan"), -5.0, 0.0, 0.0]]])
    out = normalizer(
        {"Jets": jets, "Met": torch.tensor([[0.0, 2.5]])}, {"Jets": torch.tensor([[True, False]])}
    )
    # mass, pt: log_normalize; eta: normalize; btag: none (event-file statistics still say 0.5/2 -> applied)
    expected = torch.tensor(
        [[[(1 - 0.5) / 2, (math.log(4.0) - 0.5) / 2, (4.5 - 0.5) / 2, (1 - 0.5) / 2], [0.0, 0.0, 0.0, 0.0]]]
    )
    torch.testing.assert_close(out["Jets"], expected)
    torch.testing.assert_close(out["Met"], torch.tensor([[(0.0 - 0.5) / 2, (2.5 - 0.5) / 2]]))


def test_regression_normalizer_round_trips_each_type():
    spec = spec_from(TTBAR_YAML)
    stats = DatasetStatistics(
        regression_center={"EVENT/ht": 2.0, "t1/PARTICLE/mass": 170.0, "t1/b/pt": 50.0},
        regression_scale={"EVENT/ht": 0.5, "t1/PARTICLE/mass": 10.0, "t1/b/pt": 0.0},
    )
    normalizer = RegressionNormalizer(spec, stats)
    raw = {
        "EVENT/ht": torch.tensor([math.e - 1, -(math.e - 1), float("nan")]),
        "t1/PARTICLE/mass": torch.tensor([180.0, 160.0, 170.0]),
        "t1/b/pt": torch.tensor([51.0, 49.0, 50.0]),
    }
    normalised = normalizer.normalize(raw)
    torch.testing.assert_close(normalised["EVENT/ht"][:2], torch.tensor([(1 - 2) / 0.5, (-1 - 2) / 0.5]))
    assert math.isnan(float(normalised["EVENT/ht"][2]))
    torch.testing.assert_close(normalised["t1/PARTICLE/mass"], torch.tensor([1.0, -1.0, 0.0]))
    torch.testing.assert_close(normalised["t1/b/pt"], torch.tensor([1.0, -1.0, 0.0]))  # zero scale -> 1
    back = normalizer.denormalize(normalised)
    for key, value in raw.items():
        torch.testing.assert_close(back[key], value, equal_nan=True)
    with pytest.raises(KeyError):
        normalizer.normalize({"EVENT/unknown": torch.zeros(1)})


def test_weight_decay_groups_exclude_biases_norms_and_embeddings():
    net = network()
    decay, rest = parameter_groups(net, 0.01)
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    names = {id(p): n for n, p in net.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "encoder.layers.0.qkv.weight" in decayed
    assert "embedding.mlps.Jets.first.weight" in decayed
    assert all(
        not n.endswith("bias") and "norm" not in n and n.split(".")[-1] != "embedding" for n in decayed
    )
    assert "embedding.type_embedding" in {names[id(p)] for p in rest["params"]}
    assert len(decay["params"]) + len(rest["params"]) == len(list(net.parameters()))


def test_attention_heads_that_do_not_divide_hidden_dim_are_an_options_error():
    with pytest.raises(InputError, match="num_attention_heads"):
        validate_options(small_options(hidden_dim=10, num_attention_heads=4))
