"""Greedy decoding where the network ran: on an accelerator decode() decodes on the device
(torch_decoding), on the CPU with numpy, with the same answers.

Kept apart from test_decoding.py, which needs hypothesis: bench/gpu_session.sh runs this file on
the GPU machines, whose image has pytest but not hypothesis.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _decoding_helpers import MIXED, assignment_batch

from spanet_lite.assignment import decoding
from spanet_lite.assignment.decoding import decode, decodes_on_device


def test_greedy_decoding_stays_on_an_accelerator_and_uses_numpy_on_the_cpu():
    """Prediction on a GPU copied every event's (N^k) distributions to the host to decode them
    there: ~8 kB per ttbar event, more than the network's own time at 500,000 events/s."""
    assert not decodes_on_device(torch.zeros(2, 3, 3))
    assert not decodes_on_device(np.zeros((2, 3, 3)))
    assert decodes_on_device(torch.zeros(2, 3, 3, device="meta"))


@pytest.mark.parametrize("gated", [False, True])
def test_the_accelerator_path_of_decode_gives_the_numpy_answer(monkeypatch, gated):
    """decode() as it runs on a GPU (gating built on the device), here on the CPU's tensors."""
    num_real = torch.randint(3, 11, (500,), generator=torch.Generator().manual_seed(1))
    assignments = assignment_batch(MIXED, 500, 10, num_real, seed=6)
    detections = {"a": torch.rand(500, generator=torch.Generator().manual_seed(2)),
                  "c": torch.full((500,), 0.7)}
    gating = {"detections": detections, "threshold": 0.4} if gated else {}
    on_host = decode(assignments, MIXED, **gating)
    monkeypatch.setattr(decoding, "decodes_on_device", lambda tensor: True)
    assert decoding.decodes_on_device(assignments["a"])
    as_on_device = decode(assignments, MIXED, **gating)
    switched_off = (detections["a"] < 0.4).sum() if gated else 0
    assert (on_host["a"][:, 0] == -1).sum() >= switched_off > (0 if gated else -1)
    for name, chosen in on_host.items():
        assert torch.equal(as_on_device[name], chosen), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_the_accelerator_path_gates_half_precision_detections_as_the_host_does(monkeypatch, dtype):
    """The accelerator path compared a bfloat16 (float16) detection tensor with the threshold in
    the tensor's own precision, so the threshold was rounded first: with threshold 0.7 a
    probability of 0.69921875 (bf16's 0.7) switched the particle on there and off on the host."""
    num_real = torch.full((64,), 10)
    assignments = assignment_batch(MIXED, 64, 10, num_real, seed=3)
    values = torch.rand(64, generator=torch.Generator().manual_seed(4))
    values[:16] = torch.tensor([0.7, 0.3, 0.1, 0.7 - 1e-9]).repeat(4)  # at the thresholds, rounded
    detections = {name: values.to(dtype) for name in MIXED.particle_names}
    for threshold in (0.7, 0.3, 0.1):
        on_host = decode(assignments, MIXED, detections=detections, threshold=threshold)
        with monkeypatch.context() as patch:
            patch.setattr(decoding, "decodes_on_device", lambda tensor: True)
            as_on_device = decode(assignments, MIXED, detections=detections, threshold=threshold)
        for name, chosen in on_host.items():
            assert torch.equal(as_on_device[name], chosen), (threshold, name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: decoding on the GPU")
@pytest.mark.parametrize("gated", [False, True])
def test_greedy_decoding_on_a_gpu_gives_the_hosts_answer(gated):
    num_real = torch.randint(3, 11, (500,), generator=torch.Generator().manual_seed(1))
    assignments = assignment_batch(MIXED, 500, 10, num_real, seed=6)
    detections = {"a": torch.rand(500, generator=torch.Generator().manual_seed(2)),
                  "c": torch.full((500,), 0.7)}
    on_host = decode(assignments, MIXED, detections=detections if gated else None, threshold=0.4)
    on_gpu = decode({k: v.cuda() for k, v in assignments.items()}, MIXED,
                    detections={k: v.cuda() for k, v in detections.items()} if gated else None, threshold=0.4)
    for name, chosen in on_host.items():
        assert on_gpu[name].device.type == "cuda"
        assert torch.equal(on_gpu[name].cpu(), chosen), name
