"""Rich tables of a ``spanet-test`` result (the nested dict of :mod:`~spanet_lite.evaluation.evaluate`)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers for a table: nan as a dash, inf as the symbol, fractions with ``digits`` decimals."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def percent(value: Any) -> str:
    """A fraction as ``12.3%`` for the tables; a dash where it is undefined (None or NaN, e.g.
    no event in that row), so an empty cell never reads as 0%."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}%"


def render(metrics: dict[str, Any], console: Console | None = None, *, latex: bool = False) -> None:
    """Print every table that applies to this run's topology; SPANet's tables first (as LaTeX
    with ``latex``, like ``spanet.test --latex``)."""
    console = console or Console()
    if "spanet_tables" in metrics:
        if latex:
            latex_text = spanet_latex(metrics["spanet_tables"])
            console.print(latex_text, highlight=False, markup=False, soft_wrap=True)
        else:
            _spanet_tables(metrics["spanet_tables"], console)
            chi = metrics.get("baseline", {}).get("chi_square", {})
            if chi.get("used") and chi.get("spanet_tables"):
                console.print("The same tables for the chi-square baseline (masses: see below):")
                _spanet_tables(chi["spanet_tables"], console)
    console.print(
        f"[bold]{escape(str(metrics['file']))}[/]: {metrics['num_events']:,} events "
        f"(sum of weights {metrics['sum_of_weights']:,.1f}), run {escape(str(metrics['run']))}"
    )
    if "assignment" in metrics:
        _assignment(metrics, console)
    if "regression" in metrics:
        _regression(metrics, console)
    if "classification" in metrics:
        _classification(metrics, console)


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` with every word of every cell whole. Rich fits a wide table to the console
    by cutting cells to ``…`` (``-0.029`` as ``-0…``), and a pipe or a log file is an 80-column
    console: there the ttH report lost nearly every number. A table wider than the console gets
    each column at the width of its longest word (headers and labels wrap between words; a
    ``no_wrap`` column at its longest cell), and one still wider is printed wider than the
    console rather than cut."""
    if table.__rich_measure__(console, console.options).maximum <= console.width:
        console.print(table)
        return
    for column in table.columns:
        cells = [Text.from_markup(c).plain if isinstance(c, str) else ""
                 for c in (column.header, *column.cells)]
        pieces = cells if column.no_wrap else [word for cell in cells for word in cell.split()]
        column.width = max([1, *map(len, pieces)])
    needed = table.__rich_measure__(console, console.options).maximum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(table, crop=False)
    finally:
        console.width = width


def spanet_number(value: Any) -> str:
    """SPANet's cell format: three decimals, N/A for nan, text as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, str):
        return value
    return f"{value:.3f}"


def spanet_text(tables: dict[str, list[dict[str, Any]]]) -> str:
    """SPANet's tables as plain fixed-width text (one per event type), never wrapped, so that
    columns can be read and compared with ``spanet.test``'s output line by line."""
    blocks = []
    for event_type, rows in tables.items():
        columns = list(rows[0])
        cells = [[spanet_number(row[c]) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        rule = "+".join("-" * (w + 2) for w in widths)
        lines = [f"Event Type: {event_type}", rule, "|".join(f" {c:<{w}} " for c, w in zip(columns, widths))]
        lines.append(rule)
        lines += ["|".join(f" {v:>{w}} " for v, w in zip(r, widths)) for r in cells]
        lines.append(rule)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _spanet_tables(tables: dict[str, list[dict[str, Any]]], console: Console) -> None:
    console.print(spanet_text(tables), highlight=False, markup=False, soft_wrap=True)
    console.print()


def spanet_latex(tables: dict[str, list[dict[str, Any]]]) -> str:
    """SPANet's tables as one LaTeX tabular, event types without a ``0`` (as ``spanet.test -tex``)."""
    shown = {k: v for k, v in tables.items() if "0" not in k}
    if not shown:
        return ""
    columns = list(next(iter(shown.values()))[0])
    cluster_columns = columns[4:]
    lines = [
        r"\begin{tabular}{c | c | c c | c " + " ".join("c" * len(cluster_columns)) + "}",
        r"\hline",
        r"\hline",
        r"& $N_\mathrm{jets}$ & Event Proportion & Jet Proportion & Event Purity & "
        + " & ".join(cluster_columns) + r"\\",
    ]
    for event_type, rows in shown.items():
        lines.append(r"\hline")
        for number, row in enumerate(rows):
            limit = row["Jet Limit"].replace(">=", r"$\geq$").replace("==", "$=$")
            cells = [limit, *[spanet_number(row[c]) for c in columns[1:]]]
            name = event_type
            if number == len(rows) - 1:
                cells = [r"\textbf{" + c + "}" for c in cells]
                name = r"\textbf{" + name + "}"
            lines.append((name if number == 0 else "") + "&" + " & ".join(cells) + r"\\")
        lines.append(r"\hline")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


def _assignment(metrics: dict[str, Any], console: Console) -> None:
    a = metrics["assignment"]
    particles = [k.split("/", 1)[1] for k in a if k.startswith("particle_efficiency/")]
    console.print(
        f"[bold]Event purity {percent(metrics['event_purity'])}[/] (events with every particle "
        f"reconstructable: {percent(a['event_fraction/full'])}); "
        f"over events with any reconstructable particle {percent(metrics['event_purity_all'])} "
        f"(partial {percent(a['event_fraction/partial'])}, none {percent(a['event_fraction/none'])})"
    )
    chi = _chi_square(metrics, console)
    tables = metrics["assignment_tables"]
    for title, key, label in (
        ("Purity by number of jets", "by_jets", "jets"),
        ("Purity by number of reconstructable particles", "by_particles", "particles"),
    ):
        rows = tables[key]
        chi_rows = chi["assignment_tables"][key] if chi else {}
        table = Table(title=title, title_justify="left")
        table.add_column(label, justify="right")
        table.add_column("events", justify="right")
        table.add_column("event purity", justify="right")
        if chi:
            table.add_column("χ² event purity", justify="right")
        for p in particles:
            table.add_column(f"{p} efficiency", justify="right")
            if chi:
                table.add_column(f"{p} χ²", justify="right")
        # In the particle-count table the event purity is over that row's reconstructable particles.
        event_key = "event_purity_all" if label == "particles" else "event_purity"
        for row, values in rows.items():
            other = chi_rows.get(row, {})
            cells = [percent(values[event_key])] + ([percent(other.get(event_key))] if chi else [])
            for p in particles:
                cells.append(percent(values[f"particle_efficiency/{p}"]))
                if chi:
                    cells.append(percent(other.get(f"particle_efficiency/{p}")))
            table.add_row(row, percent(values["proportion"]), *cells)
        print_table(console, table)
        if label == "jets" and "jet_count_rule" in metrics:
            console.print(f"[dim]{escape(metrics['jet_count_rule'])}[/]")
    gated = metrics["with_detection"]
    table = Table(title="Particles", title_justify="left")
    cut = f"{gated['threshold']:g}"
    columns = ("particle", "eff.", "purity", f"eff. det≥{cut}", f"purity det≥{cut}", "det. acc.", "det. ECE")
    for column in columns:
        table.add_column(column, justify="right")
    for p in particles:
        det = metrics["detection"][p]
        table.add_row(
            p, percent(a[f"particle_efficiency/{p}"]), percent(a[f"particle_purity/{p}"]),
            percent(gated[f"particle_efficiency/{p}"]), percent(gated[f"particle_purity/{p}"]),
            percent(det["accuracy"]), fmt(det["ece"]),
        )
    print_table(console, table)


def _chi_square(metrics: dict[str, Any], console: Console) -> dict[str, Any] | None:
    """Print the chi-square baseline's headline; return its numbers when it ran."""
    chi = metrics.get("baseline", {}).get("chi_square")
    if not chi:
        return None
    if not chi["used"]:
        console.print(f"[dim]{escape(chi['note'])}[/]")
        return None
    console.print(
        f"χ² baseline event purity {percent(chi['event_purity'])} "
        f"(over events with any reconstructable particle {percent(chi['event_purity_all'])}); "
        f"[dim]{escape(chi['note'])}[/]"
    )
    return chi


def _regression(metrics: dict[str, Any], console: Console) -> None:
    units = metrics.get("regression_units", {})
    table = Table(title="Regressions (residual = prediction - truth, in the target's unit: \\[unit] where "
                  "the file gives one, else file units)", title_justify="left")
    table.add_column("target")
    table.add_column("", no_wrap=True)
    for column in ("bias", "RMS", "68% width", "within 10%", "events"):
        table.add_column(column, justify="right")
    for key, entry in metrics["regression"].items():
        for source in ("network", "baseline"):
            if source not in entry:
                continue
            r = entry[source]
            unit = f" [{units[key]}]" if units.get(key) else ""
            name = escape(key.removeprefix("EVENT/") + unit) if source == "network" else ""
            label = "network" if source == "network" else "analytic ν"
            table.add_row(
                name, label, fmt(r["bias"]), fmt(r["rms"]), fmt(r["width68"]), percent(r["within10"]),
                f"{int(r['count']):,}",
            )
    print_table(console, table)
    baseline = metrics.get("baseline")
    if baseline:
        note = baseline["note"]
        if baseline["used"] and baseline["unit_divisor"] != 1.0:
            note += f"; momenta divided by {baseline['unit_divisor']:g} to match the targets' units"
        console.print(f"[dim]{escape(note)}[/]")


def _classification(metrics: dict[str, Any], console: Console) -> None:
    binary = {k: c for k, c in metrics["classification"].items() if c.get("num_classes", 2) <= 2}
    if binary:
        table = Table(title="Classifications, two classes (signal = class 1)", title_justify="left")
        for column in ("target", "accuracy", "ROC AUC", "1/εB @ εS=50%", "1/εB @ εS=80%"):
            table.add_column(column, justify="right")
        for key, c in binary.items():
            table.add_row(
                key.removeprefix("EVENT/"), percent(c["accuracy"]), fmt(c["roc_auc"]),
                fmt(c["rejection@50"], 1), fmt(c["rejection@80"], 1),
            )
        print_table(console, table)
    for key, c in metrics["classification"].items():
        if key in binary or "per_class" not in c:
            continue
        classes = list(c["per_class"])
        table = Table(
            title=f"{key}: {len(classes)} classes, accuracy {percent(c['accuracy'])}, mean one-vs-rest "
            f"AUC {fmt(c['roc_auc'])}; confusion matrix: rows = true class, "
            "columns = predicted (fraction of the row)",
            title_justify="left",
        )
        table.add_column("class", justify="right")
        table.add_column("share", justify="right")
        table.add_column("AUC (one vs rest)", justify="right")
        for predicted in classes:
            table.add_column(f"→ {predicted}", justify="right")
        for row, name in zip(c["confusion"], classes, strict=True):
            total = sum(row)
            entry = c["per_class"][name]
            table.add_row(
                name, percent(entry["fraction"]), fmt(entry["roc_auc"]),
                *[percent(v / total) if total > 0 else "–" for v in row],
            )
        print_table(console, table)
