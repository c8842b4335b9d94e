"""The resolved options as a rich table, so a user sees what a run will really use.

Rows are grouped as in docs/formats.md section 3 (files, sizes, depth, blocks, data, loss,
optimisation) plus SPANet's bookkeeping and our ``run`` group. Values that differ from the
default (SPANet's, for SPANet keys) are highlighted; the note column says where they came
from (``(command line)`` for overrides, otherwise the default they replace), marks our own
keys ``spanet_lite``, and says ``no effect: <what is built instead>`` for every SPANet key
whose effective value asks for something not built here (those rows are dimmed). Keys SPANet
itself never reads say so (``no effect in SPANet either``), and values built with a
documented difference from SPANet say what it is (``mapped_notes``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from spanet_lite.config.options import (
    OPTION_GROUPS,
    SPANET_KEYS,
    UNUSED_IN_SPANET,
    Options,
    keys_without_effect,
    mapped_notes,
)

if TYPE_CHECKING:
    from rich.table import Table

NON_DEFAULT_STYLE = "bold yellow"
GROUP_STYLE = "bold cyan"
INACTIVE_STYLE = "dim"


def options_table(
    options: Options,
    overrides: Collection[str] | None = None,
    *,
    title: str = "Options",
) -> Table:
    """Build the table. ``overrides`` holds the option keys set on the command line.

    A ``dict[str, str]`` (key -> the text the user typed) is accepted too; only its keys
    are used, the value column shows the resolved value.
    """
    from rich.table import Table  # rich is only needed when a table is shown

    overrides = set(overrides or ())
    defaults = Options()
    inactive = keys_without_effect(options)
    mapped = mapped_notes(options)
    table = Table(title=title, show_lines=False)
    table.add_column("option")
    table.add_column("value", overflow="fold")
    table.add_column("note", overflow="fold")
    for group_index, (group, keys) in enumerate(OPTION_GROUPS.items()):
        if group_index:
            table.add_section()
        table.add_row(f"[{GROUP_STYLE}]{group}[/]", "", "")
        for key in keys:
            value = getattr(options, key)
            default = getattr(defaults, key)
            changed = value != default or key in overrides
            notes = []
            if key in overrides:
                notes.append("(command line)")
            elif changed:
                notes.append(f"default {_show(default)}")
            if key not in SPANET_KEYS:
                notes.append("spanet_lite")
            if key in inactive:
                notes.append(f"no effect: {inactive[key]}")
            if key in UNUSED_IN_SPANET:
                notes.append(UNUSED_IN_SPANET[key])
            if key in mapped:
                notes.append(mapped[key])
            style = INACTIVE_STYLE if key in inactive else (NON_DEFAULT_STYLE if changed else None)
            table.add_row(f"  {key}", _show(value), "; ".join(notes), style=style)
    return table


def _show(value: object) -> str:
    """A value as the table shows it: a string as the user wrote it (brackets are not markup)."""
    from rich.markup import escape

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape(value) if value else '""'
    return repr(value)
