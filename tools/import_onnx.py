"""`tinyattn-import`: translate an ONNX model into a tinyattn MLIR module.

    tinyattn-import model.onnx [-o out.mlir] [--inputs x.npz] [--generic] [--summary]
                    [--elide-weights]
    tinyattn-import --list-ops

An integerised (QuantLib/Deeploy) graph does not store its inputs' signedness: `--inputs` gives
sample inputs, and each input gets the smallest type holding their values, unsigned first, as
Deeploy does (0..254 -> ui8); without them every input is i8.

Errors are one line `tinyattn-import: error: <file>: <message>` on stderr with exit status 2
(`tinyattn.tools.cli`); `-o` is written atomically, so a failed run never leaves a partial file
behind.
"""

from __future__ import annotations

import io
import math
import re
import sys

from xdsl.printer import Printer

from tinyattn.backend.files import write_atomically
from tinyattn.driver.run import DriverError, load_inputs
from tinyattn.frontend.onnx_import import OnnxImportError, import_model, supported_ops
from tinyattn.semantics.cost import format_summary
from tinyattn.tools.cli import ArgumentParser, UsageError, model_path, run_main

PROG = "tinyattn-import"


# --elide-weights hides dense constants of more than this many elements.
_ELIDE_ABOVE = 16
_DENSE = re.compile(r'dense<(?:"0x[0-9A-Fa-f]*"|\[[^<>]*\])>( : tensor<((?:\d+x)*)\w+>)')


def _elide(match: re.Match[str]) -> str:
    elements = math.prod(int(d) for d in match.group(2).split("x") if d)
    return (
        match.group(0)
        if elements <= _ELIDE_ABOVE
        else "dense_resource<__elided__>" + match.group(1)
    )


def _module_text(
    model_path: str, inputs_path: str | None, generic: bool, summary: bool, elide: bool
) -> str:
    """The module as text; `summary` appends the cost table as comments (still parseable);
    `elide` replaces large weights like mlir-opt's --mlir-elide-elementsattrs-if-larger."""
    samples = load_inputs(inputs_path) if inputs_path else None
    module = import_model(model_path, samples)
    text = io.StringIO()
    Printer(stream=text, print_generic_format=generic).print_op(module)
    text.write("\n")
    result = _DENSE.sub(_elide, text.getvalue()) if elide else text.getvalue()
    if summary:
        result += "".join(f"// {line}\n" for line in format_summary(module).splitlines())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="the ONNX model file (-: standard input)")
    parser.add_argument(
        "--list-ops",
        action="store_true",
        help="list every ONNX op (and pattern) the importer reads, float and integer, and exit",
    )
    parser.add_argument("-o", "--output", help="write the module here (default, or -: stdout)")
    parser.add_argument(
        "--inputs",
        help=".npz of sample inputs (by name, else in order): the signedness of an integer "
        "graph's inputs (default: i8)",
    )
    parser.add_argument(
        "--generic", action="store_true", help="print the generic op form instead of the custom one"
    )
    parser.add_argument(
        "--summary", action="store_true", help="append a table of MACs and parameters per op"
    )
    parser.add_argument(
        "--elide-weights",
        action="store_true",
        help="print large constants as dense_resource<__elided__>, for reading (not parseable)",
    )
    args = parser.parse_args(argv)

    def body() -> int:
        if args.list_ops:
            sys.stdout.write(supported_ops())
            return 0
        if args.model is None:
            raise UsageError("a model file is required (or --list-ops)")
        try:
            with model_path(args.model) as model:
                text = _module_text(
                    model, args.inputs, args.generic, args.summary, args.elide_weights
                )
        except OnnxImportError as error:
            raise OnnxImportError(f"{args.model}: {error}") from None
        except OSError as error:
            raise DriverError(f"{args.model}: {error.strerror or error}") from None
        if args.output in (None, "-"):
            sys.stdout.write(text)
            return 0
        try:
            write_atomically(args.output, text)
        except OSError as error:
            raise DriverError(f"{args.output}: cannot write: {error.strerror or error}") from None
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
