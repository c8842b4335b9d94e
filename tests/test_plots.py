"""spanet-test --plots: every figure is written, is a real PNG, and has something drawn on it."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from _evaluation_helpers import make_run_dir
from matplotlib.image import imread

from spanet_lite.cli import test as test_cli
from spanet_lite.errors import SpanetWarning
from spanet_lite.evaluation import plots
from spanet_lite.evaluation.run import load_run
from spanet_lite.evaluation.units import axis_label, regression_units

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
    expected = {"accuracy", "roc_auc", "rejection@50", "rejection@80", "num_classes", "confusion"}
    assert set(metrics["classification"]["EVENT/signal"]) == expected



def test_jet_rows_count_jets_not_the_lepton(plotted):
    """ttH needs 6 jets; the lepton shares the Momenta input but is not a jet (etag/utag)."""
    _, metrics = plotted
    rows = metrics["assignment_tables"]["by_jets"]
    assert list(rows) == ["==6", "==7", ">=8", "all"]
    assert rows["==6"]["proportion"] > 0.2
    assert metrics["jet_count_rule"].startswith("jets counted: Momenta: objects without a lepton tag")

def test_spanet_reference_momenta_are_matched_in_units_of_100_gev(tmp_path, reference_dir):
    """SPANet's example stores the neutrino targets in 100 GeV: the baseline is scaled to them."""
    event_yaml = (reference_dir / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(tmp_path / "run", event_yaml, reference_dir / "example.h5")
    metrics = load_run(run_dir).evaluate(reference_dir / "example.h5")
    assert metrics["baseline"]["unit_divisor"] == 100.0
    assert metrics["regression"]["EVENT/neutrino_px"]["baseline"]["rms"] < 0.5


def test_units_come_from_the_generator_and_stay_unknown_for_spanet_files(plotted, tmp_path):
    _, metrics = plotted
    assert metrics["regression_units"] == {
        "EVENT/neutrino_eta": "", "EVENT/neutrino_px": "GeV", "EVENT/neutrino_py": "GeV",
        "EVENT/neutrino_pz": "GeV", "EVENT/log_invariant_mass": "ln(m / GeV)",
    }
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as file:
        file["REGRESSIONS/EVENT/neutrino_px"] = np.zeros(3, np.float32)
        file["REGRESSIONS/EVENT/mass"] = np.zeros(3, np.float32)
        file["REGRESSIONS/EVENT/mass"].attrs["units"] = "TeV"
    with h5py.File(plain, "r") as file:
        units = regression_units(file, ["EVENT/neutrino_px", "EVENT/mass"])
    assert units == {"EVENT/neutrino_px": None, "EVENT/mass": "TeV"}
    assert [axis_label("residual", u) for u in ("GeV", "", None)] == [
        "residual [GeV]", "residual", "residual (file units)"]


def curve_axes(tmp_path, monkeypatch, csv_text: str) -> list:
    """The axes of ``training_curves.png`` drawn from a metrics.csv holding ``csv_text``."""
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    csv_file = tmp_path / "metrics.csv"
    csv_file.write_text(csv_text)
    plots.training_curves_plot(csv_file, tmp_path / "curves.png")
    return drawn[0].axes


def test_training_curves_number_epochs_from_one_like_the_console(tmp_path, monkeypatch):
    text = "epoch,train/total_loss,val/total_loss,val/event_purity\n0,3,3,0.1\n1,2,2,0.3\n"
    losses, fractions = curve_axes(tmp_path, monkeypatch, text)
    assert all(list(line.get_xdata()) == [1, 2] for line in [*losses.lines, *fractions.lines])


def test_training_curves_of_a_one_epoch_run_show_every_term_at_epoch_1(tmp_path, monkeypatch):
    """After one epoch every loss term is a single point: drawn as a line without a marker it was
    invisible (only the total showed), and the epoch axis read 0.945 ... 1.050 with no tick at 1."""
    text = ("epoch,train/total_loss,val/total_loss,train/assignment_loss,val/assignment_loss,"
            "val/event_purity\n0,3,3,2,2,0.1\n")
    losses, fractions = curve_axes(tmp_path, monkeypatch, text)
    assert len(losses.lines) == 4
    assert all(line.get_marker() not in (None, "", " ", "None") for line in losses.lines)
    for axis in (losses, fractions):
        low, high = axis.get_xlim()
        assert [t for t in axis.get_xticks() if low <= t <= high] == [1]


def test_training_curves_keep_the_regression_error_off_the_fraction_axis(tmp_path, monkeypatch):
    """val/regression_error is in training standard deviations, not a fraction: it was drawn on the
    'fraction' axis while it stayed <= 1 and left out of the plot when it went above."""
    text = ("epoch,train/total_loss,val/total_loss,val/event_purity,val/regression_error\n"
            "0,3,3,0.1,1.4\n1,2,2,0.3,0.9\n")
    _losses, fractions, errors = curve_axes(tmp_path, monkeypatch, text)
    assert [line.get_label() for line in fractions.lines] == ["event_purity"]
    assert [list(line.get_ydata()) for line in errors.lines] == [[1.4, 0.9]]
    assert "std. dev." in errors.get_ylabel() and fractions.get_ylabel() == "fraction"
    # The largest error sits below the frame with room for its marker (it ran along the top edge).
    assert errors.get_ylim()[0] == 0 and errors.get_ylim()[1] >= 1.1 * 1.4


def test_plots_leave_the_callers_matplotlib_backend_and_figures_alone(tmp_path):
    """A notebook draws inline: evaluate_file(plots=...) switched the whole process to Agg, so the
    notebook's own figures stopped showing after it. The plots are drawn on bare Figures now."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")  # a backend of the caller's, as a notebook's inline one
    try:
        csv_file = tmp_path / "metrics.csv"
        csv_file.write_text("epoch,train/total_loss,val/total_loss,val/event_purity\n0,3,3,0.1\n1,2,2,0.3\n")
        written = plots.training_curves_plot(csv_file, tmp_path / "curves.png")
        assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == []
    finally:
        plt.switch_backend(before)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\n", b'epoch,x\n0,"' + b"a" * 200_000 + b'"\n'])
def test_training_curves_skip_a_metrics_csv_that_is_not_csv_text(tmp_path, content):
    """A metrics.csv in another encoding, or with a field beyond the csv module's limit, raised a
    UnicodeDecodeError or csv.Error traceback after the whole evaluation; it is left out now, as a
    metrics.csv without an epoch column is."""
    csv_file = tmp_path / "metrics.csv"
    csv_file.write_bytes(content)
    assert plots.read_metrics_csv(csv_file) == {}
    assert plots.training_curves_plot(csv_file, tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()


def test_labels_beyond_the_trained_classes_are_left_out_with_a_warning(tmp_path, generated_tth):
    """A test file with a third class (label 2) for a network trained on 0/1 had those events
    dropped from accuracy and ROC without a word; now one warning line says how many."""
    event_yaml = (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(tmp_path / "run", event_yaml, generated_tth / "example.h5")
    test_file = tmp_path / "three_classes.h5"
    test_file.write_bytes((generated_tth / "example.h5").read_bytes())
    with h5py.File(test_file, "a") as file:
        labels = file["CLASSIFICATIONS/EVENT/signal"]
        values = labels[...]
        values[:7] = 2
        labels[...] = values
        total = len(values)
    with pytest.warns(SpanetWarning, match=rf"CLASSIFICATIONS/EVENT/signal: 7 of {total} events have a class "
                      r"label >= 2"):
        load_run(run_dir).evaluate(test_file)


def test_calibration_and_purity_points_on_the_frame_are_not_cut(tmp_path, generated_tth, monkeypatch):
    """A probability bin observed at 1 (every event reconstructable) lies on the frame's top edge;
    clipped to the axes, its marker was cut in half."""
    from spanet_lite.evaluation.evaluate import evaluate_file

    event_yaml = (generated_tth / "semi_leptonic_ttH.yaml").read_text()
    run_dir = make_run_dir(tmp_path / "run", event_yaml, generated_tth / "example.h5")
    evaluation = evaluate_file(load_run(run_dir), generated_tth / "example.h5")
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plots.calibration_plot(evaluation, load_run(run_dir).spec, tmp_path / "calibration.png")
    points = [line for line in drawn[0].axes[0].lines if line.get_marker() == "o"]
    assert points and not any(line.get_clip_on() for line in points)
    # The same for purity_vs_jets.png, whose fractions of 0 lie on the bottom edge.
    plots.purity_vs_jets_plot(evaluation, load_run(run_dir).spec, tmp_path / "purity.png")
    points = [line for line in drawn[1].axes[0].lines if line.get_marker() in ("o", "s")]
    assert points and not any(line.get_clip_on() for line in points)
