"""Every console script: declared, answers --help, and never shows a traceback for bad input.

Each one answers ``--help`` with exit 0 and a usage text, and a missing input file with exit 2
and one line on stderr that names the file.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

SCRIPTS = {
    "spanet-train": "spanet_lite.cli.train:main",
    "spanet-test": "spanet_lite.cli.test:main",
    "spanet-predict": "spanet_lite.cli.predict:main",
    "spanet-inspect": "spanet_lite.cli.inspect:main",
    "spanet-generate": "spanet_lite.cli.generate:main",
    "spanet-export": "spanet_lite.cli.export:main",
    "spanet-data": "spanet_lite.cli.data:main",
    "spanet-tune": "spanet_lite.cli.tune:main",
}


def _main(script: str):
    module, function = SCRIPTS[script].split(":")
    return getattr(importlib.import_module(module), function)


def _run(script: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """Run a console script in-process; an exception escaping main() fails the test, as a
    traceback would be what the user sees."""
    try:
        code = _main(script)(argv)
    except SystemExit as exit_:  # argparse: --help exits 0, usage errors exit 2
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_script_is_declared_with_its_entry_point():
    declared = {ep.name: ep.value for ep in entry_points(group="console_scripts")
                if ep.name.startswith("spanet-")}
    assert declared == SCRIPTS


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_exits_0_with_a_usage_text(script, capsys):
    code, out, err = _run(script, ["--help"], capsys)
    assert code == 0, err
    assert "usage:" in out.lower()
    assert "Traceback" not in out + err


# spanet-generate writes files rather than reading one, so "a missing input" means nothing to it.
READERS = sorted(set(SCRIPTS) - {"spanet-generate"})


@pytest.mark.parametrize("script", READERS)
def test_missing_input_file_is_an_error_without_traceback(script, tmp_path: Path, capsys):
    missing = tmp_path / "no_such_dir" / "no_such_file.h5"
    # Commands that also take an output get one that could be written.
    outputs = {
        "spanet-predict": [str(missing), str(tmp_path / "out.h5")],  # RUN_DIR IN.h5 OUT.h5
        "spanet-export": [str(tmp_path / "model.onnx")],
    }
    event_file = Path(__file__).resolve().parents[1] / "event_files" / "full_hadronic_ttbar.yaml"
    argv = {  # commands whose input is not the first argument
        "spanet-data": ["select", str(missing), "-o", str(tmp_path / "out.h5"), "-e", str(event_file)],
        "spanet-tune": [str(missing), "--trials", "1", "--dir", str(tmp_path / "study")],
    }.get(script, [str(missing), *outputs.get(script, [])])
    code, out, err = _run(script, argv, capsys)
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error:"), err
    assert "no_such_file.h5" in lines[0] or "no_such_dir" in lines[0], err
    assert not missing.parent.exists(), f"{script} created files for an input that does not exist"


@pytest.mark.parametrize(("script", "seed"), [
    ("spanet-generate", "-1"), ("spanet-data", "-1"), ("spanet-tune", str(2**32)),
])
def test_a_seed_numpy_or_optuna_cannot_take_is_one_line_before_any_work(script, seed, tmp_path: Path, capsys):
    event_file = Path(__file__).resolve().parents[1] / "event_files" / "full_hadronic_ttbar.yaml"
    argv = {
        "spanet-generate": ["ttbar_allhad", "-n", "10", "-o", str(tmp_path / "g.h5")],
        "spanet-data": ["shuffle", str(tmp_path / "in.h5"), "-o", str(tmp_path / "o.h5"),
                        "-e", str(event_file)],
        "spanet-tune": [str(tmp_path / "options.json"), "--trials", "1", "--dir", str(tmp_path / "study")],
    }[script]
    code, _, err = _run(script, [*argv, "--seed", seed], capsys)
    assert code == 2
    expected = "a seed in [0, 2**32)" if script == "spanet-tune" else "a seed >= 0"
    assert err.strip() == f"{script}: error: --seed: expected {expected}, got {seed}"
    assert list(tmp_path.iterdir()) == []


def test_importing_the_commands_does_not_import_heavy_libraries():
    """Scripts must start in well under 2 s: torch, lightning and matplotlib are imported
    inside the functions that need them, never at the top of ``spanet_lite/cli/*.py``."""
    modules = sorted({value.split(":")[0] for value in SCRIPTS.values()})
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules)\n"
        "sys.exit(f'imported at start-up: {heavy}' if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_our_warnings_print_as_one_line_naming_the_program(monkeypatch: pytest.MonkeyPatch):
    import warnings

    from spanet_lite.cli.common import run_cli
    from spanet_lite.errors import SpanetWarning

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    assert run_cli("spanet-x", lambda argv: 0, []) == 0
    text = warnings.formatwarning(SpanetWarning("opts.json: unknown key\n  'lr'"), SpanetWarning, "m.py", 3)
    assert text == "spanet-x: warning: opts.json: unknown key 'lr'\n"
    assert "m.py" in warnings.formatwarning(UserWarning("other"), UserWarning, "m.py", 3)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_python_dash_m_runs_the_same_command(script):
    """``python -m spanet_lite.cli.<name>`` is the console script (the GPU machine has none installed)."""
    module = SCRIPTS[script].split(":")[0]
    command = [sys.executable, "-m", module, "--help"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script}")


def test_control_characters_a_user_typed_are_escaped_in_the_error_line(capsys):
    from spanet_lite.cli.common import error_line

    error_line("spanet-train", "options.json: got \x00x\x1b[2J\nmore")
    assert capsys.readouterr().err == "spanet-train: error: options.json: got \\x00x\\x1b[2J more\n"


def test_an_input_error_keeps_a_librarys_multi_line_message_on_one_line():
    """Python callers get the same single line as the command line: ``got`` may be a library's
    message (h5py, torch) as it is."""
    from spanet_lite.errors import InputError

    error = InputError("data.h5", "", "a readable HDF5 file", "Unable to open\n  (bad symbol table)  ")
    assert str(error) == "data.h5: expected a readable HDF5 file, got Unable to open (bad symbol table)"
