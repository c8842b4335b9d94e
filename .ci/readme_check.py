"""Run the README's runnable blocks as a new user would, so that the README cannot drift.

A block is runnable when the line before its opening fence is ``<!-- readme-check -->``.
``bash`` blocks run as printed; ``python`` blocks run with the environment's ``python``. All
runnable blocks of README.md are joined, in order, into one bash script (one shell session, as
a user pasting them one after the other) that runs with ``set -euo pipefail`` in a scratch copy
of the repository: the files git tracks (and untracked, not ignored ones), with ``.venv`` linking
to the environment given by ``--venv``. Nothing is written into the repository.

Sizes are shrunk unless README_CHECK_FULL=1: ``--events N`` becomes at most 2,000 and
``--epochs N`` becomes 1, so the check takes about a minute on two cores.

    python .ci/readme_check.py [--venv .venv] [--keep]      (or: make readme-check)

Exit status: the script's (0 when every command succeeded).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- readme-check -->"
MAX_EVENTS = 2000
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # 1-based line of the opening fence


def code_blocks(markdown: str) -> list[tuple[Block, bool]]:
    """Every fenced block of ``markdown`` with whether it is marked runnable."""
    lines = markdown.splitlines()
    blocks: list[tuple[Block, bool]] = []
    index = 0
    while index < len(lines):
        opening = re.match(r"^```(\w*)", lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        marked = start > 0 and lines[start - 1].strip() == MARKER
        blocks.append((Block(opening.group(1), "\n".join(body) + "\n", start + 1), marked))
        index += 1
    return blocks


def runnable_blocks(markdown: str) -> list[Block]:
    return [block for block, marked in code_blocks(markdown) if marked]


def shrink(text: str) -> str:
    """``--events N`` -> at most MAX_EVENTS, ``--epochs N`` -> 1 (the check's small sizes)."""
    text = re.sub(r"--events (\d+)", lambda m: f"--events {min(int(m.group(1)), MAX_EVENTS)}", text)
    return re.sub(r"--epochs \d+", "--epochs 1", text)


def script(blocks: list[Block], small: bool) -> str:
    """One bash script running ``blocks`` in order (python blocks through a here-document)."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        text = shrink(block.text) if small else block.text
        parts.append(f"echo '--- README.md line {block.line} ({block.language})'")
        if block.language == "python":
            parts.append(f"python - <<'README_PYTHON'\n{text}README_PYTHON")
        elif block.language in ("bash", "sh", "shell"):
            parts.append(f"set -x\n{text}set +x")
        else:
            raise SystemExit(f"README.md line {block.line}: a runnable block must be bash or python")
    return "\n".join(parts) + "\n"


def repository_files(root: Path) -> list[str]:
    """Files a fresh clone has, plus new files not yet committed (git ignores the rest)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root, capture_output=True, text=True, check=True,
    )
    return [name for name in listed.stdout.split("\0") if name and (root / name).is_file()]


def scratch_copy(root: Path, target: Path, venv: Path) -> None:
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)
    (target / ".venv").symlink_to(venv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="environment to link as .venv")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy and print its path")
    args = parser.parse_args(argv)
    venv = args.venv if args.venv.is_absolute() else (ROOT / args.venv)
    if not (venv / "bin" / "activate").is_file():
        print(f"readme-check: no environment at {venv} (run `make setup` first)", file=sys.stderr)
        return 2
    blocks = runnable_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    if not blocks:
        print(f"readme-check: no block marked {MARKER} in README.md", file=sys.stderr)
        return 2
    small = os.environ.get("README_CHECK_FULL") != "1"
    scratch = Path(tempfile.mkdtemp(prefix="readme-check-"))
    try:
        scratch_copy(ROOT, scratch, venv.resolve())
        done = subprocess.run(["bash", "-c", script(blocks, small)], cwd=scratch, check=False)
        verdict = "passed" if done.returncode == 0 else f"failed (exit {done.returncode})"
        print(f"readme-check: {len(blocks)} README blocks {verdict}"
              f"{' (small sizes)' if small else ''}", file=sys.stderr)
        return done.returncode
    finally:
        if args.keep:
            print(f"readme-check: scratch copy kept at {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
