"""Trimming a batch's padded object axis (Batch.trimmed, kept_slots, trim_inputs, SlotMap).

The network, losses, decoding and metrics must see no difference but float rounding: outputs on
the kept slots, every loss term and the decoded assignments (mapped back) equal the untrimmed
batch's. One SEQUENTIAL input (with a GLOBAL one), two SEQUENTIAL inputs with targets in the
second (whose offset shrinks), masks that are not a prefix, and targets at padded slots.
"""

from __future__ import annotations

import h5py
import numpy as np
import torch
from _evaluation_helpers import TWO_INPUTS_YAML, make_run_dir, write_two_input_file
from _model_helpers import MIXED_YAML, TTBAR_YAML, small_options, spec_from, statistics_for
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.assignment.decoding import decode
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.batch import Batch, SlotMap, kept_slots, trim_inputs
from spanet_lite.evaluation.inference import device_inputs, infer
from spanet_lite.evaluation.predict import write_predictions
from spanet_lite.evaluation.run import load_run
from spanet_lite.model.network import SpanetNetwork
from spanet_lite.training.losses import compute_losses
from spanet_lite.training.module import SpanetModule

TTBAR = spec_from(TTBAR_YAML)  # Jets + GLOBAL Met, two 3-product tops, EVENT group, regressions
MIXED = spec_from(MIXED_YAML)  # Jets + Leptons, lt = (b: Jets, l: Leptons), tri = 3 symmetric products
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def network(spec: EventSpec) -> SpanetNetwork:
    torch.manual_seed(0)
    return SpanetNetwork(spec, small_options(), statistics_for(spec)).eval()


def sparse_batch(
    spec: EventSpec, masks: dict[str, torch.Tensor], generator: torch.Generator, classes: int = 3
) -> Batch:
    """Raw features (garbage in padded slots) for the given masks, and per event distinct targets
    drawn among the real objects each product may use; -1 where none is left."""
    size = next(iter(masks.values())).shape[0]
    features = {}
    for source in spec.sequential:
        shape = (*masks[source.name].shape, source.num_features)
        real = torch.rand(shape, generator=generator) * 5
        features[source.name] = torch.where(masks[source.name][..., None], real, torch.full(shape, -7.0))
    for source in spec.global_inputs:
        features[source.name] = torch.rand(size, source.num_features, generator=generator) * 5
    names = [s.name for s in spec.sequential]
    combined = torch.cat([masks[n] for n in names], 1)
    owner = torch.cat([torch.full((masks[n].shape[1],), i) for i, n in enumerate(names)])
    targets, target_masks = {}, {}
    for particle in spec.particles:
        chosen = torch.full((size, particle.num_products), -1, dtype=torch.long)
        for b in range(size):
            free = combined[b].clone()
            for j, product in enumerate(particle.products):
                allowed = free if product.input is None else free & (owner == names.index(product.input))
                candidates = torch.nonzero(allowed).squeeze(1)
                if len(candidates):
                    pick = candidates[torch.randint(len(candidates), (1,), generator=generator)]
                    chosen[b, j] = pick
                    free[pick] = False
        targets[particle.name] = chosen
        target_masks[particle.name] = (chosen >= 0).all(1) & (torch.rand(size, generator=generator) < 0.8)
    return Batch(
        features,
        masks,
        targets,
        target_masks,
        regressions={t.key: torch.randn(size, generator=generator) for t in spec.regressions},
        classifications={
            t.key: torch.randint(-1, classes, (size,), generator=generator) for t in spec.classifications
        },
    )


def scattered_masks(
    widths: dict[str, int], used: dict[str, int], size: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Real objects scattered over the first ``used`` slots (not a prefix); the last of them
    is real in event 0, so the kept width is exactly ``used``."""
    masks = {}
    for name, width in widths.items():
        mask = torch.zeros(size, width, dtype=torch.bool)
        mask[:, : used[name]] = torch.rand(size, used[name], generator=generator) < 0.6
        mask[0, used[name] - 1] = True
        masks[name] = mask
    return masks


def assert_trimming_is_exact(spec: EventSpec, net: SpanetNetwork, batch: Batch) -> SlotMap:
    """Outputs on kept slots, every loss term and the decoding agree; returns the slot map."""
    order = [s.name for s in spec.sequential]
    slots = kept_slots(batch.masks, order, batch.targets.values())
    trimmed = batch.trimmed(order)
    assert [trimmed.masks[n].shape[1] for n in order] == list(slots.kept)
    for name, value in batch.targets.items():
        torch.testing.assert_close(slots.to_original(trimmed.targets[name]), value, rtol=0, atol=0)
    kept = slots.to_original(torch.arange(sum(slots.kept)))  # original index of every kept slot
    with torch.no_grad():
        full = net(batch.features, batch.masks)
        cut = net(trimmed.features, trimmed.masks)
    for name, values in full.assignments.items():
        for axis in range(1, values.dim()):
            values = values.index_select(axis, kept)
        torch.testing.assert_close(cut.assignments[name], values, **TOLERANCE)
        torch.testing.assert_close(cut.detections[name], full.detections[name], **TOLERANCE)
    for family in ("regressions", "classifications"):
        for key, value in getattr(full, family).items():
            torch.testing.assert_close(getattr(cut, family)[key], value, **TOLERANCE)
    torch.testing.assert_close(cut.event_vector, full.event_vector, **TOLERANCE)

    options = small_options(kl_loss_scale=0.5, overlap_loss_scale=0.5)
    full_terms = compute_losses(full, batch, net, spec, options).terms
    cut_terms = compute_losses(cut, trimmed, net, spec, options).terms
    assert set(cut_terms) == set(full_terms)
    for name, value in full_terms.items():
        torch.testing.assert_close(cut_terms[name], value, **TOLERANCE, msg=name)

    full_choice = decode(full.assignments, spec)
    cut_choice = decode(cut.assignments, spec)
    for name, value in full_choice.items():
        assert torch.equal(slots.to_original(cut_choice[name]), value), name
        assert torch.equal(cut_choice[name] == trimmed.targets[name], value == batch.targets[name]), name
    return slots


def test_slot_map_keeps_up_to_the_last_used_slot_and_shifts_later_inputs():
    masks = {
        "Jets": torch.tensor([[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool),
        "Leptons": torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool),
    }
    slots = kept_slots(masks, ["Jets", "Leptons"], [torch.tensor([[3, 6], [1, -1]])])
    assert slots == SlotMap(("Jets", "Leptons"), (6, 4), (4, 1))
    # Jets keeps 0..3; Leptons slot 0 moves from combined index 6 to 4.
    assert slots.to_trimmed(torch.tensor([[3, 6], [1, -1]])).tolist() == [[3, 4], [1, -1]]
    assert slots.to_original(torch.tensor([0, 3, 4, -1])).tolist() == [0, 3, 6, -1]
    features, cut = trim_inputs({"Jets": torch.zeros(2, 6, 3), "Met": torch.ones(2, 2)}, masks, slots)
    assert (features["Jets"].shape, features["Met"].shape) == ((2, 4, 3), (2, 2))
    assert (cut["Jets"].shape, cut["Leptons"].shape) == ((2, 4), (2, 1))


def test_every_input_keeps_at_least_one_slot_and_a_full_batch_is_returned_unchanged():
    empty = {"Jets": torch.zeros(3, 5, dtype=torch.bool)}
    assert kept_slots(empty, ["Jets"]).kept == (1,)
    full = sparse_batch(TTBAR, {"Jets": torch.ones(2, 4, dtype=torch.bool)}, torch.Generator().manual_seed(0))
    assert full.trimmed() is full


def test_a_target_at_a_padded_slot_keeps_its_slot_and_its_capped_loss():
    generator = torch.Generator().manual_seed(3)
    batch = sparse_batch(TTBAR, scattered_masks({"Jets": 9}, {"Jets": 6}, 5, generator), generator)
    batch.targets["t1"][1] = torch.tensor([0, 2, 7])  # slot 7 is padding in every event
    batch.target_masks["t1"][1] = True
    net = network(TTBAR)
    slots = assert_trimming_is_exact(TTBAR, net, batch)
    assert slots.kept == (8,)
    with torch.no_grad():
        trimmed = batch.trimmed()
        outputs = net(trimmed.features, trimmed.masks)
    flat = (trimmed.targets["t1"][1] * torch.tensor([64, 8, 1])).sum()
    assert outputs.assignments["t1"][1].reshape(-1)[flat] == float("-inf")  # the loss takes NLL_CAP


def test_one_sequential_input_with_scattered_masks_gives_the_untrimmed_results():
    generator = torch.Generator().manual_seed(1)
    masks = scattered_masks({"Jets": 10}, {"Jets": 7}, 6, generator)
    assert not all(torch.equal(m, torch.sort(m, descending=True).values) for m in masks["Jets"])
    slots = assert_trimming_is_exact(TTBAR, network(TTBAR), sparse_batch(TTBAR, masks, generator))
    assert slots.kept == (7,)


def test_two_sequential_inputs_with_targets_in_the_second_give_the_untrimmed_results():
    generator = torch.Generator().manual_seed(2)
    masks = scattered_masks({"Jets": 8, "Leptons": 4}, {"Jets": 5, "Leptons": 2}, 6, generator)
    batch = sparse_batch(MIXED, masks, generator)
    lepton = batch.targets["lt"][:, 1]
    assert ((lepton >= 8) | (lepton == -1)).all() and (lepton >= 8).any()  # lt/l sits in Leptons
    slots = assert_trimming_is_exact(MIXED, network(MIXED), batch)
    assert slots.kept == (5, 2)
    trimmed_lepton = batch.trimmed().targets["lt"][:, 1]
    assert trimmed_lepton.tolist() == torch.where(lepton >= 0, lepton - 3, -1).tolist()


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    jets=st.integers(1, 7),
    leptons=st.integers(1, 3),
    density=st.floats(0.0, 1.0),
)
def test_trimming_random_masks_and_widths_changes_nothing(seed, jets, leptons, density):
    generator = torch.Generator().manual_seed(seed)
    masks = {
        "Jets": torch.rand(4, jets, generator=generator) < density,
        "Leptons": torch.rand(4, leptons, generator=generator) < density,
    }
    assert_trimming_is_exact(MIXED, network(MIXED), sparse_batch(MIXED, masks, generator))


def test_infer_returns_indices_of_the_untrimmed_inputs():
    generator = torch.Generator().manual_seed(4)
    masks = scattered_masks({"Jets": 9, "Leptons": 5}, {"Jets": 4, "Leptons": 3}, 8, generator)
    batch = sparse_batch(MIXED, masks, generator)
    net = network(MIXED)
    predicted = infer(net, MIXED, batch.features, batch.masks, threshold=None)
    with torch.no_grad():
        expected = decode(net(batch.features, batch.masks).assignments, MIXED)
    for name, value in expected.items():
        np.testing.assert_array_equal(predicted.assignments[name], value.numpy())
    assert (predicted.assignments["lt"][:, 1] >= 9).any()  # some leptons chosen, in the 9-slot layout


def test_file_batches_are_trimmed_on_the_host_and_copied_cut():
    """predict, test and run.predict find the kept slots before the copy to the device (on a GPU,
    finding them in the device copy reads them back every batch) and copy only those slots."""
    generator = torch.Generator().manual_seed(6)
    masks = scattered_masks({"Jets": 9, "Leptons": 5}, {"Jets": 4, "Leptons": 3}, 8, generator)
    batch = sparse_batch(MIXED, masks, generator)
    net = network(MIXED)
    host = {name: value.numpy() for name, value in batch.features.items()}
    cut = device_inputs(MIXED, host, {n: m.numpy() for n, m in batch.masks.items()}, {}, "cpu")
    assert cut.slots == kept_slots(batch.masks, ["Jets", "Leptons"])
    assert {name: mask.shape[1] for name, mask in cut.masks.items()} == dict(zip(
        cut.slots.names, cut.slots.kept, strict=True))
    assert cut.slots.kept != cut.slots.widths  # the batch leaves slots empty: something was cut
    predicted = infer(net, MIXED, cut.features, cut.masks, threshold=0.5, slots=cut.slots)
    expected = infer(net, MIXED, batch.features, batch.masks, threshold=0.5)
    for name, value in expected.assignments.items():
        np.testing.assert_array_equal(predicted.assignments[name], value)
        np.testing.assert_array_equal(predicted.reported[name], expected.reported[name])


def test_the_training_module_computes_the_untrimmed_losses_on_trimmed_batches():
    module = SpanetModule(MIXED_YAML, small_options(), statistics_for(MIXED)).eval()
    generator = torch.Generator().manual_seed(5)
    masks = scattered_masks({"Jets": 8, "Leptons": 4}, {"Jets": 3, "Leptons": 2}, 4, generator)
    batch = sparse_batch(MIXED, masks, generator)
    with torch.no_grad():
        seen, outputs, result = module.batch_losses(batch)
        untrimmed = module.network(batch.features, batch.masks)
        expected = compute_losses(untrimmed, batch, module.network, MIXED, module.options)
    assert {name: mask.shape[1] for name, mask in seen.masks.items()} == {"Jets": 3, "Leptons": 2}
    assert outputs.assignments["tri"].shape == (4, 5, 5, 5)
    for name, value in expected.terms.items():
        torch.testing.assert_close(result.terms[name], value, **TOLERANCE, msg=name)


def test_predictions_written_for_a_wider_padded_file_keep_its_layout(tmp_path):
    narrow = write_two_input_file(tmp_path / "narrow.h5", n=40)
    wide = tmp_path / "wide.h5"
    with h5py.File(narrow) as source, h5py.File(wide, "w") as out:
        for name, extra in (("Jets", 3), ("Leptons", 2)):  # 6 -> 9 and 2 -> 4 slots, all padding
            for column in ("MASK", "pt", "eta"):
                values = source[f"INPUTS/{name}/{column}"][:]
                out[f"INPUTS/{name}/{column}"] = np.pad(values, ((0, 0), (0, extra)))
    run = load_run(make_run_dir(tmp_path / "run", TWO_INPUTS_YAML, narrow))
    write_predictions(run, narrow, tmp_path / "narrow_out.h5", threshold=0.0, batch_size=16)
    write_predictions(run, wide, tmp_path / "wide_out.h5", threshold=0.0, batch_size=16)
    with h5py.File(tmp_path / "narrow_out.h5") as a, h5py.File(tmp_path / "wide_out.h5") as b:
        assert b["INPUTS/Jets/MASK"].shape == (40, 9)
        for product in ("lt/b", "lt/l"):  # associated: counted inside their own input
            np.testing.assert_array_equal(
                b[f"SPANET_LITE/TARGETS/{product}"][:], a[f"SPANET_LITE/TARGETS/{product}"][:]
            )
        assert (b["SPANET_LITE/TARGETS/lt/l"][:] >= 0).all()
        for product in ("ht/b", "ht/q1", "ht/q2"):  # unassociated: Leptons start at 9, not 6
            narrow_index = a[f"TARGETS/{product}"][:]
            np.testing.assert_array_equal(
                b[f"TARGETS/{product}"][:], np.where(narrow_index >= 6, narrow_index + 3, narrow_index)
            )
        np.testing.assert_allclose(
            b["TARGETS/ht/assignment_probability"][:], a["TARGETS/ht/assignment_probability"][:],
            rtol=1e-5, atol=1e-6,
        )
