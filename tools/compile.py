"""`tinyattn-compile`: compile a model for a target into an output directory.

    tinyattn-compile model.(onnx|mlir) --target T -o DIR [--keep-stages]

writes DIR/model.o (the object to link), DIR/model.h (its C API), DIR/model.ll (the optimized
LLVM IR), DIR/report.json (params, MACs, activation peak, code size, arenas, tensor specs) and,
with --keep-stages, every intermediate of the upstream pipeline. Nothing is written on error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tinyattn.lowering.driver import compile_model
from tinyattn.lowering.targets import TARGETS
from tinyattn.tools.cli import ArgumentParser, add_lowering_options, options_from, run_main

PROG = "tinyattn-compile"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an ONNX model or a tensor-level tinyattn .mlir file")
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    add_lowering_options(parser)
    parser.add_argument("-o", "--output", required=True, help="the output directory")
    parser.add_argument(
        "--keep-stages", action="store_true", help="also keep the pipeline's intermediate files"
    )
    args = parser.parse_args(argv)

    def body() -> int:
        compile_model(
            args.model,
            args.target,
            args.output,
            keep_stages=args.keep_stages,
            options=options_from(args),
        )
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
