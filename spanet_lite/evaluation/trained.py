"""A trained network with what it needs to run: rebuilt from a run directory alone.

The run directory (docs/ARCHITECTURE.md) holds ``options.json``, ``event_file.yaml``,
``statistics.json`` and ``checkpoints/best.ckpt`` (or ``last.ckpt``); nothing else is read,
in particular never the training file. Evaluation, prediction and export take a
:class:`TrainedRun`; :class:`spanet_lite.evaluation.run.Run` adds the notebook methods on top.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.config.options_validation import (
    check_batch_size,
    check_decoding,
    check_threshold,
    validate_options,
)
from spanet_lite.config.suggest import describe
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.devices import check_device, device_failure
from spanet_lite.errors import InputError
from spanet_lite.evaluation.inference import Predictions, no_events
from spanet_lite.io import parse_user_json, read_checkpoint, read_user_text
from spanet_lite.outputs import is_run_directory

CHECKPOINT_NAMES = ("best.ckpt", "last.ckpt")
MATCHING_WEIGHTS = "weights matching the run's event file and options"
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """How a prediction or evaluation runs, checked (:meth:`TrainedRun.settings`)."""

    batch_size: int
    threshold: float
    mode: str


@dataclass
class TrainedRun:
    """A network with everything needed to use it: topology, options, normalisation."""

    directory: Path
    spec: EventSpec
    options: Options
    statistics: DatasetStatistics
    network: torch.nn.Module
    checkpoint: Path

    def __repr__(self) -> str:
        """The run folder, checkpoint, inputs and particles: what tells runs apart in a notebook
        (the default repr prints every option and the whole network)."""
        inputs = ", ".join(
            f"{s.name} ({s.num_features})" if s.kind == "GLOBAL"
            else f"{s.name} ({self.statistics.max_objects.get(s.name, '?')} x {s.num_features})"
            for s in self.spec.inputs
        )
        particles = ", ".join(self.spec.particle_names) or "none"
        return (f"{type(self).__name__}({str(self.directory)!r}, checkpoint {self.checkpoint.name}; "
                f"inputs {inputs}; particles {particles}; on {self.device})")

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> TrainedRun:
        """Move the network (e.g. ``run.to("cuda")``); returns self."""
        self.network.to(device)
        return self

    def predictions(self, parts: list[Predictions], *, threshold: float | None, mode: str,
                    embeddings: bool = False) -> Predictions:
        """The per-block ``parts`` joined; for zero events (no parts) every key still there with
        arrays of length 0 (:func:`~spanet_lite.evaluation.inference.no_events`), so a notebook
        need not special-case an empty selection."""
        if parts:
            return Predictions.concatenate(parts)
        pair_counts = {name: len(names) for name, names in self.statistics.pair_features.items()}
        return no_events(self.network, self.spec, self.statistics.max_objects, pair_counts,
                         threshold=threshold, mode=mode, embeddings=embeddings)

    def settings(self, *, batch_size: Any, threshold: float | None, mode: str | None) -> Settings:
        """The batch size, threshold and mode of a prediction or evaluation: the caller's, else
        the run's ``detection_threshold`` and ``decoding``. All three are checked here, by the
        rules of the options of the same meaning, because a notebook caller has no parser in
        front of the API: a bad value is one InputError naming the keyword (``threshold``,
        ``mode``, ``batch_size``) before any work."""
        size = check_batch_size(batch_size, "batch_size")
        threshold = self.options.detection_threshold if threshold is None else threshold
        check_threshold(threshold, "threshold")
        mode = self.options.decoding if mode is None else mode
        check_decoding(mode, "mode")
        return Settings(batch_size=size, threshold=threshold, mode=mode)


def require_run(run: object) -> TrainedRun:
    """``run`` itself when it is a loaded run, else a one-line InputError naming ``run``.

    The functions behind the commands (``write_predictions``, ``evaluate_file``,
    ``export_onnx``) take the run, not its folder: loading is where the device and checkpoint are
    chosen (``load_run(RUN_DIR, checkpoint=..., device=...)``), and a notebook loads once and
    calls many times. A folder name passed by habit (the CLI takes one) would otherwise end in
    ``'str' object has no attribute 'settings'``."""
    if not isinstance(run, TrainedRun):
        got = f"a {type(run).__name__}" + (f" ({str(run)!r})" if isinstance(run, (str, Path)) else "")
        raise InputError(None, "run", "a loaded run (spanet_lite.load_run(RUN_DIR))", got)
    return run


def round_to_float16(network: torch.nn.Module, where: str = "network") -> None:
    """Round every floating parameter and buffer (normalisation statistics included) to the
    nearest float16 value, kept in its own dtype: what SPANet's ``-fp16`` does to the checkpoint
    it loads, on the CPU as on a GPU (SPANet keeps each feature's std where we keep 1/std, so the
    rounded numbers agree to float16 precision, not bit for bit). A value beyond float16's range
    (a mean above 65,504 in raw units) would become infinite: that is a one-line InputError
    naming ``where``, what the caller asked for the rounding as (this function's ``network``;
    ``-fp16`` for the commands, which round only when it is typed)."""
    tensors = [*network.named_parameters(), *network.named_buffers()]
    with torch.no_grad():
        for _, tensor in tensors:
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(torch.float16))
    broken = first_non_finite(tensors)
    if broken is not None:
        raise InputError(None, where, f"values float16 can hold in {broken}", "one beyond 65,504")


def first_non_finite(tensors: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating tensor holding NaN or infinity, else None: weights that
    would make every prediction NaN (a diverged run, or a value float16 cannot hold)."""
    return next((name for name, tensor in tensors
                 if tensor.is_floating_point() and not torch.isfinite(tensor).all()), None)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(path, "", "a file written by spanet-train", "no such file")
    return parse_user_json(read_user_text(path, "run file", "JSON"), path, "a file written by spanet-train")


def _from_run_file(path: Path, build: Callable[[dict[str, Any]], T]) -> T:
    """``build`` applied to the JSON object in ``path``; anything else is a one-line InputError."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "", "a JSON object written by spanet-train", type(data).__name__)
    try:
        return build(data)
    except (TypeError, ValueError, KeyError) as error:  # keys or values of another kind
        raise InputError(path, "", "a file written by spanet-train", str(error)) from None


def _not_a_run(directory: Path) -> str:
    """What a folder without any run file is, naming the runs inside it when it holds some (the
    ``<log_dir>/<name>`` folder above ``version_N``, a likely slip)."""
    runs = sorted(
        (p.name for p in directory.glob("version_*") if is_run_directory(p)),
        key=lambda name: (len(name), name),
    )
    if not runs:
        return "a folder without event_file.yaml, options.json or checkpoints/"
    shown = ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
    return f"a folder of runs: pass one of them ({shown})"


def _not_a_folder(path: Path) -> str:
    """What a RUN_DIR that is no folder is: missing, or a file (an input file given first, a
    slip in the order of the arguments; or a file of a run, whose folder is then named)."""
    if not path.exists():
        return "no such directory"
    run = next((folder for folder in path.absolute().parents[:2] if is_run_directory(folder)), None)
    return "a file" if run is None else f"a file of the run directory {run}: pass the folder"


def find_checkpoint(directory: Path) -> Path:
    """The checkpoint a run is used with: ``best.ckpt`` (best validation metric), else
    ``last.ckpt`` (a run stopped before its first validation); InputError when neither exists."""
    for name in CHECKPOINT_NAMES:
        candidate = directory / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise InputError(directory, "checkpoints/", "best.ckpt or last.ckpt written by spanet-train", "neither")


def _build_network(
    directory: Path, spec: EventSpec, options: Options, statistics: DatasetStatistics
) -> torch.nn.Module:
    """The run's network, freshly initialised; run files that do not fit together (edited by
    hand, or copied from different runs) are a one-line InputError. The initial weights, replaced
    by the checkpoint's, are drawn with torch's global generator saved and restored, so loading a
    run leaves a notebook's random numbers where its own ``torch.manual_seed`` put them."""
    from spanet_lite.model.network import SpanetNetwork

    try:
        with torch.random.fork_rng(devices=[]):
            return SpanetNetwork(spec, options, statistics)
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            directory, "", "event_file.yaml, options.json and statistics.json of one run", str(error),
        ) from None
    except RuntimeError as error:  # a width edited into options.json that does not fit in memory
        failure = device_failure(error)
        if failure is None:
            raise
        raise InputError(directory / "options.json", "", "a network that fits in memory", failure) from None


def load_trained(
    run_dir: str | Path, *, checkpoint: str | Path | None = None, device: str = "cpu"
) -> TrainedRun:
    """Rebuild the network of a training run from its directory (see the module docstring).

    ``checkpoint`` picks another checkpoint file; the default is ``checkpoints/best.ckpt``,
    falling back to ``checkpoints/last.ckpt``.

    ``run_dir`` or ``checkpoint`` that is no path is one line: ``load_run(result.run_dir)`` after
    ``train(fast_dev_run=True)`` (which keeps no run: ``run_dir`` None) was a TypeError traceback.
    """
    for where, value in (("run_dir", run_dir), ("checkpoint", checkpoint)):
        if not isinstance(value, (str, os.PathLike)) and not (where == "checkpoint" and value is None):
            got = describe(value) + (" (a fast_dev_run keeps no run directory)" if value is None else "")
            wanted = "a run directory path" if where == "run_dir" else "a checkpoint path"
            raise InputError(None, where, wanted, got)
    directory = Path(run_dir)
    if not directory.is_dir():
        raise InputError(directory, "", "a run directory written by spanet-train", _not_a_folder(directory))
    event_file = directory / "event_file.yaml"
    if not event_file.is_file():
        if (directory / "event.yaml").is_file():  # what SPANet's training copies into its run directories
            raise InputError(
                directory, "", "a run directory written by spanet-train (SPANet's runs are not read here)",
                "a SPANet run directory (event.yaml, no event_file.yaml)",
            )
        run_files = ("options.json", "statistics.json", "checkpoints")
        if not any((directory / name).exists() for name in run_files):
            raise InputError(directory, "", "a run directory written by spanet-train", _not_a_run(directory))
        raise InputError(event_file, "", "the event file copied by spanet-train", "no such file")
    spec = parse_event_spec(read_user_text(event_file, "event file", "YAML"), source=str(event_file))
    options = _from_run_file(directory / "options.json", Options.from_dict)
    validate_options(options, directory / "options.json")  # a file edited by hand since training
    statistics = _from_run_file(directory / "statistics.json", DatasetStatistics.from_dict)
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint(directory)
    state = read_checkpoint(path)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(path, "", "a checkpoint with a state_dict", "something else")
    weights = {k[len("network."):]: v for k, v in state["state_dict"].items() if k.startswith("network.")}
    network = _build_network(directory, spec, options, statistics)
    try:
        missing, unexpected = network.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))
        raise InputError(path, "state_dict", MATCHING_WEIGHTS, detail) from None
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise InputError(path, "state_dict", MATCHING_WEIGHTS, detail)
    broken = first_non_finite(weights.items())
    if broken is not None:
        raise InputError(path, f"state_dict network.{broken}", "finite weights", "NaN or infinity")
    target = check_device(device, "device")
    try:
        network.eval().to(target)
    except RuntimeError as error:  # busy, out of memory or lost: the driver's words, on one line
        failure = device_failure(error)
        if failure is None:
            raise
        raise InputError(None, "device", f"a usable {target.type} device", failure) from None
    return TrainedRun(directory, spec, options, statistics, network, path)
