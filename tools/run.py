"""`tinyattn-run`: compile a model, run it on a target and check it against the reference.

    tinyattn-run model.(onnx|mlir) --target T [--inputs x.npz [--expect y.npz]] [--seed N]
                 [--json | --report [--report-format text|csv|md]] [--profile]

Runs under QEMU (or natively for `host`), compares every output with the numpy reference, or
with the stored outputs of `--expect` (as Deeploy's test vectors come: `--inputs DIR/inputs.npz
--expect DIR/outputs.npz`), and prints the report: match, errors, instructions,
MAC/instruction, memory (`--json`: one JSON object, per-layer facts included) and, with
`--profile`, the instructions of each kernel op. `--report` adds tinyattn-compile's per-layer
table (CSV or Markdown: the table alone); with `--profile` it has each layer's instructions and
their share. Integer outputs must match bit for bit.
Exit status 0 on a match, 1 on a mismatch, 2 for bad input (`tinyattn.tools.cli`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tinyattn.backend.targets import TARGETS
from tinyattn.driver.layer_report import REPORT_FORMATS
from tinyattn.driver.run import load_inputs, run_model
from tinyattn.tools.cli import (
    EXIT_MISMATCH,
    ArgumentParser,
    UsageError,
    add_lowering_options,
    count,
    model_path,
    options_from,
    run_main,
)

PROG = "tinyattn-run"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="an ONNX model, or a .mlir file from any stage of tinyattn-opt (- : stdin)"
    )
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    add_lowering_options(parser)
    parser.add_argument(
        "--inputs",
        help=".npz with the model inputs (by name, else in order), which also give an integer "
        "ONNX graph's inputs their signedness; default: random",
    )
    parser.add_argument(
        "--expect",
        help=".npz with the outputs expected from --inputs (by name, else in order), compared "
        "instead of the reference",
    )
    parser.add_argument("--seed", type=count(0), default=0, help="seed of the random inputs")
    printed = parser.add_mutually_exclusive_group()
    printed.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object (its 'layers': the per-layer facts)",
    )
    printed.add_argument(
        "--report",
        action="store_true",
        help="also print the per-layer table, as tinyattn-compile --report does; with "
        "--profile, with each layer's instructions",
    )
    parser.add_argument(
        "--report-format",
        choices=REPORT_FORMATS,
        default="text",
        help="the table as aligned text after the run's report (default), or CSV or Markdown "
        "alone (the exit status still tells the match)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also count the instructions of each kernel op (MACs, MAC/instruction, share), "
        "from a second build whose kernels are marked as regions",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        if args.expect and not args.inputs:
            raise UsageError("--expect needs the --inputs it was computed from")
        inputs = load_inputs(args.inputs) if args.inputs else None
        expect = load_inputs(args.expect) if args.expect else None
        with model_path(args.model) as model:
            report = run_model(
                model,
                args.target,
                inputs=inputs,
                seed=args.seed,
                options=options_from(args),
                expect=expect,
                profile=args.profile,
            )
        if args.json:
            text = json.dumps(report.as_dict())
        elif args.report and args.report_format != "text":
            text = report.layer_table(args.report_format)
        else:
            text = report.format() + (f"\n\n{report.layer_table()}" if args.report else "")
        print(text)
        return 0 if report.match else EXIT_MISMATCH

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
