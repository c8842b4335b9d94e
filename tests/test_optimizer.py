"""The optimiser: the CPU's flat Adam(W) steps exactly like torch's own and saves the same state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spanet_lite.training.optimizer import FlatOptimizer, build_optimizer, flat_steppable


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.GELU(), nn.Linear(7, 3), nn.Linear(3, 2))


def groups(net: nn.Module) -> list[dict]:
    """Decaying weights and the rest, as ``parameter_groups`` makes them; the last layer is never
    reached by :func:`loss` (its gradients stay None), like detection heads at scale 0."""
    weights = [net[0].weight, net[3].weight, net[4].weight]
    rest = [net[0].bias, net[1].weight, net[1].bias, net[3].bias, net[4].bias]
    return [{"params": weights, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]


def loss(net: nn.Module, step: int) -> torch.Tensor:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(step))
    return net[:4](x).pow(2).mean()


def train(net: nn.Module, optimizer: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        optimizer.zero_grad()
        loss(net, step).backward()
        optimizer.step()


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_flat_steps_equal_torchs_own_optimizer_and_leave_ungraded_weights_alone(name: str) -> None:
    cls = getattr(torch.optim, name)
    reference, flat = small_net(), small_net()
    train(reference, cls(groups(reference), lr=0.01, fused=True), range(6))
    train(flat, FlatOptimizer(cls, groups(flat), lr=0.01, fused=True), range(6))
    for (key, a), b in zip(reference.state_dict().items(), flat.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=key)
    assert torch.equal(flat[4].weight, small_net()[4].weight)  # no gradient: no decay, no step


def test_the_parameters_become_views_of_one_buffer_per_group_and_stay_the_modules_own() -> None:
    net = small_net()
    before = list(net.parameters())
    values = [p.detach().clone() for p in before]
    optimizer = FlatOptimizer(torch.optim.AdamW, groups(net), lr=0.01, fused=True)
    assert list(net.parameters()) == before
    for p, value in zip(before, values, strict=True):
        assert torch.equal(p, value)
    storages = {p.untyped_storage().data_ptr() for p in optimizer.param_groups[0]["params"]}
    assert len(storages) == 1
    assert all(p.data_ptr() % 64 == 0 for p in before)  # where the matrix kernels want them

    train(net, optimizer, range(2))
    reached, unreached = before[:6], before[6:]  # net[4] is not in the loss
    grads = [p.grad for p in reached]  # views of the buffer, which autograd accumulates into
    train(net, optimizer, range(2, 4))
    assert all(p.grad is grad for p, grad in zip(reached, grads, strict=True))
    assert all(p.grad is None for p in unreached)


def test_the_saved_state_is_torchs_per_parameter_layout_both_ways() -> None:
    reference, flat = small_net(), small_net()
    plain = torch.optim.AdamW(groups(reference), lr=0.01, fused=True)
    mine = FlatOptimizer(torch.optim.AdamW, groups(flat), lr=0.01, fused=True)
    train(reference, plain, range(3))
    train(flat, mine, range(3))
    saved, expected = mine.state_dict(), plain.state_dict()
    assert saved["param_groups"] == expected["param_groups"]
    assert sorted(saved["state"]) == sorted(expected["state"])  # the unreached layer has no entry
    for index, entry in expected["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(saved["state"][index][key], value, rtol=1e-6, atol=1e-8)

    # A run resumed the other way round (a torch optimiser's checkpoint read here, and back)
    # continues exactly as the uninterrupted one.
    resumed = small_net()
    resumed.load_state_dict(reference.state_dict())
    again = FlatOptimizer(torch.optim.AdamW, groups(resumed), lr=0.01, fused=True)
    again.load_state_dict(expected)
    back = small_net()
    back.load_state_dict(flat.state_dict())
    plain_again = torch.optim.AdamW(groups(back), lr=0.01, fused=True)
    plain_again.load_state_dict(saved)
    train(reference, plain, range(3, 6))
    train(resumed, again, range(3, 6))
    train(back, plain_again, range(3, 6))
    for a, b, c in zip(reference.parameters(), resumed.parameters(), back.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(c, a, rtol=1e-6, atol=1e-7)


def test_a_state_of_other_group_sizes_is_refused() -> None:
    optimizer = FlatOptimizer(torch.optim.AdamW, groups(small_net()), lr=0.01, fused=True)
    other = torch.optim.AdamW(small_net().parameters(), lr=0.01)
    with pytest.raises(ValueError, match="parameter groups"):
        optimizer.load_state_dict(other.state_dict())


def test_schedules_and_clipping_act_on_the_per_parameter_groups() -> None:
    reference, flat = small_net(), small_net()
    plain = torch.optim.AdamW(groups(reference), lr=0.01, fused=True)
    mine = FlatOptimizer(torch.optim.AdamW, groups(flat), lr=0.01, fused=True)
    for net, optimizer in ((reference, plain), (flat, mine)):
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
        for step in range(4):
            optimizer.zero_grad()
            loss(net, step).backward()
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, 0.05)
            optimizer.step()
            schedule.step()
    for a, b in zip(reference.parameters(), flat.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def test_build_optimizer_flattens_adam_and_adamw_on_the_cpu_only() -> None:
    from _model_helpers import small_options

    net = small_net()
    assert isinstance(build_optimizer(net, small_options(optimizer="AdamW")), FlatOptimizer)
    assert isinstance(build_optimizer(small_net(), small_options(optimizer="SGD")), torch.optim.SGD)
    assert not flat_steppable("AdamW", [p.double() for p in small_net().parameters()])
    assert not flat_steppable("Adagrad", list(small_net().parameters()))


def test_a_network_whose_linear_weights_are_all_frozen_trains_the_rest() -> None:
    """-fsf can freeze every linear weight and leave norms and biases to train: the decaying
    group is then empty, and the CPU's flat AdamW failed on it with an IndexError."""
    from spanet_lite.config.options import Options

    net = small_net()
    for layer in (net[0], net[3], net[4]):
        layer.weight.requires_grad_(False)
    frozen = net[0].weight.detach().clone()
    norm = net[1].weight.detach().clone()
    optimizer = build_optimizer(net, Options(optimizer="AdamW", learning_rate=0.01))
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.0]
    train(net, optimizer, range(3))
    assert torch.equal(net[0].weight, frozen) and not torch.equal(net[1].weight, norm)
