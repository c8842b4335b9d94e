"""The README cannot drift from the code: every ``spanet-*`` command it prints parses with that
command's own argument parser, its set-up line installs what ``make`` installs, the ``make``
targets it names exist, and it has runnable blocks for ``make readme-check`` (which runs them)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import h5py
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def _load_checker():
    spec = importlib.util.spec_from_file_location("readme_check", ROOT / ".ci" / "readme_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_check"] = module
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


SCRIPTS_SECTION = re.compile(r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", flags=re.S | re.M)


def _scripts() -> dict[str, str]:
    """Console script name -> module, from pyproject.toml's [project.scripts]."""
    section = SCRIPTS_SECTION.search((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert section, "pyproject.toml has a [project.scripts] table"
    return dict(re.findall(r'^(spanet-[\w-]+) = "([\w.]+):main"', section.group(1), flags=re.M))


SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}


def _words(line: str) -> list[str]:
    """A shell line's first command as words (comments, pipes and redirections dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = []
    for word in lexer:
        if word in SHELL_OPERATORS:
            break
        words.append(word)
    return words


def _commands() -> list[tuple[int, list[str]]]:
    """(README line, argv) of every ``spanet-*`` command in the README's shell blocks."""
    found = []
    for block, _ in checker.code_blocks(README):
        if block.language not in ("bash", "sh", "shell", "console"):
            continue
        text = block.text.replace("\\\n", " ")  # continuation lines
        for offset, line in enumerate(text.splitlines(), start=1):
            words = _words(line.removeprefix("$ "))
            if words and words[0].startswith("spanet-"):
                found.append((block.line + offset, words))
    return found


COMMANDS = _commands()


def test_the_readme_has_runnable_blocks_with_the_tour_in_them():
    blocks = checker.runnable_blocks(README)
    assert [b.language for b in blocks] == ["bash", "python"]
    assert blocks[0].text.startswith("source .venv/bin/activate\n")
    assert "spanet-test" in blocks[0].text and "load_run" in blocks[1].text


@pytest.mark.parametrize(("line", "argv"), COMMANDS, ids=[f"line{line}" for line, _ in COMMANDS])
def test_every_printed_command_parses_with_its_own_parser(line, argv):
    scripts = _scripts()
    assert argv[0] in scripts, f"README.md line {line}: {argv[0]} is not a console script"
    module = importlib.import_module(scripts[argv[0]])
    assert hasattr(module, "build_parser"), f"{argv[0]} has no build_parser to check its flags with"
    try:
        module.build_parser().parse_args(argv[1:])
    except SystemExit as stop:
        pytest.fail(f"README.md line {line}: `{shlex.join(argv)}` does not parse (exit {stop.code})")


def test_the_tour_tests_on_other_events_than_it_trains_on():
    tour = checker.runnable_blocks(README)[0].text
    generated = re.search(r"spanet-generate ttbar_allhad .*--seed (\d+) --output (\S+)", tour)
    assert generated and f"-tf {generated.group(2)}" in tour
    options = json.loads((ROOT / "options_files" / "full_hadronic_ttbar" / "example.json").read_text())
    with h5py.File(ROOT / options["training_file"], "r") as training:
        assert training.attrs["process"] == "ttbar_allhad"
        assert int(training.attrs["seed"]) != int(generated.group(1))


def test_setup_by_hand_installs_what_make_installs():
    extras = re.search(r"^EXTRAS \?= (\S+)$", MAKEFILE, flags=re.M).group(1)
    torch = re.search(r"^TORCH_VERSION := (\S+)$", MAKEFILE, flags=re.M).group(1)
    assert f"pip install -e '.[{extras}]'" in README
    assert f"pip install torch=={torch}" in README


def test_every_make_target_the_readme_names_exists():
    # In code blocks (a line starting with make) and inline code (`make X`).
    named = set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", README, flags=re.M))
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, flags=re.M))
    assert named and named <= targets, named - targets


def test_the_check_shrinks_sizes_and_keeps_everything_else():
    text = "spanet-generate x --events 10000 --seed 2\nspanet-train o.json --epochs 5\n"
    small = "spanet-generate x --events 2000 --seed 2\nspanet-train o.json --epochs 1\n"
    assert checker.shrink(text) == small
    assert checker.shrink("--events 300") == "--events 300"


def test_no_merge_conflict_is_left_in_the_readme():
    lines = README.splitlines()
    markers = [n for n, line in enumerate(lines, 1) if line.startswith(("<<<<<<< ", ">>>>>>> "))]
    assert not markers, f"README.md lines {markers}"
