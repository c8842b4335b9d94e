"""What ``spanet-inspect`` shows: the HDF5 tree, and a validation report as tables or JSON.

The tree printout keeps the format SPANet users know from the ttH guide (docs/formats.md section 2)::

    ============================================================
    | Structure for data/semi_leptonic_ttH/example.h5
    ============================================================
    |-CLASSIFICATIONS
    |---EVENT
    |-----signal :: int64 : (1000,)

Each level of nesting adds two dashes; a dataset line is ``name :: dtype : shape``. Names come
in the order h5py iterates them (alphabetical, unless the file tracks creation order).
"""

from __future__ import annotations

from typing import Any

import h5py

from spanet_lite.dataset.schema import ValidationReport, walk_tree

BANNER = "=" * 60


def structure_entries(file: h5py.File) -> list[dict[str, Any]]:
    """Every group and dataset in iteration order, links followed (:func:`walk_tree`): ``path``,
    ``depth`` (1 = top level), ``kind``, and for datasets ``dtype`` and ``shape`` (None for a
    dataset without one, HDF5's null dataspace)."""
    entries: list[dict[str, Any]] = []
    for item in walk_tree(file):
        entry: dict[str, Any] = {"path": item.path, "depth": item.depth, "kind": item.kind}
        if isinstance(item.node, h5py.Dataset):
            shape = item.node.shape
            entry.update(dtype=str(item.node.dtype), shape=None if shape is None else list(shape))
        entries.append(entry)
    return entries


def structure_lines(file: h5py.File, display_name: str) -> list[str]:
    """The tree printout, one string per line; ``display_name`` is the path as the user typed it."""
    lines = [BANNER, f"| Structure for {display_name}", BANNER]
    for entry in structure_entries(file):
        name = entry["path"].rsplit("/", 1)[-1]
        prefix = "|" + "-" * (2 * entry["depth"] - 1)
        if entry["kind"] == "dataset":
            shape = "no shape" if entry["shape"] is None else tuple(entry["shape"])
            lines.append(f"{prefix}{name} :: {entry['dtype']} : {shape}")
        elif entry["kind"] == "link":
            lines.append(f"{prefix}{name} :: (broken link)")
        elif entry["kind"] == "loop":
            lines.append(f"{prefix}{name} :: (link to an enclosing group, not followed)")
        else:
            lines.append(f"{prefix}{name}")
    return lines


def report_to_dict(report: ValidationReport) -> dict[str, Any]:
    """The validation report as plain JSON-able data."""
    return {
        "valid": report.ok,
        "num_events": report.num_events,
        "max_objects": dict(report.max_objects),
        "summary": report.summary,
        "problems": [{"level": p.level, "where": p.where, "message": p.message} for p in report.problems],
    }


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def render_report(report: ValidationReport, console: Any) -> None:
    """Print the summary and the problems as rich tables on ``console`` (a ``rich.console.Console``)."""
    from rich.markup import escape
    from rich.table import Table

    summary = report.summary
    console.print(f"[bold]{escape(str(report.source))}[/bold]: {report.num_events:,} events")

    inputs = Table(title="Inputs", title_justify="left")
    for column in ("input", "kind", "slots", "objects / event (mean)", "objects / event (max)"):
        inputs.add_column(column)
    for name, info in summary.get("inputs", {}).items():
        if info["kind"] != "GLOBAL":
            inputs.add_row(name, info["kind"], str(info["max_objects"]), f"{info['objects_mean']:.2f}",
                           str(info["objects_max"]))
        else:
            inputs.add_row(name, info["kind"], "-", "-", "-")
    console.print(inputs)

    if summary.get("particles"):
        particles = Table(title="Assignment targets (fraction of events)", title_justify="left")
        for column in ("particle", "fully matched", "partially matched", "not matched"):
            particles.add_column(column)
        for name, info in summary["particles"].items():
            fractions = (info[k] for k in ("fully_matched", "partially_matched", "not_matched"))
            particles.add_row(name, *(f"{value:.3f}" for value in fractions))
        console.print(particles)

    if summary.get("regressions"):
        regressions = Table(title="Regression targets", title_justify="left")
        for column in ("target", "count", "NaN fraction", "mean", "std"):
            regressions.add_column(column)
        for key, info in summary["regressions"].items():
            regressions.add_row(key, f"{info['count']:,}", f"{info['nan_fraction']:.3f}",
                                _number(info["mean"]), _number(info["std"]))
        console.print(regressions)

    if summary.get("classifications"):
        classes = Table(title="Classification targets", title_justify="left")
        for column in ("target", "class counts", "missing (-1)"):
            classes.add_column(column)
        for key, info in summary["classifications"].items():
            counts = ", ".join(f"{label}: {count:,}" for label, count in info["class_counts"].items())
            classes.add_row(key, counts or "-", f"{info['missing']:,}")
        console.print(classes)

    if report.problems:
        problems = Table(title="Problems", title_justify="left")
        for column in ("level", "where", "message"):
            problems.add_column(column, overflow="fold")
        for problem in report.problems:
            level = {"error": "[red]error[/red]", "warning": "[yellow]warning[/yellow]"}.get(
                problem.level, "[dim]info[/dim]")
            problems.add_row(level, escape(problem.where or "(file)"), escape(problem.message))
        console.print(problems)
    errors = len(report.errors)
    if errors:
        console.print(f"[red]{errors} error(s)[/red]: the file does not match the event file")
    else:
        console.print("[green]valid[/green]: the file matches the event file")
