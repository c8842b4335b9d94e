"""PNG plots for ``spanet-test --plots DIR`` (matplotlib; no display needed).

* ``roc_<target>.png``: background rejection 1/eps_B (log) against signal efficiency eps_S,
  the way the top-tagging literature draws it; a random classifier is the 1/eps_S line.
* ``regression_<target>.png``: residual histograms, network and (for neutrino targets) the
  analytic W-mass baseline on the same bins, in the target's unit where the file gives it
  (:mod:`~spanet_lite.evaluation.units`).
* ``purity_vs_jets.png``: event purity and per-particle efficiency against the number of
  jets (leptons excluded, :mod:`~spanet_lite.assignment.jets`), with binomial (weighted) error
  bars and the event count per bin.
* ``detection_calibration.png``: reliability diagram per particle (observed frequency of
  "reconstructable" against the predicted probability; the diagonal is perfect calibration).
* ``training_curves.png``: losses and validation metrics per epoch from the run's metrics.csv,
  epochs numbered from 1 as the console numbers them (metrics.csv keeps Lightning's 0-based
  ``epoch`` column).

Every function returns the path it wrote; :func:`write_all` returns all of them.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spanet_lite.assignment.metrics import match_outcome
from spanet_lite.evaluation import metrics as M
from spanet_lite.evaluation.units import axis_label, is_logarithm
from spanet_lite.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from spanet_lite.evaluation.evaluate import Evaluation

DPI = 120


def _figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **options: Any
) -> tuple[Figure, Any]:
    """A bare ``Figure`` and its axes, as ``pyplot.subplots`` gives them, without pyplot: the
    caller's backend stays as it was (a notebook's inline one) and the figure never joins
    pyplot's figures, so nothing shows up in the notebook or waits to be closed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **options)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path


def safe_name(key: str) -> str:
    """A regression/classification key as a file-name part: ``EVENT/neutrino_px`` -> ``EVENT_neutrino_px``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


def roc_plot(ev: Evaluation, key: str, path: Path, signal_class: int = 1) -> Path | None:
    """Background rejection against signal efficiency for classification ``key`` (class
    ``signal_class`` against the rest), with the rejection marked at 50% and 80% efficiency: the
    working points a tagger is quoted at. None when one of the classes is absent (no curve)."""
    probabilities = ev.predictions.classifications[key]
    labels = ev.classifications[key]
    keep = (labels >= 0) & (ev.weights > 0)
    if probabilities.shape[1] <= signal_class or not keep.any():
        return None
    tpr, fpr = M.roc_curve(probabilities[keep, signal_class], labels[keep] == signal_class, ev.weights[keep])
    if np.isnan(tpr).any() or np.isnan(fpr).any():
        return None  # one of the classes is absent: no curve to draw
    auc = M.roc_auc(tpr, fpr)
    fig, ax = _figure(figsize=(6, 4.5))
    useful = (fpr > 0) & (tpr > 0)
    ax.plot(tpr[useful], 1.0 / fpr[useful], label=f"network (AUC = {auc:.3f})", color="C0", lw=2)
    eff = np.linspace(0.01, 1.0, 200)
    ax.plot(eff, 1.0 / eff, ls="--", color="grey", label="random")
    for target in (0.5, 0.8):
        rejection = M.background_rejection(tpr, fpr, target)
        if math.isfinite(rejection):
            ax.plot([target], [rejection], "o", color="C1")
            ax.annotate(f"{rejection:.1f}", (target, rejection), textcoords="offset points", xytext=(5, 5))
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=1)
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    ax.set_title(f"ROC: {key} (class {signal_class} vs rest)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def regression_plot(ev: Evaluation, key: str, path: Path) -> Path | None:
    """Residual histograms (prediction - truth) of regression ``key``, the analytic neutrino
    baseline on the same bins where it applies, so bias and width compare at a glance; the
    central 98% is drawn so a few outliers do not flatten the peak. None without finite values."""
    truth = ev.regressions[key].astype(np.float64)
    series = {"network": ev.predictions.regressions[key].astype(np.float64)}
    if key in ev.baseline:
        series["analytic W-mass solution"] = ev.baseline[key].astype(np.float64)
    residuals = {}
    for name, values in series.items():
        keep = np.isfinite(values) & np.isfinite(truth) & (ev.weights > 0)
        stats = M.regression_metrics(values[keep], truth[keep], weights=ev.weights[keep],
                                     logarithm=is_logarithm(key, ev.units.get(key)))
        residuals[name] = (values[keep] - truth[keep], ev.weights[keep], stats)
    pooled = np.concatenate([r for r, _, _ in residuals.values()])
    if pooled.size == 0:
        return None
    low, high = np.percentile(pooled, [1, 99])
    if not high > low:
        low, high = low - 1.0, high + 1.0
    bins = np.linspace(low, high, 61)
    fig, ax = _figure(figsize=(6.5, 4.5))
    for (name, (residual, weight, stats)), color in zip(residuals.items(), ("C0", "C3")):
        label = (f"{name}\nRMS {stats['rms']:.3g}, 68% width {stats['width68']:.3g}, "
                 f"within 10%: {stats['within10']:.0%}")
        ax.hist(residual, bins=bins, weights=weight, histtype="step", lw=2, color=color, label=label)
    ax.axvline(0.0, color="grey", lw=1)
    ax.set_xlabel(axis_label("prediction − truth", ev.units.get(key)) + " (central 98% shown)")
    ax.set_ylabel("weighted events")
    ax.set_title(f"Residuals: {key}")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
    return _save(fig, path)


def _binomial(passed: np.ndarray, selected: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    w = weights[selected]
    total = w.sum()
    if total <= 0:
        return math.nan, math.nan
    p = float(w[passed[selected]].sum() / total)
    effective = total**2 / np.sum(w**2)  # Kish effective sample size for weighted events
    return p, math.sqrt(max(p * (1 - p), 0.0) / effective)


def purity_vs_jets_plot(ev: Evaluation, spec, path: Path, min_events: int = 10) -> Path | None:
    """Event purity and per-particle efficiency by number of jets, with binomial errors and the
    event count below: assignment gets harder with more jets, and a single number hides that.
    Multiplicities with fewer than ``min_events`` full events are left out (error bars would be
    meaningless); None when none is left."""
    predicted = ev.predictions.assignments
    outcome = match_outcome(predicted, ev.targets, ev.target_masks, spec, weights=ev.weights)
    full = outcome.reconstructable.all(axis=1)
    right = (outcome.correct | ~outcome.reconstructable).all(axis=1)
    jets = [int(n) for n in np.unique(ev.num_jets) if np.sum((ev.num_jets == n) & full) >= min_events]
    if not jets:
        return None
    fig, (ax, bottom) = _figure(2, 1, figsize=(6.5, 5.5), sharex=True, height_ratios=(3, 1))
    curves = [("event purity", right, full, "k", "o")]
    for j, name in enumerate(outcome.particles):
        correct, recon = outcome.correct[:, j], outcome.reconstructable[:, j]
        curves.append((f"{name} efficiency", correct, recon, f"C{j}", "s"))
    for offset, (label, passed, base, color, marker) in enumerate(curves):
        values = [_binomial(passed, (ev.num_jets == n) & base, ev.weights) for n in jets]
        shift = 0.08 * (offset - (len(curves) - 1) / 2)
        # Unclipped markers: a fraction of 0 (no event right, common early in training) lies on the
        # frame's bottom edge and had its marker cut in half.
        ax.errorbar(np.array(jets) + shift, [v for v, _ in values], yerr=[e for _, e in values], label=label,
                    color=color, marker=marker, ls="-" if offset == 0 else ":", capsize=2, clip_on=False)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction correct")
    ax.set_title("Assignment quality vs jet multiplicity")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    counts = [int(np.sum((ev.num_jets == n) & full)) for n in jets]
    bottom.bar(jets, counts, color="grey", width=0.6)
    bottom.set_ylabel("full events")
    bottom.set_xlabel("number of jets")
    bottom.set_xticks(jets)
    return _save(fig, path)


def calibration_plot(ev: Evaluation, spec, path: Path) -> Path | None:
    """Reliability diagram on top, the distribution of detection probabilities below."""
    if not spec.particles:
        return None
    fig, (ax, bottom) = _figure(2, 1, figsize=(5.5, 6.5), sharex=True, height_ratios=(3, 1))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    edges = np.linspace(0.0, 1.0, 41)
    truth = M.detection_truth(ev.predictions.assignments, ev.targets, ev.target_masks, spec)
    for j, name in enumerate(spec.particle_names):
        probabilities = ev.predictions.detection_probabilities[name].astype(np.float64)
        present = truth[name].astype(np.float64)
        bins = M.calibration_bins(probabilities, present, ev.weights)
        # Bins with under 0.5% of the events only add noise to the picture (they still count in the ECE).
        filled = bins["weight"] > 0.005 * bins["weight"].sum()
        ece = M.detection_metrics(probabilities, present, weights=ev.weights)["ece"]
        # Unclipped: both coordinates lie in [0, 1], the frame, and a bin observed at 1 (every event
        # reconstructable, common for a leptonic top) had its marker cut in half by the frame.
        ax.plot(bins["predicted"][filled], bins["observed"][filled], marker="o", color=f"C{j}",
                label=f"{name} (calibration error {ece:.3f})", clip_on=False)
        bottom.hist(probabilities, bins=edges, weights=ev.weights, histtype="step", lw=1.5, color=f"C{j}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed fraction reconstructable")
    ax.set_title("Detection calibration")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    bottom.set_xlabel("predicted detection probability")
    bottom.set_ylabel("events")
    bottom.grid(True, alpha=0.3)
    return _save(fig, path)


def read_metrics_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a metrics.csv as float arrays (empty cells -> nan); none for a file that is not
    CSV text (another encoding, a field beyond the csv module's limit), so that the training
    curves are left out, as for a file without an ``epoch`` column, instead of a traceback after
    the whole evaluation has run."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error):
        return {}
    columns: dict[str, np.ndarray] = {}
    for name in rows[0] if rows else []:
        values = []
        for row in rows:
            try:
                values.append(float(row[name]) if row[name] not in ("", None) else math.nan)
            except ValueError:
                values.append(math.nan)
        columns[name] = np.array(values)
    return columns


def training_curves_plot(metrics_csv: Path, path: Path) -> Path | None:
    """Loss terms per epoch (train solid, validation dashed, one colour per term; totals bold)
    and the validation fractions (purities, accuracies, efficiencies)."""
    from matplotlib.ticker import MaxNLocator

    if not metrics_csv.is_file():
        return None
    columns = read_metrics_csv(metrics_csv)
    if "epoch" not in columns:
        return None
    epoch = columns["epoch"] + 1  # the console's numbering: the first epoch is epoch 1
    # Only top-level terms (``train/assignment_loss``, not ``train/assignment_loss/t1``), and
    # never a column that stays at zero (e.g. a KL term switched off).
    top = [c for c in columns if c.count("/") == 1 and np.isfinite(columns[c]).any()]
    losses = [c for c in top if c.endswith("loss") and np.nanmax(np.abs(columns[c])) > 0]
    terms = sorted({c.split("/", 1)[1] for c in losses}, key=lambda t: (t != "total_loss", t))
    # val/regression_error is a mean |prediction - truth| in training standard deviations, not a
    # fraction: it gets its own axis (it used to share "fraction" when it happened to stay <= 1).
    errors = [c for c in top if c == "val/regression_error"]
    fractions = [c for c in top if c.startswith("val/") and "loss" not in c and c not in errors
                 and np.nanmax(np.abs(columns[c])) <= 1.0]
    if not terms and not fractions and not errors:
        return None
    fig, (left, right) = _figure(1, 2, figsize=(12, 4.5))
    for i, term in enumerate(terms):
        total = term == "total_loss"
        for stage, style in (("train", "-"), ("val", "--")):
            name = f"{stage}/{term}"
            if name not in columns:
                continue
            keep = np.isfinite(columns[name])
            # Every term gets a marker: a line through one epoch (a 1-epoch run) draws nothing.
            left.plot(epoch[keep], columns[name][keep], ls=style, color="k" if total else f"C{i}",
                      lw=2.5 if total else 1.2, marker="o" if total else ".",
                      label=term.removesuffix("_loss") if stage == "train" else None)
    left.set_yscale("log" if terms and _spans_decades(columns, terms) else "linear")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("Losses (train solid, validation dashed)")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for i, name in enumerate(fractions[:8]):
        keep = np.isfinite(columns[name])
        label = name.removeprefix("val/")
        right.plot(epoch[keep], columns[name][keep], marker="o", color=f"C{i}", label=label)
    handles = list(right.get_lines())
    if errors:
        error_axis = right.twinx()
        for name in errors:
            keep = np.isfinite(columns[name])
            handles += error_axis.plot(epoch[keep], columns[name][keep], marker="s", ls="--", color="C7",
                                       label="regression_error (right axis)")
        error_axis.set_ylabel("regression error [training std. dev.]",
                              fontsize=8)
        # From 0 with 10% headroom: set_ylim(bottom=0) alone kept autoscale's top at the largest
        # error plus 5% of the errors' own spread, so a flat curve ran along the frame, markers cut.
        highest = max(float(np.nanmax(columns[name])) for name in errors)
        error_axis.set_ylim(0, 1.1 * highest if highest > 0 else 1.0)
    right.set_xlabel("epoch")
    right.set_ylabel("fraction")
    right.set_ylim(0, 1.02)
    right.set_title("Validation metrics")
    right.grid(True, alpha=0.3)
    if handles:
        right.legend(handles=handles, fontsize=8, loc="center left",
                     bbox_to_anchor=(1.16 if errors else 1.0, 0.5))
    epochs = np.unique(epoch[np.isfinite(epoch)])
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs.size == 1:  # autoscale spanned +-5% of one epoch: ticks 0.945 ... 1.050, none at 1
            axis.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    return _save(fig, path)


def _spans_decades(columns: dict[str, np.ndarray], terms: list[str]) -> bool:
    """Use a log axis when the loss terms differ by more than a factor 30."""
    values = np.concatenate([columns[f"{stage}/{t}"] for t in terms for stage in ("train", "val")
                             if f"{stage}/{t}" in columns])
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 0 and values.max() / values.min() > 30


def write_all(ev: Evaluation, spec, run_dir: Path, directory: Path) -> list[Path]:
    """Every plot that applies; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path | None] = []
    for target in spec.classifications:
        written.append(roc_plot(ev, target.key, directory / f"roc_{safe_name(target.key)}.png"))
    for target in spec.regressions:
        written.append(regression_plot(ev, target.key, directory / f"regression_{safe_name(target.key)}.png"))
    if spec.particles:
        written.append(purity_vs_jets_plot(ev, spec, directory / "purity_vs_jets.png"))
        written.append(calibration_plot(ev, spec, directory / "detection_calibration.png"))
    written.append(training_curves_plot(run_dir / "metrics.csv", directory / "training_curves.png"))
    return [p for p in written if p is not None]
