"""Training and validation steps never read a tensor on the host (no GPU wait inside a step)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import torch
from _dataset_helpers import TINY_SPEC, TINY_YAML, random_arrays, write_h5
from _evaluation_helpers import TTBAR_YAML, write_ttbar_file
from torch import Tensor

from spanet_lite.config import parse_event_spec
from spanet_lite.config.options import Options
from spanet_lite.dataset.datamodule import SpanetDataModule
from spanet_lite.training.module import RunningMeans, SpanetModule

OPTIONS = dict(
    hidden_dim=8,
    num_attention_heads=1,
    num_embedding_layers=1,
    num_encoder_layers=1,
    num_branch_embedding_layers=1,
    num_branch_encoder_layers=1,
    num_detector_layers=1,
    num_regression_layers=1,
    num_classification_layers=1,
    batch_size=64,
    dataset_mode="device",
    partial_events=True,
    balance_particles=True,  # as SPANet's ttbar example (bench_gpu): events weighted in the losses
    overlap_loss_scale=0.1,
    focal_gamma=1.0,
)


@pytest.fixture(scope="module", params=["tiny", "ttbar"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SpanetModule, SpanetDataModule]:
    """The test suite's random events, and ttbar jets with pt, eta, phi and mass: with those the
    physics pair features are on (``pair_features: auto``), the path of the GPU benchmark."""
    folder = tmp_path_factory.mktemp("sync")
    if request.param == "tiny":
        spec, yaml_text = TINY_SPEC, TINY_YAML
        path = write_h5(folder / "random.h5", random_arrays(300, seed=4))
    else:
        spec, yaml_text = parse_event_spec(TTBAR_YAML), TTBAR_YAML
        path = write_ttbar_file(folder / "ttbar.h5", num_events=300, seed=4)
    options = Options(**OPTIONS)
    dm = SpanetDataModule(spec, options, training_file=path)
    dm.setup("fit")
    assert dm.statistics is not None
    module = SpanetModule(yaml_text, options, dm.statistics)
    assert (module.network.pair_bias is not None) == (request.param == "ttbar")
    return module, dm


@contextlib.contextmanager
def host_reads_raise() -> Iterator[None]:
    """Every way a step could pull a tensor value to the host raises inside the block."""

    def refuse(*args, **kwargs):
        raise AssertionError("host read of a tensor value inside a step")

    names = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    # A tensor built from host data (a Python list, a numpy array) is a host-to-device copy on
    # a GPU, which waits for the device as a read does: torch.tensor(..., device="cuda").
    made = {name: getattr(torch, name) for name in ("tensor", "as_tensor", "from_numpy")}

    def from_host(name):
        def build(data, *args, **kwargs):
            if name == "as_tensor" and isinstance(data, torch.Tensor):
                return made[name](data, *args, **kwargs)  # no copy: already a tensor
            raise AssertionError(f"torch.{name} of host data inside a step (a copy to the device)")

        return build

    try:
        for name in names:
            setattr(torch.Tensor, name, refuse)
        for name in made:
            setattr(torch, name, from_host(name))
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
        for name, function in made.items():
            setattr(torch, name, function)


def test_the_refusal_works() -> None:
    with host_reads_raise(), pytest.raises(AssertionError):
        bool(torch.ones(1) > 0)
    with host_reads_raise(), pytest.raises(AssertionError):
        torch.tensor([1, 2])
    with host_reads_raise():
        ones = torch.ones(2)
        assert torch.as_tensor(ones) is ones


def warm_up(module: SpanetModule, train_batches, val_batches) -> None:
    """One pass of both steps first, as a run's first steps: what a step builds once and caches
    (the attention's tables per layout of widths, the loss's EVENT-group table per device) is
    built there, from host data; the steps after it read it from the cache. Then the module's
    running sums and validation records are emptied again."""
    with torch.no_grad():
        for i, batch in enumerate(train_batches):
            module.training_step(batch, i)
        for i, batch in enumerate(val_batches):
            module.validation_step(batch, i)
    module._running = {"train": RunningMeans(), "val": RunningMeans()}
    module._validation_store = []


def test_training_and_validation_steps_read_nothing_back_on_cpu(setup) -> None:
    module, dm = setup
    train_batch = next(iter(dm.train_dataloader()))
    val_batch = next(iter(dm.val_dataloader()))
    warm_up(module, [train_batch], [val_batch])
    module.decode_on_device = True  # what a GPU does; the CPU itself decodes with numpy
    with host_reads_raise():
        loss = module.training_step(train_batch, 0)
        loss.backward()
        module.validation_step(val_batch, 0)
    assert torch.isfinite(loss)
    assert module._running["train"].events == train_batch.batch_size


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checks for device synchronisation")
def test_steps_never_synchronise_with_the_gpu(setup) -> None:
    module, dm = setup
    module = module.cuda()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, fused=True)
    loaders = [dm.train_dataloader(), dm.val_dataloader()]
    for loader in loaders:
        loader.dataset.place("cuda")
    train_batches, val_batches = (list(loader) for loader in loaders)
    warm_up(module, train_batches, val_batches)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i, batch in enumerate(train_batches):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = module.training_step(batch, i)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for i, batch in enumerate(val_batches):
                module.validation_step(batch, i)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss)


def one_shape(batches: list) -> list:
    """The batches of the commonest shape (batch size and widths): one compile covers them all."""
    shapes = [tuple((name, tuple(x.shape)) for name, x in batch.features.items()) for batch in batches]
    commonest = max(set(shapes), key=shapes.count)
    return [batch for batch, shape in zip(batches, shapes, strict=True) if shape == commonest]


@contextlib.contextmanager
def compiled_training(module: SpanetModule, compile_options: dict) -> Iterator[None]:
    """``module`` as a ``compile: true`` run trains it (``on_fit_start`` compiles, the first step
    is eager, ``on_after_backward`` after each), its eager network given back at the end."""
    module.compile_mode = "network"
    module._compiled = None
    module._unreached = ()
    try:
        module.on_fit_start()
        module.compile_losses(**compile_options)
        yield
    finally:
        module.drop_compiled()
        module.compile_mode = "off"
        torch._dynamo.reset()


def compiled_steps(
    module: SpanetModule, batches: list, device: str, during: Callable[[], AbstractContextManager[None]]
) -> None:
    """Train ``batches`` as a compiled run does, twice, then once more inside ``during`` (which
    refuses host reads), with recompiling an error there: every compile happened before it."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, fused=True)
    module.train()

    def steps() -> Tensor:
        for i, batch in enumerate(batches):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = module.training_step(batch, i)
            loss.backward()
            module.on_after_backward()  # Lightning's hook, where a compiled run drops zero gradients
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return loss

    steps()  # the first step eager (it finds the unreached weights), the others compiled
    steps()  # compiled throughout: with a single batch, the compile happens here
    compiled = module._compiled is not None and module._compile_checked
    assert compiled and module.compile_mode == "network", "no compiled step ran, or compiling failed"
    if device == "cuda":
        torch.cuda.synchronize()
    with torch._dynamo.config.patch(error_on_recompile=True), during():
        loss = steps()
    assert torch.isfinite(loss.detach().float())


@contextlib.contextmanager
def sync_errors() -> Iterator[None]:
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checks for device synchronisation")
def test_compiled_training_steps_never_synchronise_with_the_gpu(setup) -> None:
    """``compile: true`` trains through :func:`network_losses` compiled as one graph, with eager
    code around it (the layout tables, the copies of views, the unreached weights' gradients):
    the test above runs only the eager step. Validation stays eager in a compiled run (checked
    above). The ttbar events alone, the benchmark's path, and one shape: one compile."""
    module, dm = setup
    if module.network.pair_bias is None:
        pytest.skip("one compile is enough: the ttbar events, with pair features")
    module = module.cuda()
    loader = dm.train_dataloader()
    loader.dataset.place("cuda")
    batches = one_shape(list(loader))
    with compiled_training(module, {"dynamic": False}):  # what compile: true gives on CUDA
        compiled_steps(module, batches, "cuda", sync_errors)


def test_running_means_are_event_weighted_epoch_means_and_survive_a_checkpoint() -> None:
    running = RunningMeans()
    running.add({"a": torch.tensor(1.0), "b": torch.tensor(4.0)}, 3)
    restored = RunningMeans()
    restored.load_state_dict(running.state_dict(), torch.device("cpu"))
    restored.add({"a": torch.tensor(3.0), "b": torch.tensor(0.0)}, 1)
    assert restored.sums is not None
    assert (restored.sums / restored.events).tolist() == [1.5, 3.0]


def test_a_ddp_checkpoint_keeps_every_processes_training_sums_and_a_resume_counts_them_once() -> None:
    """Rank 0 writes the checkpoint: it kept only its own share's running training loss, which
    every process then restored, so the resumed epoch's train/ losses in metrics.csv were rank
    0's partial sums twice instead of the epoch's (2 processes stopped mid-epoch: 3.2323 against
    the uninterrupted run's 3.2521, with identical weights)."""
    from types import SimpleNamespace

    from _model_helpers import small_options, spec_from, statistics_for, ttbar_yaml

    class OtherProcessSummedTheSame:
        def reduce(self, tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
            assert reduce_op == "sum"
            return tensor * 2

    yaml = ttbar_yaml("{mass: log_normalize, pt: log_normalize, eta: normalize}")
    statistics = statistics_for(spec_from(yaml)).to_dict()

    def module(rank: int) -> SpanetModule:
        made = SpanetModule(yaml, small_options(), statistics)
        made._trainer = SimpleNamespace(world_size=2, global_rank=rank, strategy=OtherProcessSummedTheSame())
        return made

    saving = module(0)
    saving._running["train"].add({"a": torch.tensor(1.0), "b": torch.tensor(4.0)}, 3)
    checkpoint: dict = {}
    saving.on_save_checkpoint(checkpoint)
    assert checkpoint["running_loss_terms"]["sums"].tolist() == [6.0, 24.0]
    assert checkpoint["running_loss_terms"]["events"] == 6
    assert saving._running["train"].events == 3  # the running sums themselves are untouched
    for rank, events in ((0, 6), (1, 0)):
        resumed = module(rank)
        resumed.on_load_checkpoint(checkpoint)
        running = resumed._running["train"]
        assert running.sums is not None and running.events == events
        assert running.sums.tolist() == ([6.0, 24.0] if rank == 0 else [0.0, 0.0])
