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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spanet_lite.config.masses import MassConstraint
from spanet_lite.errors import InputError
from spanet_lite.evaluation.arrays import check_inputs
from spanet_lite.evaluation.evaluate import evaluate_file
from spanet_lite.evaluation.inference import Predictions, device_inputs, infer
from spanet_lite.evaluation.predict import predict_file_arrays
from spanet_lite.evaluation.trained import TrainedRun, load_trained


class Run(TrainedRun):
    """A trained run (:class:`~spanet_lite.evaluation.trained.TrainedRun`) with notebook methods."""

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
        pairs: Mapping[str, Any] | None = None,
    ) -> Predictions:
        """Predictions (:class:`~spanet_lite.evaluation.inference.Predictions`) for a file or arrays.

        The fields mean what the datasets of ``spanet-predict``'s file mean (SPANet's layout):
        ``assignments`` is the best assignment of every particle in every event (SPANet's
        ``TARGETS``, combined object indices), ``assignment_probabilities``,
        ``detection_probabilities`` and ``marginal_probabilities`` are SPANet's per-event
        probabilities, ``classifications`` are (B, C) class probabilities; ``reported`` is
        spanet_lite's detection-gated assignment (``SPANET_LITE/TARGETS``).

        ``source`` is an HDF5 path (read in blocks of ``batch_size``; it needs only the INPUTS),
        or a mapping from each input name to raw features (SEQUENTIAL (B, N, F), GLOBAL (B, F)
        or SPANet's (B, 1, F), features in event-file order), with ``masks`` mapping each
        SEQUENTIAL input to (B, N) bool. Arrays are checked against the run before any work
        (:mod:`~spanet_lite.evaluation.arrays`: names, shapes, one event count, finite values on
        real objects); ``masks`` and ``pairs`` with a file path are refused, not ignored.
        ``threshold``: ``reported`` holds a particle only where its detection probability is at
        least this (default: the run's ``detection_threshold``). ``mode``: ``"greedy"`` or
        ``"exact"`` decoding (default: the run's ``decoding`` option). A threshold outside [0, 1],
        another mode or a ``batch_size`` below 1 is an :class:`~spanet_lite.errors.InputError`.
        ``embeddings`` adds SPANet's embedding vectors (``EVENT``, ``<particle>/PARTICLE``,
        ``<particle>/<product>``). ``pairs`` maps each RELATIVE input with pairwise features to
        its raw (B, N, N, C) array (arrays only).
        """
        settings = self.settings(batch_size=batch_size, threshold=threshold, mode=mode)
        batch_size, threshold, mode = settings.batch_size, settings.threshold, settings.mode
        if isinstance(source, (str, Path)):
            for name, given in (("masks", masks), ("pairs", pairs)):
                if given is not None:
                    raise InputError(None, name, "None when source is a file (the file's own INPUTS "
                                     "are read)", type(given).__name__)
            return predict_file_arrays(
                self, source, batch_size=batch_size, threshold=threshold, mode=mode,
                embeddings=embeddings, progress=progress,
            )
        if not isinstance(source, Mapping):
            raise InputError(None, "source", "an HDF5 file path or a dict from input name to features",
                             type(source).__name__)
        inputs = check_inputs(self.spec, self.statistics.pair_features, source, masks, pairs)
        parts = []
        for start in range(0, len(inputs), batch_size):
            stop = min(start + batch_size, len(inputs))
            batch = device_inputs(
                self.spec,
                {k: v[start:stop] for k, v in inputs.features.items()},
                {k: v[start:stop] for k, v in inputs.masks.items()},
                {k: v[start:stop] for k, v in inputs.pairs.items()},
                self.device,
            )
            parts.append(infer(self.network, self.spec, batch.features, batch.masks, threshold=threshold,
                               mode=mode, embeddings=embeddings, pairs=batch.pairs, slots=batch.slots))
        return self.predictions(parts, threshold=threshold, mode=mode, embeddings=embeddings)

    def evaluate(
        self,
        file: str | Path,
        *,
        batch_size: int = 1024,
        threshold: float | None = None,
        mode: str | None = None,
        progress: bool = False,
        lines: int = 2,
        masses: Sequence[MassConstraint] | None = None,
    ) -> dict[str, Any]:
        """All metrics of ``spanet-test`` on ``file`` as a nested dict (headline: ``event_purity``).

        The keywords are :func:`~spanet_lite.evaluation.evaluate.evaluate_file`'s, passed through:
        ``threshold`` and ``mode`` as in :meth:`predict` (``spanet-test --threshold/--decoding``),
        ``lines`` the rows of SPANet's tables (``--lines``), ``masses`` the chi-square baseline's
        constraints (default: the event file's; ``masses=[]`` skips the baseline, most of the
        time of a small evaluation). Warns (:class:`~spanet_lite.errors.SpanetWarning`) when
        ``file`` is the run's training file. For the per-event arrays, ``json_file`` or ``plots``
        (``spanet-test --json/--plots``), call ``evaluate_file`` itself."""
        return evaluate_file(
            self, file, batch_size=batch_size, threshold=threshold, mode=mode, progress=progress,
            lines=lines, masses=masses,
        ).metrics


def load_run(run_dir: str | Path, *, checkpoint: str | Path | None = None, device: str = "cpu") -> Run:
    """Rebuild a training run from its directory; ``checkpoint`` picks another checkpoint file
    (default ``checkpoints/best.ckpt``, else ``checkpoints/last.ckpt``)."""
    trained = load_trained(run_dir, checkpoint=checkpoint, device=device)
    return Run(**{name: getattr(trained, name) for name in TrainedRun.__dataclass_fields__})
