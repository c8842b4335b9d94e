"""A trained run, rebuilt from its directory alone: ``spanet_lite.load_run(run_dir)``.

The run directory (docs/ARCHITECTURE.md) holds ``options.json``, ``event_file.yaml``,
``statistics.json`` and ``checkpoints/best.ckpt`` (or ``last.ckpt``); nothing else is read,
in particular never the training file. From a notebook::

    run = spanet_lite.load_run("runs/ttbar/version_0")
    predictions = run.predict("data/full_hadronic_ttbar/test.h5")    # a Predictions
    metrics = run.evaluate("data/full_hadronic_ttbar/test.h5")       # a dict of numbers
    metrics["event_purity"]

The command-line tools (``spanet-test``, ``spanet-predict``, ``spanet-export``) call the
same functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.errors import InputError
from spanet_lite.evaluation.inference import Predictions, infer, to_tensors

CHECKPOINT_NAMES = ("best.ckpt", "last.ckpt")


@dataclass
class Run:
    """A network with everything needed to use it: topology, options, normalisation."""

    directory: Path
    spec: EventSpec
    options: Options
    statistics: DatasetStatistics
    network: torch.nn.Module
    checkpoint: Path

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> Run:
        """Move the network (e.g. ``run.to("cuda")``); returns self."""
        self.network.to(device)
        return self

    def predict(
        self,
        source: str | Path | Mapping[str, Any],
        masks: Mapping[str, Any] | None = None,
        *,
        batch_size: int = 1024,
        threshold: float | None = None,
        mode: str | None = None,
        embeddings: bool = False,
        progress: bool = False,
    ) -> Predictions:
        """Predictions (:class:`~spanet_lite.evaluation.inference.Predictions`) for a file or arrays.

        ``source`` is an HDF5 path (read in blocks of ``batch_size``; it needs only the INPUTS),
        or a mapping from each input name to raw features (SEQUENTIAL (B, N, F), GLOBAL (B, F),
        features in event-file order), with ``masks`` mapping each SEQUENTIAL input to (B, N)
        bool. ``threshold``: report a particle only where its detection probability is at
        least this (default: the run's ``detection_threshold``; 0 reports every particle that
        has objects left). ``mode``: ``"greedy"`` or ``"exact"`` decoding (default: the run's
        ``decoding`` option). ``embeddings`` adds the (B, D) event vector.
        """
        threshold = self.options.detection_threshold if threshold is None else threshold
        mode = mode or self.options.decoding
        if isinstance(source, (str, Path)):
            from spanet_lite.evaluation.predict import predict_file_arrays

            return predict_file_arrays(
                self, source, batch_size=batch_size, threshold=threshold, mode=mode,
                embeddings=embeddings, progress=progress,
            )
        if masks is None:
            raise ValueError("predict() on arrays needs masks for the SEQUENTIAL inputs")
        features = {s.name: np.asarray(source[s.name]) for s in self.spec.inputs}
        mask_arrays = {s.name: np.asarray(masks[s.name]) for s in self.spec.sequential}
        total = len(next(iter(mask_arrays.values())))
        parts = []
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            f, m = to_tensors(
                {k: v[start:stop] for k, v in features.items()},
                {k: v[start:stop] for k, v in mask_arrays.items()},
                self.device,
            )
            parts.append(
                infer(self.network, self.spec, f, m, threshold=threshold, mode=mode, embeddings=embeddings)
            )
        return Predictions.concatenate(parts)

    def evaluate(self, file: str | Path, *, batch_size: int = 1024, progress: bool = False) -> dict[str, Any]:
        """All metrics of ``spanet-test`` on ``file`` as a nested dict (headline: ``event_purity``).

        Warns (:class:`~spanet_lite.errors.SpanetWarning`) when ``file`` is the run's training file."""
        from spanet_lite.evaluation.evaluate import evaluate_file
        from spanet_lite.evaluation.overlap import warn_if_training_file

        warn_if_training_file(self, file)

        return evaluate_file(self, file, batch_size=batch_size, progress=progress).metrics


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "", "a file written by spanet-train", "no such file") from None
    except json.JSONDecodeError as error:
        raise InputError(path, f"line {error.lineno}", "valid JSON", error.msg) from None


def find_checkpoint(directory: Path) -> Path:
    for name in CHECKPOINT_NAMES:
        candidate = directory / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise InputError(directory, "checkpoints/", "best.ckpt or last.ckpt written by spanet-train", "neither")


def load_run(run_dir: str | Path, *, checkpoint: str | Path | None = None, device: str = "cpu") -> Run:
    """Rebuild the network of a training run from its directory (see the module docstring).

    ``checkpoint`` picks another checkpoint file; the default is ``checkpoints/best.ckpt``,
    falling back to ``checkpoints/last.ckpt``.
    """
    from spanet_lite.model.network import SpanetNetwork

    directory = Path(run_dir)
    if not directory.is_dir():
        raise InputError(directory, "", "a run directory written by spanet-train", "no such directory")
    event_file = directory / "event_file.yaml"
    if not event_file.is_file():
        raise InputError(event_file, "", "the event file copied by spanet-train", "no such file")
    spec = parse_event_spec(event_file.read_text(encoding="utf-8"), source=str(event_file))
    options = Options.from_dict(_read_json(directory / "options.json"))
    statistics = DatasetStatistics.from_dict(_read_json(directory / "statistics.json"))
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint(directory)
    try:
        # A Lightning checkpoint from the user's own run; it holds plain Python containers
        # beside the tensors, which weights_only loading rejects.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise InputError(path, "", "an existing checkpoint", "no such file") from None
    except Exception as error:  # torch raises several types for damaged files
        raise InputError(path, "", "a readable torch checkpoint", type(error).__name__) from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(path, "", "a checkpoint with a state_dict", "something else")
    weights = {k[len("network."):]: v for k, v in state["state_dict"].items() if k.startswith("network.")}
    network = SpanetNetwork(spec, options, statistics)
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise InputError(path, "state_dict", "weights matching the run's event file and options", detail)
    network.eval().to(device)
    return Run(directory, spec, options, statistics, network, path)
