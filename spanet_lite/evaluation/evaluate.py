"""Everything ``spanet-test`` measures, for one run on one labelled file.

:func:`evaluate_file` streams the file in blocks, runs the network once per block, and
gathers what every metric and plot needs (:class:`Evaluation`); the network sees each block
trimmed to the object slots it uses (exact, see :mod:`spanet_lite.dataset.batch`) and the
decoded indices are mapped back to the file's. Two decodings of the same network outputs
are scored:

* without detection gating, every particle that has objects left is reported: the
  published SPANet convention for ``event_purity`` and the jet / particle-count tables;
* with the run's ``detection_threshold`` (or the caller's ``threshold``): what
  ``spanet-predict`` writes; its particle purity and efficiency (``with_detection``) show what
  the detection head adds.

When the event file (or ``spanet-test --masses``) gives particle masses, the chi-square
assignment baseline (:mod:`~spanet_lite.evaluation.chisquare`) is scored with the same
metrics and tables, under ``baseline/chi_square``.

``num_jets`` counts jets: real objects of the SEQUENTIAL inputs, leptons excluded by the rule
of :mod:`~spanet_lite.assignment.jets`. Per-event weights (``event_weight_dataset``) enter
every average.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from spanet_lite.assignment.jets import count_jets, describe
from spanet_lite.assignment.metrics import assignment_metrics, assignment_tables, match_outcome, paired_truth
from spanet_lite.assignment.spanet_tables import spanet_tables
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.masses import VALUE_EXPECTED, MassConstraint, valid_products, valid_value
from spanet_lite.config.options_file import as_integer
from spanet_lite.config.suggest import describe as describe_value
from spanet_lite.dataset import hdf5_layout, reader, schema, selection
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.evaluation import baseline as neutrino
from spanet_lite.evaluation import chisquare
from spanet_lite.evaluation import metrics as M
from spanet_lite.evaluation.inference import Predictions, device_inputs, from_outputs, trimmed_forward
from spanet_lite.evaluation.overlap import warn_if_training_file
from spanet_lite.evaluation.predict import RUN_ATTRIBUTE
from spanet_lite.evaluation.progress import progress_bar
from spanet_lite.evaluation.trained import TrainedRun, require_run
from spanet_lite.evaluation.units import is_logarithm, regression_units
from spanet_lite.hdf5_paths import classification_path
from spanet_lite.io import all_or_nothing, atomic_directory, atomic_write_text
from spanet_lite.outputs import check_outputs, output


@dataclass
class Evaluation:
    """Numbers (``metrics``, JSON-able) and the per-event arrays the plots draw from."""

    metrics: dict[str, Any]
    predictions: Predictions
    gated: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    target_masks: dict[str, np.ndarray]
    num_jets: np.ndarray
    """Jets per event, leptons excluded (:mod:`~spanet_lite.assignment.jets`): our tables and plots."""
    num_objects: np.ndarray
    """Real objects per event over the object inputs (SEQUENTIAL and RELATIVE)."""
    weights: np.ndarray
    regressions: dict[str, np.ndarray]
    classifications: dict[str, np.ndarray]
    """Regression and classification truth, an EVENT-symmetric particle's in the frame of the
    predicted particles (:func:`~spanet_lite.assignment.metrics.paired_truth`)."""
    baseline: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_note: str = ""
    chi_square: dict[str, np.ndarray] = field(default_factory=dict)
    chi_square_note: str = ""
    units: dict[str, str | None] = field(default_factory=dict)
    """Regression key -> physical unit where the file says (:mod:`~spanet_lite.evaluation.units`)."""
    plots: list[Path] = field(default_factory=list)
    """The PNG files :func:`evaluate_file` wrote into its ``plots`` folder."""
    num_vectors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """SPANet's ``num_vectors`` per event, the rows of SPANet's tables: ``num_objects`` plus one per
    GLOBAL input, or that input's ``MASK`` where the file has one (SPANet's GlobalInput)."""

    def __repr__(self) -> str:
        """The file, event count and headline numbers, not every array (a 100 KB repr)."""
        metrics = self.metrics
        parts = [f"{len(self.weights)} events of {Path(str(metrics.get('file', '?'))).name}"]
        if "event_purity" in metrics:
            parts.append(f"event_purity {metrics['event_purity']:.4g}")
        chi = metrics.get("baseline", {}).get("chi_square", {})
        if chi.get("used"):
            parts.append(f"chi-square event_purity {chi['event_purity']:.4g}")
        for name in ("regression", "classification"):
            if metrics.get(name):
                parts.append(f"{name}: {', '.join(metrics[name])}")
        if self.plots:
            parts.append(f"{len(self.plots)} plots")
        return f"Evaluation({'; '.join(parts)}; .metrics for every number)"


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


MAX_LINES = 100
"""Most rows ``== m`` ... :func:`check_lines` takes. A row counts events by their number of
objects, and event files hold a few tens of object slots, so 100 rows give every count its own
row; more only add empty rows, each another pass over the events (10**9 rows would not fit in memory)."""
LINES_EXPECTED = f"a number of rows from 0 to {MAX_LINES}"
MASSES_EXPECTED = "a list of MassConstraint (spanet_lite.config.masses), e.g. from load_masses_file"


def check_lines(value: object, where: str = "lines") -> int:
    """``lines``, the rows ``== m`` ... of SPANet's tables (``spanet-test --lines``): an integer
    by the rule every integer setting follows (:func:`~spanet_lite.config.options_file.as_integer`,
    so ``2.0`` is 2), from 0 to :data:`MAX_LINES`, refused as one line naming ``where`` (the CLI
    passes its flag). The one home of this rule: -1 was taken silently (no rows) and 1.5 failed
    deep in ``range``. Returns the value as an ``int``, which the caller should use."""
    lines = as_integer(value, where)
    if not 0 <= lines <= MAX_LINES:
        raise InputError(None, where, LINES_EXPECTED, str(lines))
    return lines


def check_masses(value: object, spec: EventSpec, where: str = "masses") -> None:
    """``masses``, the chi-square baseline's constraints: None (the event file's) or a sequence of
    :class:`~spanet_lite.config.masses.MassConstraint` on particles and products of ``spec``,
    with a mass and width by the rule a masses file obeys (``valid_value``), refused as one line
    naming ``where``. Strings or mappings failed deep in the baseline with an AttributeError, an
    unknown particle with a ValueError, and a width of 0 or a NaN mass gave NaN numbers."""
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InputError(None, where, MASSES_EXPECTED, describe_value(value))
    particles = {p.name: p.product_names for p in spec.particles}
    for index, constraint in enumerate(value):
        if not isinstance(constraint, MassConstraint):
            raise InputError(None, where, MASSES_EXPECTED, f"{describe_value(constraint)} at index {index}")
        known = particles.get(constraint.particle) if isinstance(constraint.particle, str) else None
        if known is None or not valid_products(constraint.products, known):
            names = ", ".join(f"{name} ({' '.join(products)})" for name, products in particles.items())
            expected = f"constraints on particles and products of the event file: {names}"
            raise InputError(None, where, expected, constraint.describe())
        if not valid_value(constraint.mass, constraint.width):
            raise InputError(None, where, VALUE_EXPECTED, f"{constraint.describe()} at index {index}")


def check_evaluation_outputs(
    run: TrainedRun,
    path: str | Path,
    json_file: str | Path | None,
    plots: str | Path | None,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    names: tuple[str, str] = ("json_file", "plots"),
) -> None:
    """The output rule for :func:`evaluate_file`'s ``json_file`` and ``plots`` (see there), its
    lines naming them as ``names`` spells them: the keywords, or ``spanet-test``'s flags, which
    the command checks first."""
    check_outputs([output(json_file, names[0]), output(plots, names[1], directory=True)],
                  inputs=[path, run.checkpoint, *inputs], overwrite=overwrite)


def evaluate_file(
    run: TrainedRun,
    path: str | Path,
    *,
    batch_size: int = 1024,
    threshold: float | None = None,
    mode: str | None = None,
    progress: bool = False,
    lines: int = 2,
    masses: Sequence[MassConstraint] | None = None,
    json_file: str | Path | None = None,
    plots: str | Path | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Evaluation:
    """Stream ``path`` through ``run``'s network and compute every metric (see module doc).

    A run with ``limit_to_num_jets = J > 0`` is scored on the events with exactly ``J`` vectors
    (:meth:`~spanet_lite.dataset.reader.EventBlock.num_vectors`), as SPANet's test dataset keeps
    only those; a :class:`~spanet_lite.errors.SpanetWarning` says how many were left out.

    ``threshold`` and ``mode``: the detection threshold of the ``with_detection`` numbers and the
    decoding mode (default: the run's ``detection_threshold`` and ``decoding``; checked by those
    options' rules). ``lines``: rows ``== m`` ... of SPANet's tables (``spanet.test --lines``;
    :func:`check_lines`). ``masses``: constraints for the chi-square baseline (default: the
    event file's; :func:`check_masses`).

    ``json_file`` and ``plots`` (a folder) are what ``spanet-test --json/--plots`` write: every
    number (strict JSON) and the PNG figures, atomically and together (a failure of either
    leaves neither, :func:`~spanet_lite.io.all_or_nothing`). They obey the output rule of
    :mod:`spanet_lite.outputs`, checked before any work (:func:`check_evaluation_outputs`, its
    lines naming these keywords): an existing one is replaced only with ``overwrite=True``, and
    never ``path``, the run's checkpoint, one of ``inputs`` (other files the caller read) or a
    file of a training run.

    A file that passes its check but holds the run's training events is scored with a
    :class:`~spanet_lite.errors.SpanetWarning` saying so (:func:`~spanet_lite.evaluation.overlap.
    warn_if_training_file`).
    """
    require_run(run)
    settings = run.settings(batch_size=batch_size, threshold=threshold, mode=mode)
    batch_size, threshold, mode = settings.batch_size, settings.threshold, settings.mode
    lines = check_lines(lines)
    check_masses(masses, run.spec)
    check_evaluation_outputs(run, path, json_file, plots, overwrite=overwrite, inputs=inputs)
    spec, options = run.spec, run.options
    plan = neutrino.plan_baseline(spec)
    constraints = tuple(spec.masses if masses is None else masses)
    chi_reason = chisquare.missing_kinematics(spec) if constraints and spec.particles else "no masses given"
    chi_parts: list[dict[str, np.ndarray]] = []
    weight = options.event_weight_dataset
    with schema.open_h5(path) as source:
        refuse_predictions(source, path)  # before reading it into memory
        with schema.in_memory(source, spec, event_weight_dataset=weight) as file:
            schema.validate_h5(file, spec, source=str(path), event_weight_dataset=weight).raise_for_errors()
            warn_if_training_file(run, path)  # after the check: a file refused gets its one line alone
            layout = reader.resolve_layout(file, spec, path, weight)
            hdf5_layout.check_pair_features(layout.pair_features, run.statistics.pair_features, str(path))
            units = regression_units(source, [t.key for t in spec.regressions])  # attributes: on disk only
            if layout.num_events == 0:
                raise InputError(path, "", "at least one event to evaluate", "0")
            parts: list[Predictions] = []
            gated, targets, masks, jets, weights, regressions, classes, base = [], [], [], [], [], [], [], []
            objects: list[np.ndarray] = []
            vectors: list[np.ndarray] = []
            limit, left_out = options.limit_to_num_jets, 0
            with progress_bar(layout.num_events, f"testing {Path(path).name}", enabled=progress) as advance:
                for start, stop in reader.row_blocks(layout.num_events, batch_size):
                    block = reader.read_block(file, spec, layout, start, stop)
                    if limit > 0:  # SPANet tests on its dataset, which keeps only these events
                        kept = selection.filter_rows(np.arange(len(block)), block.num_vectors(), None,
                                                     limit_to_num_jets=limit)
                        left_out += kept.wrong_count
                        block = block.select(kept.rows)
                        if len(block) == 0:
                            advance(stop - start)
                            continue
                    batch = device_inputs(spec, block.features, block.masks, block.pairs, run.device)
                    with torch.inference_mode():
                        outputs, slots = trimmed_forward(
                            run.network, spec, batch.features, batch.masks, batch.pairs, batch.slots
                        )
                    predicted = from_outputs(
                        run.network, spec, outputs, threshold=threshold, mode=mode, slots=slots
                    )
                    parts.append(predicted)
                    if predicted.reported is not None:
                        gated.append(predicted.reported)
                    targets.append(block.targets)
                    masks.append(block.target_masks)
                    jets.append(count_jets(spec, block.features, block.masks))
                    objects.append(block.num_objects())
                    vectors.append(block.num_vectors())
                    weights.append(block.event_weights)
                    regressions.append(block.regressions)
                    classes.append(block.classifications)
                    if plan.usable:
                        base.append(neutrino.compute_baseline(plan, spec, block.features, block.masks))
                    if chi_reason is None:
                        kinematics = chisquare.object_kinematics(spec, block.features, block.masks)
                        chi_parts.append(chisquare.chi_square_assign(spec, constraints, kinematics)[0])
                    advance(stop - start)
    if limit > 0:
        if not parts:
            raise InputError(path, "", f"at least one event with exactly limit_to_num_jets = {limit} "
                             "vectors (objects, each GLOBAL input counting 1 or its MASK)",
                             f"none of {layout.num_events}")
        if left_out:
            warnings.warn(f"{path}: {left_out} of {layout.num_events} events left out, without exactly "
                          f"limit_to_num_jets = {limit} vectors (objects, each GLOBAL input counting 1 "
                          "or its MASK), as SPANet's test leaves them out", SpanetWarning, stacklevel=2)
    evaluation = Evaluation(
        metrics={},
        predictions=Predictions.concatenate(parts),
        gated=_concat(gated),
        targets=_concat(targets),
        target_masks=_concat(masks),
        num_jets=np.concatenate(jets),
        num_objects=np.concatenate(objects),
        num_vectors=np.concatenate(vectors),
        weights=np.concatenate(weights).astype(np.float64),
        regressions=_concat(regressions),
        classifications=_concat(classes),
        baseline_note=plan.describe(),
        chi_square=_concat(chi_parts),
        chi_square_note=(
            "chi-square baseline: " + "; ".join(c.describe() for c in constraints)
            if chi_reason is None else f"chi-square baseline skipped: {chi_reason}"
        ),
        units=units,
    )
    warn_unknown_classes(spec, evaluation, path)
    if len(spec.event_symmetry.elements) > 1:
        element = match_outcome(evaluation.predictions.assignments, evaluation.targets,
                                evaluation.target_masks, spec).element
        evaluation.regressions = paired_truth(element, spec, evaluation.regressions, spec.regressions)
        evaluation.classifications = paired_truth(element, spec, evaluation.classifications,
                                                  spec.classifications)
    scale = 1.0
    if plan.usable:
        truth = {k: evaluation.regressions[k] for k in plan.targets}
        evaluation.baseline, scale = neutrino.matched_baseline(plan, _concat(base), truth)
    evaluation.metrics = compute_metrics(
        run, evaluation, path, scale, lines=lines, threshold=threshold, mode=mode
    )
    with all_or_nothing() as group:
        if json_file is not None:
            text = json.dumps(json_ready(evaluation.metrics), indent=2, allow_nan=False)
            atomic_write_text(json_file, text + "\n", group=group)
        if plots is not None:
            from spanet_lite.evaluation.plots import write_all

            with atomic_directory(plots, group=group) as folder:
                written = write_all(evaluation, spec, run.directory, folder)
    if plots is not None:
        evaluation.plots = [Path(plots) / p.name for p in written]
    return evaluation


def warn_unknown_classes(spec: EventSpec, ev: Evaluation, path: str | Path) -> None:
    """One :class:`~spanet_lite.errors.SpanetWarning` per classification target whose test labels
    go beyond the classes the run was trained with (its training file's labels 0 .. C-1): the
    network cannot predict such a class, so those events are left out of that target's numbers
    (:func:`~spanet_lite.evaluation.metrics.classification_metrics`), and without this line the
    accuracy and ROC silently covered fewer events than the file holds."""
    for target in spec.classifications:
        classes = ev.predictions.classifications[target.key].shape[1]
        unknown = int(np.sum(ev.classifications[target.key] >= classes))
        if unknown:
            warnings.warn(f"{path}: {classification_path(target.key)}: {unknown} of {len(ev.weights)} events "
                          f"have a class label >= {classes}, a class the run was not trained with (labels "
                          f"0 to {classes - 1}); they are left out of its classification numbers",
                          SpanetWarning, stacklevel=3)


def refuse_predictions(file: h5py.File, path: str | Path) -> None:
    """A ``spanet-predict`` output is no test file: its TARGETS are the network's own answers, so
    scoring it would measure the predictions against themselves (purity near 1, or whatever
    another run's answers agree on), with nothing to say so. Known by the attribute the writer
    stamps (:data:`~spanet_lite.evaluation.predict.RUN_ATTRIBUTE`)."""
    if RUN_ATTRIBUTE in file.attrs:
        raise InputError(path, "", "a labelled test file", "a prediction file written by spanet-predict "
                         f"(run {file.attrs[RUN_ATTRIBUTE]}): its TARGETS are predictions, not the truth; "
                         "pass the labelled file it was made from")


def compute_metrics(
    run: TrainedRun,
    ev: Evaluation,
    path: str | Path,
    unit_divisor: float,
    *,
    lines: int = 2,
    threshold: float | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """The nested metrics dict (JSON-able; ``nan``/``inf`` are turned into null when written).
    ``threshold`` and ``mode`` are what the predictions were made with (default: the run's).

    ``spanet_tables`` holds SPANet's per-event-type tables
    (:func:`~spanet_lite.assignment.spanet_tables.spanet_tables`), computed on the best assignment with
    SPANet's object count (:attr:`Evaluation.num_vectors`: a GLOBAL input counts as one object, or
    as its ``MASK`` where the file has one)."""
    spec, options = run.spec, run.options
    threshold = options.detection_threshold if threshold is None else threshold
    w = ev.weights
    result: dict[str, Any] = {
        "file": str(path),
        "run": str(run.directory),
        "checkpoint": str(run.checkpoint),
        "num_events": len(w),
        "sum_of_weights": float(w.sum()),
        "decoding": options.decoding if mode is None else mode,
    }
    if spec.particles:
        predicted = ev.predictions.assignments
        assignment = assignment_metrics(
            predicted, ev.targets, ev.target_masks, spec, weights=w, num_jets=ev.num_jets
        )
        result["event_purity"] = assignment["event_purity"]
        result["event_purity_all"] = assignment["event_purity_all"]
        result["assignment"] = assignment
        result["assignment_tables"] = assignment_tables(
            predicted, ev.targets, ev.target_masks, spec, weights=w, num_jets=ev.num_jets
        )
        result["jet_count_rule"] = describe(spec)
        result["spanet_tables"] = spanet_tables(
            predicted, ev.targets, ev.target_masks, spec, ev.num_vectors, lines=lines
        )
        with_detection = assignment_metrics(ev.gated, ev.targets, ev.target_masks, spec, weights=w)
        result["with_detection"] = {"threshold": threshold, **with_detection}
        present = M.detection_truth(predicted, ev.targets, ev.target_masks, spec)
        result["detection"] = {
            p: M.detection_metrics(
                ev.predictions.detection_probabilities[p], present[p], weights=w,
                threshold=threshold,
            )
            for p in spec.particle_names
        }
    regression: dict[str, Any] = {}
    for target in spec.regressions:
        key = target.key
        truth = ev.regressions[key]
        logarithm = is_logarithm(key, ev.units.get(key))
        entry = {"network": M.regression_metrics(ev.predictions.regressions[key], truth, weights=w,
                                                 logarithm=logarithm)}
        if key in ev.baseline:
            entry["baseline"] = M.regression_metrics(ev.baseline[key], truth, weights=w, logarithm=logarithm)
        regression[key] = entry
    if regression:
        result["regression"] = regression
        result["baseline"] = {
            "used": bool(ev.baseline), "note": ev.baseline_note, "unit_divisor": unit_divisor
        }
        result["regression_units"] = {key: ev.units.get(key) for key in regression}
    if spec.particles:
        result.setdefault("baseline", {})["chi_square"] = _chi_square_metrics(spec, ev, lines)
    classification = {
        t.key: M.classification_metrics(
            ev.predictions.classifications[t.key], ev.classifications[t.key], weights=w
        )
        for t in spec.classifications
    }
    if classification:
        result["classification"] = classification
    return result


def _chi_square_metrics(spec: EventSpec, ev: Evaluation, lines: int) -> dict[str, Any]:
    """The chi-square baseline scored exactly like the network (``used`` false without masses)."""
    if not ev.chi_square:
        return {"used": False, "note": ev.chi_square_note}
    w = ev.weights
    assignment = assignment_metrics(
        ev.chi_square, ev.targets, ev.target_masks, spec, weights=w, num_jets=ev.num_jets
    )
    return {
        "used": True,
        "note": ev.chi_square_note,
        "event_purity": assignment["event_purity"],
        "event_purity_all": assignment["event_purity_all"],
        "assignment": assignment,
        "assignment_tables": assignment_tables(
            ev.chi_square, ev.targets, ev.target_masks, spec, weights=w, num_jets=ev.num_jets
        ),
        "spanet_tables": spanet_tables(
            ev.chi_square, ev.targets, ev.target_masks, spec, ev.num_vectors, lines=lines,
        ),
    }


def json_ready(value: Any) -> Any:
    """Nested metrics with nan/inf replaced by None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
