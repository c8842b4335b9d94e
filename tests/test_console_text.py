"""Text a user gave us (paths, names, messages about their files) is printed as written: rich reads
``[word]`` as markup and would drop it, so such text is escaped or printed without markup."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from spanet_lite.cli import generate as generate_cli
from spanet_lite.cli import inspect as inspect_cli
from spanet_lite.config.options import Options
from spanet_lite.config.options_table import options_table
from spanet_lite.evaluation.report import render
from spanet_lite.training.fit import RunResult
from spanet_lite.training.progress import summary_table


def shown(*renderables: object) -> str:
    """What the console shows, with runs of spaces (table padding, wrapped titles) as one."""
    console = Console(record=True, width=300)
    for renderable in renderables:
        console.print(renderable)
    return " ".join(console.export_text().split())


def test_the_test_report_keeps_the_file_name_the_units_and_the_unit_placeholder() -> None:
    console = Console(record=True, width=300)
    row = {"bias": 0.01, "rms": 0.2, "width68": 0.15, "within10": 0.5, "count": 10}
    metrics = {"file": "data[abc].h5", "num_events": 10, "sum_of_weights": 10.0, "run": "runs/x[v2]",
               "regression": {"t1/phi": {"network": row}}, "regression_units": {"t1/phi": "rad"}}
    render(metrics, console)
    text = " ".join(console.export_text().split())
    assert "data[abc].h5: 10 events" in text and "run runs/x[v2]" in text
    assert "in the target's unit: [unit] where the file gives one" in text
    assert "│ t1/phi [rad] │ network │" in text  # a lower-case unit was dropped as a markup tag


def test_the_options_table_shows_a_path_with_brackets_as_written() -> None:
    assert "files[v2]/train.h5" in shown(options_table(Options(training_file="files[v2]/train.h5")))


def test_the_end_of_run_table_shows_the_run_directory_as_written() -> None:
    run = Path("logs[v2]/ttbar/version_0")
    result = RunResult(run, run / "checkpoints/best.ckpt", run / "checkpoints/last.ckpt", "val/event_purity",
                       0.5, 0, 1, stopped="interrupted")
    text = shown(summary_table(result))
    assert f"run directory │ {run} │" in text and f"spanet-train --resume {run} │" in text
    assert f"{run}/checkpoints/best.ckpt (epoch 1)" in text


def test_inspect_names_a_file_with_brackets_as_written(tmp_path: Path, capsys) -> None:
    data, event_file = tmp_path / "events[abc].h5", tmp_path / "ttbar[abc].yaml"
    argv = ["ttbar_allhad", "--events", "200", "--seed", "1", "--output", str(data), "--quiet"]
    assert generate_cli.main([*argv, "--event-file-output", str(event_file)]) == 0
    capsys.readouterr()
    assert inspect_cli.main([str(data), "--event-file", str(event_file)]) == 0
    out = capsys.readouterr().out
    assert f"Structure for {data}" in out and out.count("[abc]") >= 2


def test_the_test_report_keeps_every_number_whole_on_an_80_column_console() -> None:
    """A pipe or a log file is an 80-column console; rich cut the ttH report's cells to '-0…'."""
    console = Console(record=True, width=80)
    row = {"bias": -0.029, "rms": 103.087, "width68": 82.947, "within10": 0.115, "count": 3000}
    keys = ("EVENT/neutrino_pz", "EVENT/log_invariant_mass")
    metrics = {"file": "test.h5", "num_events": 3000, "sum_of_weights": 3000.0, "run": "runs/x",
               "regression": {key: {"network": row, "baseline": row} for key in keys},
               "regression_units": {"EVENT/neutrino_pz": "GeV", "EVENT/log_invariant_mass": "ln(m / GeV)"}}
    render(metrics, console)
    text = console.export_text()
    assert "…" not in text
    assert text.count("│ -0.029 │ 103.087 │ 82.947 │  11.5% │  3,000 │") == 4
