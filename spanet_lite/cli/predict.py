"""`spanet-predict`: not available yet."""

from __future__ import annotations

from collections.abc import Sequence

from spanet_lite.cli.common import not_implemented


def main(argv: Sequence[str] | None = None) -> int:
    return not_implemented("spanet-predict")
