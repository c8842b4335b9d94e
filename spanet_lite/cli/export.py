"""`spanet-export RUN_DIR model.onnx`: write a trained network as an ONNX graph.

Inputs ``<input>_data`` / ``<input>_mask``, outputs per-particle assignment log-probabilities,
detection probabilities, de-normalised regressions and class probabilities, with dynamic batch
and object axes (see :mod:`spanet_lite.evaluation.export`). ``onnx_decoder.py`` beside the
exporter decodes the outputs with numpy alone; ``--copy-decoder`` puts a copy next to the model.

Exit codes: 0 done, 2 bad input or the onnx package missing (one line on stderr).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, run_cli

PROGRAM = "spanet-export"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Export a trained network to ONNX.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by spanet-train")
    parser.add_argument("output", metavar="model.onnx", help="ONNX file to write")
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="checkpoint file (default: best.ckpt, else last.ckpt)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: %(default)s)")
    parser.add_argument("--copy-decoder", action="store_true",
                        help="also write onnx_decoder.py (numpy-only decoding) next to the model")
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    import shutil
    from pathlib import Path

    from rich.console import Console

    from spanet_lite.assignment import numpy_decoder
    from spanet_lite.evaluation.export import export_onnx, input_names, output_names
    from spanet_lite.evaluation.run import load_run

    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    path = export_onnx(run, args.output, opset=args.opset)
    console = Console()
    console.print(f"wrote {path}")
    console.print(f"  inputs:  {', '.join(input_names(run.spec))}")
    console.print(f"  outputs: {', '.join(output_names(run.spec))}")
    if args.copy_decoder:
        target = Path(path).with_name("onnx_decoder.py")
        shutil.copyfile(numpy_decoder.__file__, target)
        console.print(f"  numpy decoder: {target}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)
