"""``compile``: when a run compiles, that the compiled network computes what the eager one does, and the
fall-back to eager when compiling fails."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _model_helpers import random_batch, small_options, spec_from, statistics_for, ttbar_yaml

from spanet_lite.config.options import Options
from spanet_lite.config.options_file import parse_options_text
from spanet_lite.config.options_validation import validate_options
from spanet_lite.dataset.batch import Batch
from spanet_lite.errors import InputError
from spanet_lite.model.network import LayoutTables, SpanetNetwork
from spanet_lite.model.outputs import Outputs
from spanet_lite.training import compilation
from spanet_lite.training.compilation import choose_compile
from spanet_lite.training.losses import LossResult, compute_losses
from spanet_lite.training.module import SpanetModule, network_losses

YAML = ttbar_yaml("{mass: log_normalize, pt: log_normalize, eta: normalize}")  # a few graphs: fast
SPEC = spec_from(YAML)

# Under CI (which has one) a missing compiler fails these tests instead of skipping them.
needs_cxx_compiler = pytest.mark.skipif(
    compilation.cxx_compiler() is None and not os.environ.get("CI"),
    reason="compiling for the CPU needs a C++ compiler",
)


# ------------------------------------------------------------------ the decision
LONG = compilation.AUTO_MIN_STEPS


@pytest.mark.parametrize(
    ("setting", "accelerator", "compiler", "steps", "time_limit", "mode", "note"),
    [
        (False, "cpu", "/usr/bin/c++", LONG, None, "off", None),
        (False, "gpu", "/usr/bin/c++", LONG, None, "off", None),
        (True, "gpu", None, 10, None, "network", None),
        (True, "cpu", "/usr/bin/c++", 10, 60.0, "dynamic", None),
        (True, "cpu", None, LONG, None, "off", "no C++ compiler"),
        ("auto", "cpu", "/usr/bin/c++", LONG, None, "dynamic", "this CPU run of 50,000 steps"),
        ("auto", "cpu", "/usr/bin/c++", LONG - 1, None, "off", None),
        ("auto", "cpu", "/usr/bin/c++", LONG, compilation.AUTO_MIN_SECONDS, "dynamic", "compile: auto"),
        ("auto", "cpu", "/usr/bin/c++", LONG, compilation.AUTO_MIN_SECONDS - 1, "off", None),
        ("auto", "cpu", None, LONG, None, "off", "no C++ compiler"),
        ("auto", "cpu", None, 10, None, "off", None),
        ("auto", "gpu", "/usr/bin/c++", 10 * LONG, None, "off", None),
    ],
)
def test_choose_compile(monkeypatch, setting, accelerator, compiler, steps, time_limit, mode, note) -> None:
    monkeypatch.setattr(compilation, "cxx_compiler", lambda: compiler)
    choice = choose_compile(Options(compile=setting), accelerator, planned_steps=steps, time_limit=time_limit)
    assert choice.mode == mode
    assert (choice.note is None) if note is None else (note in (choice.note or ""))


def test_compile_defaults_to_auto_and_runs_stored_without_it_stay_eager() -> None:
    assert Options().compile == "auto"
    assert Options.from_dict({"hidden_dim": 8}).compile is False


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("false", False), ('"auto"', "auto"), ("1", True)]
)
def test_the_compile_key_takes_booleans_or_auto(text: str, value: object) -> None:
    assert parse_options_text(f'{{"compile": {text}}}').compile == value


@pytest.mark.parametrize("text", ['"yes"', '"True"', "2", "null"])
def test_any_other_compile_value_is_one_line_naming_the_key(text: str) -> None:
    options = parse_options_text(f'{{"compile": {text}}}', source="opts.json")
    with pytest.raises(InputError, match=r'opts\.json: compile: expected true, false or "auto"'):
        validate_options(options, "opts.json")


def test_a_python_caller_gets_the_same_rule() -> None:
    with pytest.raises(InputError, match=r'compile: expected true, false or "auto"'):
        validate_options(Options(compile="yes"))


def test_a_run_plans_its_steps_from_the_epochs_and_the_training_events(tmp_path: Path, monkeypatch) -> None:
    """What ``auto`` decides on: epochs x ceil(training events / batch size), and the time limit."""
    from _dataset_helpers import TINY_YAML, random_arrays, write_h5

    from spanet_lite.training.run import train

    asked: list[tuple[int, float | None]] = []

    def spy(options: Options, accelerator: str, *, planned_steps: int, time_limit: float | None):
        asked.append((planned_steps, time_limit))
        return choose_compile(options, accelerator, planned_steps=planned_steps, time_limit=time_limit)

    monkeypatch.setattr(compilation, "choose_compile", spy)
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    options = Options(
        event_info_file=str(tmp_path / "tiny.yaml"),
        training_file=str(write_h5(tmp_path / "tiny.h5", random_arrays(250, seed=1))),
        train_validation_split=0.8,  # 200 training events: 4 batches of 64, the last one short
        batch_size=64,
        epochs=2,
        partial_events=True,
        hidden_dim=8,
        num_attention_heads=1,
        num_embedding_layers=1,
        num_encoder_layers=1,
        num_branch_embedding_layers=1,
        num_branch_encoder_layers=1,
    )
    result = train(options, log_dir=tmp_path / "runs", quiet=True, time_limit=3600)
    assert asked == [(2 * 4, 3600)]
    assert result.epochs_completed == 2

    # Resumed with 5 epochs in all, the run plans the 3 it has left.
    train(resume=result.run_dir, epochs=5, log_dir=tmp_path / "runs", quiet=True)
    assert asked[1] == (3 * 4, None)


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
    network: SpanetNetwork, batch: Batch, module: SpanetModule | None = None, losses=compute_losses
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """The training loss and the gradients of ``network``'s weights (None where no loss term
    reaches); with ``module``, a training step of the module (its ``batch_losses``, then its
    ``on_after_backward``), else of the eager network and ``losses``."""
    network.zero_grad(set_to_none=True)
    if module is not None:
        loss = module.batch_losses(batch)[2].total
    else:
        outputs = network(batch.features, batch.masks)
        loss = losses(outputs, batch, network, SPEC, small_options()).total
    loss.backward()
    if module is not None:
        module.on_after_backward()
    return loss.detach(), [None if p.grad is None else p.grad.clone() for p in network.parameters()]


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


def test_trimmed_and_untrimmed_batches_share_one_compiled_graph() -> None:
    """A trimmed batch holds views of the loaded tensors and an untrimmed one does not; dynamo
    guards on that, so the module hands the compiled network and losses fresh copies (else: two
    graphs, and a second compile of minutes at the first batch that keeps every slot)."""
    from torch._dynamo.testing import CompileCounter
    from torch.nn.functional import pad

    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict()).train()
    generator = torch.Generator().manual_seed(3)
    full = random_batch(SPEC, 16, {"Jets": 6}, generator)  # six objects in every event: nothing to trim
    loaded = random_batch(SPEC, 12, {"Jets": 8}, generator)
    padded = replace(  # two empty slots at the end of every event: trimming cuts them
        loaded,
        features={name: pad(value, (0, 0, 0, 2)) for name, value in loaded.features.items()},
        masks={name: pad(mask, (0, 2)) for name, mask in loaded.masks.items()},
    )
    assert padded.trimmed().masks["Jets"]._base is not None and full.trimmed() is full
    torch._dynamo.reset()
    counter = CompileCounter()
    module.compile_losses(backend=counter, dynamic=True)
    for batch in (padded, full, padded):
        _, _, result = module.batch_losses(batch)
        assert torch.isfinite(result.total)
    torch._dynamo.reset()
    assert counter.frame_count == 1


def test_the_static_shapes_of_a_cuda_run_trace_one_graph_per_width_bucket() -> None:
    """``compile: true`` on CUDA compiles with static shapes over the device loader's width
    buckets: one whole graph per bucket (no graph break), reused when a bucket comes back."""
    from torch._dynamo.testing import CompileCounter

    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict()).train()
    generator = torch.Generator().manual_seed(4)
    batches = [random_batch(SPEC, 16, {"Jets": width}, generator) for width in (8, 4, 8, 4)]
    torch._dynamo.reset()
    counter = CompileCounter()
    module.compile_mode = choose_compile(Options(compile=True), "gpu").mode
    module.on_fit_start()
    module.compile_losses(backend=counter, dynamic=module.compile_mode == "dynamic")
    module._unreached = ()  # past the eager first step
    for batch in batches:
        _, outputs, result = module.batch_losses(batch)
        assert outputs is None and torch.isfinite(result.total)
    torch._dynamo.reset()
    assert counter.frame_count == 2


def test_a_layout_validation_met_first_trains_through_the_compiled_graph() -> None:
    """Validation (eager, under Lightning's ``torch.inference_mode``) can be the first to meet a
    width layout; the compiled training step then gets its cached tables as inputs and saves
    them for backward, which an inference tensor refuses: the run fell back to eager at the
    first compiled step, or stopped with a RuntimeError at a later one."""
    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict())
    batch = random_batch(SPEC, 16, {"Jets": 7}, torch.Generator().manual_seed(5))
    module.eval()
    with torch.inference_mode():
        module.batch_losses(batch)
    lines: list[str] = []
    module.report = lines.append
    torch._dynamo.reset()
    module.compile_mode = "network"
    module.compile_losses(backend="aot_eager", dynamic=False)  # AOTAutograd saves what backward needs
    module._unreached = ()  # past the eager first step
    module.train()
    _, outputs, result = module.batch_losses(batch)
    result.total.backward()
    torch._dynamo.reset()
    assert outputs is None and lines == [] and module.compile_mode == "network"


@pytest.mark.parametrize(
    ("accelerator", "dynamic", "inductor_options"),
    [("cpu", True, {"cpp_wrapper": True}), ("gpu", False, None)],
)
def test_a_cpu_compile_calls_its_kernels_from_cpp_and_a_cuda_one_keeps_inductors_defaults(
    monkeypatch, accelerator: str, dynamic: bool, inductor_options: dict | None
) -> None:
    """On the CPU the kernels are called from generated C++, not Python (docs/training.md has
    the measured gain); on CUDA inductor's defaults stay until a GPU run has measured more."""
    given: dict[str, object] = {}

    def spy(function: Callable[..., object], **kwargs: object) -> Callable[..., object]:
        given.update(kwargs)
        return function

    monkeypatch.setattr(compilation, "cxx_compiler", lambda: "/usr/bin/c++")
    monkeypatch.setattr(torch, "compile", spy)
    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict())
    module.compile_mode = choose_compile(Options(compile=True), accelerator).mode
    module.on_fit_start()
    assert given.get("dynamic") is dynamic
    assert given.get("options") == inductor_options


def assignment_only(outputs: Outputs, batch: Batch, network: SpanetNetwork, spec, options) -> LossResult:
    """The losses with only the assignment term in the total: the detection heads, reached by
    no term, get no gradient, as weights no computed term depends on."""
    result = compute_losses(outputs, batch, network, spec, options)
    return LossResult(result.terms["assignment_loss"], result.terms)


@needs_cxx_compiler
def test_the_network_compiled_for_the_cpu_computes_what_the_eager_one_does_and_is_undone(monkeypatch) -> None:
    network, batch = network_and_batch()
    statistics = statistics_for(SPEC).to_dict()
    module = SpanetModule(YAML, small_options(), statistics)
    module.network.load_state_dict(network.state_dict())
    monkeypatch.setattr("spanet_lite.training.module.compute_losses", assignment_only)
    eager_loss, eager_grads = loss_and_gradients(network, batch, losses=assignment_only)
    assert any(grad is None for grad in eager_grads)  # the loss leaves some weights out
    module.compile_mode = choose_compile(Options(compile=True), "cpu").mode
    module.on_fit_start()
    assert module._compiled is not None
    assert module.state_dict().keys() == {f"network.{k}" for k in network.state_dict()}  # same checkpoints
    for _ in range(2):  # the eager first step, which finds the unreached weights, then compiled
        loss, grads = loss_and_gradients(module.network, batch, module)
        torch.testing.assert_close(loss, eager_loss, rtol=1e-4, atol=1e-4)
        for grad, expected in zip(grads, eager_grads, strict=True):
            assert (grad is None) == (expected is None)
            if grad is not None:
                torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-4)
    assert module._compile_checked  # the second step went through the compiled network
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
    loss_and_gradients(module.network, batch, module)  # the eager first step
    assert lines == []
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

    def compiled(batch: Batch, tables: LayoutTables) -> LossResult:
        calls.append("compiled")
        return network_losses(module.network, module.spec, module.options, batch, tables)

    object.__setattr__(module, "_compiled", compiled)
    module.train()
    _, outputs, trained = module.batch_losses(batch)
    assert outputs is None and torch.isfinite(trained.total)  # the compiled graph returns losses only
    module.eval()
    _, outputs, _ = module.batch_losses(batch)
    assert calls == ["compiled"]
    expected = network.eval()(batch.features, batch.masks)
    for name, value in outputs.assignments.items():
        torch.testing.assert_close(value, expected.assignments[name])


@needs_cxx_compiler
def test_what_compiling_left_is_kept_from_the_garbage_collector_until_training_ends(monkeypatch) -> None:
    import gc

    network, batch = network_and_batch()
    module = SpanetModule(YAML, small_options(), statistics_for(SPEC).to_dict())
    module.network.load_state_dict(network.state_dict())
    # The graph of the compiled-equals-eager test above, so torch's cache spares a second C++ build.
    monkeypatch.setattr("spanet_lite.training.module.compute_losses", assignment_only)
    module.compile_mode = "dynamic"
    module.on_fit_start()
    loss_and_gradients(module.network, batch, module)  # the eager first step
    assert gc.get_freeze_count() == 0
    loss_and_gradients(module.network, batch, module)  # compiles
    assert gc.get_freeze_count() > 0
    module.on_fit_end()
    assert gc.get_freeze_count() == 0 and module._compiled is None
