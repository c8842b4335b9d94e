"""Shared plumbing for ``bench/bench_*.py``: machine description, table printing, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spanet_lite.io import atomic_write_text

SPANET_TTBAR: dict[str, Any] = {
    # SPANet v2's options_files/full_hadronic_ttbar/example.json, the keys this package reads
    # (the others it accepts without effect and says so).
    "hidden_dim": 64,
    "num_embedding_layers": 10,
    "num_encoder_layers": 6,
    "num_branch_embedding_layers": 3,
    "num_branch_encoder_layers": 3,
    "num_detector_layers": 2,
    "num_regression_layers": 3,
    "num_classification_layers": 3,
    "num_attention_heads": 4,
    "transformer_activation": "gelu",
    "linear_activation": "gelu",
    "partial_events": True,
    "balance_particles": True,
    "train_validation_split": 0.95,
    "combine_pair_loss": "min",
    "optimizer": "AdamW",
    "learning_rate": 0.0015,
    "learning_rate_cycles": 1,
    "learning_rate_warmup_epochs": 1.0,
    "assignment_loss_scale": 1.0,
    "detection_loss_scale": 0.0,
    "kl_loss_scale": 0.0,
    "regression_loss_scale": 0.0,
    "classification_loss_scale": 0.0,
    "l2_penalty": 0.0002,
    "gradient_clip": 0.0,
    "dropout": 0.0,
    "batch_size": 32,
    "epochs": 500,
    "num_dataloader_workers": 16,
}


def machine() -> dict[str, Any]:
    """Where a benchmark ran, printed with every table and stored in the JSON."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def peak_rss_mb() -> float:
    """Peak resident set size of this process (and waited-for children) in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, finishes in under a minute")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    return p


def cell(value: Any) -> str:
    """A table cell: floats to one decimal, small ones (purities, ratios) to three digits."""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def report(
    title: str, columns: list[str], rows: list[list[Any]], figures: dict[str, Any], json_path: Path | None
) -> None:
    """Print a table (with the machine) and optionally write ``figures`` as JSON."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    # The first column names the row (a tool, a variant): never cut it, squeeze the figures instead.
    names = max((len(str(row[0])) for row in rows), default=0)
    for index, column in enumerate(columns):
        if index == 0:
            table.add_column(column, no_wrap=True, min_width=max(names, len(column)))
        else:
            table.add_column(column)
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    console = Console()
    console.print(table)
    m = machine()
    console.print(
        f"machine: {m['cpu']}, {m['cores']} cores, python {m['python']}, torch {m.get('torch', '-')}"
    )
    if json_path is not None:
        write_json(json_path, figures)


def write_json(path: Path, figures: dict[str, Any]) -> None:
    """``figures`` with the machine, written atomically (a reader never sees half a file)."""
    atomic_write_text(path, json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
