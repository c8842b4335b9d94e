"""``compile``: when a run compiles, that the compiled network computes what the eager one does, and the
fall-back to eager when compiling fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from _model_helpers import random_batch, small_options, spec_from, statistics_for, ttbar_yaml

from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.model.network import SpanetNetwork
from spanet_lite.model.outputs import Outputs
from spanet_lite.training import compilation
from spanet_lite.training.compilation import choose_compile
from spanet_lite.training.module import SpanetModule

YAML = ttbar_yaml("{mass: log_normalize, pt: log_normalize, eta: normalize}")  # a few graphs: fast
SPEC = spec_from(YAML)


# ------------------------------------------------------------------ the decision
@pytest.mark.parametrize(
    ("setting", "accelerator", "compiler", "mode", "note"),
    [
        (False, "cpu", "/usr/bin/c++", "off", None),
        (False, "gpu", "/usr/bin/c++", "off", None),
        (True, "gpu", None, "network", None),
        (True, "cpu", "/usr/bin/c++", "dynamic", None),
        (True, "cpu", None, "off", "no C++ compiler"),
    ],
)
def test_choose_compile(monkeypatch, setting, accelerator, compiler, mode, note) -> None:
    monkeypatch.setattr(compilation, "cxx_compiler", lambda: compiler)
    choice = choose_compile(Options(compile=setting), accelerator)
    assert choice.mode == mode
    assert (choice.note is None) if note is None else (note in (choice.note or ""))


def test_compile_is_off_unless_asked_for() -> None:
    assert Options().compile is False


def test_the_compiler_comes_from_cxx_when_set(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-c++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert compilation.cxx_compiler() == str(fake)
    monkeypatch.setenv("CXX", str(tmp_path / "missing"))
    assert compilation.cxx_compiler() is None


# ------------------------------------------------------------------ compiled = eager
def network_and_batch() -> tuple[SpanetNetwork, Batch]:
    torch.manual_seed(0)
    network = SpanetNetwork(SPEC, small_options(), statistics_for(SPEC))
    batch = random_batch(SPEC, 16, {"Jets": 8}, torch.Generator().manual_seed(1))
    return network, batch


def loss_and_gradients(
    network: SpanetNetwork, batch: Batch, forward: Callable[[Batch], Outputs] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A loss over the assignments and the event vector, and the gradients of ``network``'s
    weights; ``forward`` (default: the eager network) computes the outputs."""
    network.zero_grad(set_to_none=True)
    outputs = forward(batch) if forward is not None else network(batch.features, batch.masks)
    loss = sum(
        value.float().logsumexp(tuple(range(1, value.dim()))).sum() for value in outputs.assignments.values()
    )
    loss = loss + outputs.event_vector.square().sum()
    loss.backward()
    # One compiled graph also gives zero gradients (not None) to weights the loss does not reach.
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in network.parameters()]
    return loss.detach(), grads


def test_the_network_traces_to_one_graph_for_every_width_and_batch_size() -> None:
    """No graph breaks and no recompiling as batches change size and trimmed width, with pair
    features on: the tables that depend on the widths come in as inputs (``layout_tables``)."""
    from torch._dynamo.testing import CompileCounter

    yaml = ttbar_yaml("{mass: log_normalize, pt: log_normalize, eta: normalize, phi: normalize}")
    spec = spec_from(yaml)
    network = SpanetNetwork(spec, small_options(), statistics_for(spec)).train()
    assert network.pair_bias is not None
    torch._dynamo.reset()
    counter = CompileCounter()  # counts the graphs dynamo hands to a backend, compiles nothing
    compiled = torch.compile(network, backend=counter, dynamic=True)
    generator = torch.Generator().manual_seed(2)
    for size, width in ((16, 8), (12, 6), (16, 10), (5, 7)):
        batch = random_batch(spec, size, {"Jets": width}, generator)
        outputs = compiled(batch.features, batch.masks, batch.pairs, network.layout_tables(batch.masks))
        assert outputs.assignments["t1"].shape == (size, width, width, width)
    torch._dynamo.reset()
    assert counter.frame_count == 1


@pytest.mark.skipif(compilation.cxx_compiler() is None, reason="compiling for the CPU needs a C++ compiler")
def test_the_network_compiled_for_the_cpu_computes_what_the_eager_one_does_and_is_undone() -> None:
    network, batch = network_and_batch()
    statistics = statistics_for(SPEC).to_dict()
    module = SpanetModule(YAML, small_options(), statistics)
    module.network.load_state_dict(network.state_dict())
    eager_loss, eager_grads = loss_and_gradients(network, batch)
    module.compile_mode = choose_compile(Options(compile=True), "cpu").mode
    module.on_fit_start()
    assert module._compiled is not None
    assert module.state_dict().keys() == {f"network.{k}" for k in network.state_dict()}  # same checkpoints
    loss, grads = loss_and_gradients(module.network, batch, module._forward)
    torch.testing.assert_close(loss, eager_loss, rtol=1e-4, atol=1e-4)
    for grad, expected in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-4)
    module.on_fit_end()
    assert module._compiled is None


# ------------------------------------------------------------------ failure -> eager
def test_a_compile_that_fails_at_the_first_step_falls_back_to_eager_with_one_line(monkeypatch) -> None:
    network, batch = network_and_batch()
    statistics = statistics_for(SPEC).to_dict()
    module = SpanetModule(YAML, small_options(), statistics)
    module.network.load_state_dict(network.state_dict())
    lines: list[str] = []
    module.report = lines.append

    def broken_compile(model: object, **options: object) -> Callable[..., Outputs]:
        def fail(*args: object, **kwargs: object) -> Outputs:
            raise RuntimeError("InductorError: C++ compile error\nfull log follows")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    module.compile_mode = "dynamic"
    module.on_fit_start()
    _, outputs, result = module.batch_losses(batch)
    assert lines == [
        "torch.compile failed (RuntimeError: InductorError: C++ compile error); training eagerly"
    ]
    assert module.compile_mode == "off"
    assert module._compiled is None
    expected = network(batch.features, batch.masks)
    for name, value in outputs.assignments.items():
        torch.testing.assert_close(value, expected.assignments[name])
    assert torch.isfinite(result.total)
    module.batch_losses(batch)
    assert len(lines) == 1


def test_validation_runs_the_eager_network_while_training_runs_the_compiled_one() -> None:
    network, batch = network_and_batch()
    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict())
    module.network.load_state_dict(network.state_dict())
    calls: list[str] = []

    def compiled(*args: object, **kwargs: object) -> Outputs:
        calls.append("compiled")
        return module.network(*args, **kwargs)

    object.__setattr__(module, "_compiled", compiled)
    module.train()
    module._forward(batch)
    module.eval()
    outputs = module._forward(batch)
    assert calls == ["compiled"]
    expected = network.eval()(batch.features, batch.masks)
    for name, value in outputs.assignments.items():
        torch.testing.assert_close(value, expected.assignments[name])
