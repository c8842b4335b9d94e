"""`spanet-export RUN_DIR model.onnx`: write a trained network as an ONNX graph, SPANet's convention.

Accepts ``python -m spanet.export``'s command line unchanged: ``--input-log-transform`` (the
graph applies the log to the features whose option is ``log`` or ``log_normalize``; without it
they enter as log(1 + x)),
``--output-log-transform`` (log-probabilities out), ``--output-embeddings``, ``-g/--gpu``
(accepted; the export is traced on the CPU, which gives the same graph) and ``--opset``.
Input and output names and shapes are SPANet's (see :mod:`spanet_lite.evaluation.export`);
``onnx_decoder.py`` beside the exporter decodes the outputs with numpy alone;
``--copy-decoder`` puts a copy next to the model.

Exit codes: 0 done, 2 bad input or the onnx package missing (one line on stderr), 74 an OS
failure such as a full disk (one line naming the file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spanet_lite.cli.common import EXIT_OK, new_parser, run_cli
from spanet_lite.outputs import add_overwrite_argument

PROGRAM = "spanet-export"
OUTPUT_NAME = "output"
"""How a refusal names the positional model.onnx: by its role, never a name a path could have
(its metavar read ``model.onnx: model.onnx: ...`` for a file of that name)."""


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        PROGRAM,
        "Export a trained network to ONNX (SPANet's convention).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by spanet-train")
    parser.add_argument("output", metavar="model.onnx", help="ONNX file to write")
    parser.add_argument("-ckpt", "--checkpoint", metavar="CKPT",
                        help="checkpoint file (default: best.ckpt, else last.ckpt)")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset version (default: 15, SPANet's)")
    parser.add_argument("--input-log-transform", action="store_true",
                        help="inputs in file units: the graph applies log(1 + x) to the log and "
                             "log_normalize features")
    parser.add_argument("--output-log-transform", action="store_true",
                        help="log-probabilities out (*_assignment_log_probability, ...), as SPANet")
    parser.add_argument("--output-embeddings", action="store_true",
                        help="also output the event, particle and product embedding vectors")
    parser.add_argument("-g", "--gpu", action="store_true",
                        help="SPANet's flag; accepted, the graph is traced on the CPU (same graph)")
    parser.add_argument("--copy-decoder", action="store_true",
                        help="also write onnx_decoder.py (numpy-only decoding) next to the model")
    add_overwrite_argument(parser)
    return parser


def _body(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from rich.console import Console

    from spanet_lite.evaluation.export import (
        DECODER_NAME,
        OPSET,
        Convention,
        check_export_outputs,
        check_opset,
        export_onnx,
        input_names,
        output_names,
    )
    from spanet_lite.evaluation.run import load_run

    convention = Convention(args.input_log_transform, args.output_log_transform, args.output_embeddings)
    opset = OPSET if args.opset is None else args.opset
    opset = check_opset(opset, "--opset")  # the API checks these too; here first, named as typed
    run = load_run(args.run_dir, checkpoint=args.checkpoint)
    check_export_outputs(run, args.output, args.copy_decoder, overwrite=args.overwrite,
                         names=(OUTPUT_NAME, "--copy-decoder"))
    path = export_onnx(run, args.output, opset=opset, convention=convention,
                       copy_decoder=args.copy_decoder, overwrite=args.overwrite)
    console = Console()
    console.print(f"wrote {path}", markup=False)
    console.print(f"  inputs:  {', '.join(input_names(run.spec))}", markup=False)
    console.print(f"  outputs: {', '.join(output_names(run.spec, convention))}", markup=False)
    logged = [f"{s.name}: {', '.join(f.name for f in s.features if f.log)}"
              for s in run.spec.inputs if any(f.log for f in s.features)]
    if not args.input_log_transform and logged:
        console.print(f"  log and log_normalize features ({'; '.join(logged)}) enter as log(1 + x) "
                      "(SPANet's convention); --input-log-transform takes them raw", markup=False)
    if args.copy_decoder:
        console.print(f"  numpy decoder: {Path(path).with_name(DECODER_NAME)}", markup=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROGRAM, _body, argv)


if __name__ == "__main__":
    sys.exit(main())
