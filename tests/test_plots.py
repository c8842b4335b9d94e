"""spanet-test --plots: every figure is written, is a real PNG, and has something drawn on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _evaluation_helpers import make_run_dir
from matplotlib.image import imread

from spanet_lite.cli import test as test_cli
from spanet_lite.evaluation.run import load_run

EXPECTED = [
    "roc_EVENT_signal.png",
    "regression_EVENT_neutrino_eta.png",
    "regression_EVENT_neutrino_px.png",
    "regression_EVENT_neutrino_py.png",
    "regression_EVENT_neutrino_pz.png",
    "regression_EVENT_log_invariant_mass.png",
    "purity_vs_jets.png",
    "detection_calibration.png",
    "training_curves.png",
]


@pytest.fixture(scope="module")
def plotted(tmp_path_factory, generated_tth):
    folder = tmp_path_factory.mktemp("plots")
    event_yaml = (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(folder / "run", event_yaml, generated_tth / "example.h5")
    plots = folder / "plots"
    report = folder / "metrics.json"
    code = test_cli.main(
        [str(run_dir), "-tf", str(generated_tth / "example.h5"), "--plots", str(plots), "--json", str(report)]
    )
    assert code == 0
    return plots, json.loads(report.read_text())


def test_every_plot_is_written(plotted):
    plots, _ = plotted
    assert sorted(p.name for p in plots.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_plots_are_non_empty_pngs(plotted, name):
    plots, _ = plotted
    path = plots / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    height, width = image.shape[:2]
    assert width >= 500 and height >= 400
    # Something is drawn: a blank figure is white, a real one has ink and anti-aliased greys.
    gray = (image[..., :3].mean(axis=-1) * 255).astype(np.uint8)
    assert (gray < 200).mean() > 0.01
    assert np.unique(gray).size > 20


def test_neutrino_baseline_is_reported_beside_the_network(plotted):
    _, metrics = plotted
    assert metrics["baseline"]["used"] is True
    assert metrics["baseline"]["unit_divisor"] == 1.0  # the generator writes GeV, like its inputs
    px = metrics["regression"]["EVENT/neutrino_px"]
    assert set(px) == {"network", "baseline"}
    # The W-mass solution takes px from MET: a few-tens-of-GeV resolution.
    assert px["baseline"]["rms"] < 50.0
    assert "baseline" not in metrics["regression"]["EVENT/log_invariant_mass"]
    expected = {"accuracy", "roc_auc", "rejection@50", "rejection@80"}
    assert set(metrics["classification"]["EVENT/signal"]) == expected


def test_spanet_reference_momenta_are_matched_in_units_of_100_gev(tmp_path, reference_dir):
    """SPANet's example stores the neutrino targets in 100 GeV: the baseline is scaled to them."""
    event_yaml = (reference_dir / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(tmp_path / "run", event_yaml, reference_dir / "example.h5")
    metrics = load_run(run_dir).evaluate(reference_dir / "example.h5")
    assert metrics["baseline"]["unit_divisor"] == 100.0
    assert metrics["regression"]["EVENT/neutrino_px"]["baseline"]["rms"] < 0.5
