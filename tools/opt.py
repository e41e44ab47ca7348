"""`tinyattn-opt`: xdsl-opt with the tinyattn dialect and passes, and mlir-opt-style pass flags.

Besides xdsl-opt's `-p a,b{opt=v}`, every registered pass is also a flag of its own,
`--fuse-weights` or `--depth-first-tile="l1-bytes=65536 rows=4"`; flags and `-p` pipelines run in
the order given. An `.onnx` input is imported first (as tinyattn-import does). Bad input ends in
one line `tinyattn-opt: error: FILE:LINE:COL: reason` and exit status 2 (`tinyattn.tools.cli`;
with `--verify-diagnostics`, the line is printed and the run goes on); `-o` appears whole or
not at all.

For upstream MLIR, `--emit-irdl FILE` writes tinyattn's dialects as IRDL and `--mlir-interop`
prints IR that `mlir-opt-22 --irdl-file=FILE` parses and verifies; every tool reads back what
mlir-opt prints of it (`tinyattn.tools.irdl_interop`, `tinyattn.driver.interop`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence
from contextlib import redirect_stdout
from io import StringIO
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass, PassPipeline
from xdsl.transforms import get_all_passes
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException
from xdsl.utils.lexer import Span
from xdsl.xdsl_opt_main import xDSLOptMain

from tinyattn.backend.files import atomic_path, write_atomically
from tinyattn.driver.parsing import LocatingParser, register_dialects, verify_one_line, where
from tinyattn.driver.registry import TINYATTN_UNIVERSE
from tinyattn.frontend.onnx_graph import OnnxImportError
from tinyattn.frontend.onnx_import import import_model, model_from_bytes
from tinyattn.tools.cli import UsageError, run_main, version_text
from tinyattn.tools.irdl_interop import InteropPrinter, irdl_text

TOOL = "tinyattn-opt"


# mlir-opt's spellings of xdsl-opt's flags.
MLIR_OPT_FLAGS = {
    "--mlir-print-op-generic": "--print-op-generic",
    "--mlir-print-ir-after-all": "--print-between-passes",
}


def _unwrap(pipeline: str) -> str:
    """mlir-opt's `builtin.module(a,b)` as xdsl-opt's `a,b`."""
    pipeline = pipeline.strip()
    if pipeline.startswith("builtin.module(") and pipeline.endswith(")"):
        return pipeline.removeprefix("builtin.module(")[:-1]
    return pipeline


def expand_pass_flags(argv: Sequence[str], pass_names: Sequence[str]) -> list[str]:
    """Turn `--pass` / `--pass=opts` flags, `-p`/`--passes` values and mlir-opt's
    `--pass-pipeline=builtin.module(...)` into one `-p` pipeline, keeping their order; map
    mlir-opt's other spellings (MLIR_OPT_FLAGS) to xdsl-opt's."""
    pipeline: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name, has_value, value = arg.removeprefix("--").partition("=")
        if arg.startswith("--") and name in pass_names:
            pipeline.append(f"{name}{{{value}}}" if has_value and value else name)
        elif arg in ("-p", "--passes", "--pass-pipeline"):
            pipeline.append(_unwrap(next(args, "")))
        elif arg.startswith(("-p=", "--passes=", "--pass-pipeline=")):
            pipeline.append(_unwrap(arg.partition("=")[2]))
        else:
            rest.append(MLIR_OPT_FLAGS.get(arg, arg))
    pipeline = [segment for segment in pipeline if segment]
    return [*rest, "-p", ",".join(pipeline)] if pipeline else rest


class TinyattnOptMain(xDSLOptMain):
    """xDSLOptMain over all xDSL dialects and passes plus tinyattn's, with one-line diagnostics."""

    def __init__(self, args: Sequence[str] | None = None):
        self.positions: dict[Operation, Span] = {}
        self.chunk_line_offset = 0
        super().__init__(description="tinyattn modular optimizer driver", args=args)

    def register_all_dialects(self):
        register_dialects(self.ctx)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser):
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--emit-irdl",
            metavar="FILE",
            help="write tinyattn's dialects as IRDL to FILE ('-': standard output) and exit; "
            "`mlir-opt-22 --irdl-file=FILE` then reads them",
        )
        arg_parser.add_argument(
            "--mlir-interop",
            action="store_true",
            help="print the IR as `mlir-opt-22 --irdl-file=FILE` (FILE from --emit-irdl) parses "
            "it: generic form, tinyattn's properties as attributes, its attributes positional",
        )

    def output_resulting_program(self, prog: ModuleOp) -> str:
        if not self.args.mlir_interop:
            return super().output_resulting_program(prog)
        if self.args.target != "mlir":
            raise UsageError(f"--mlir-interop prints MLIR; it takes no -t {self.args.target}")
        output = StringIO()
        printer = InteropPrinter(stream=output)
        printer.print_op(prog)
        printer.print_metadata(self.ctx.loaded_dialects)
        print("\n", file=output)
        return output.getvalue()

    def register_all_passes(self):
        super().register_all_passes()
        for name, factory in TINYATTN_UNIVERSE.all_passes.items():
            self.register_pass(name, factory)

    def register_all_frontends(self):
        super().register_all_frontends()

        def parse_mlir(io: IO[bytes]) -> ModuleOp:
            parser = LocatingParser(self.ctx, io.read(), self.get_input_name())
            try:
                return parser.parse_module(not self.args.no_implicit_module)
            except VerifyException as error:  # an attribute that does not verify
                raise ParseError(parser.pos_span(), str(error)) from None
            finally:
                self.positions = parser.positions

        def parse_onnx(io: IO[bytes]) -> ModuleOp:
            try:
                return import_model(model_from_bytes(io.read()))
            except OnnxImportError as error:
                raise DiagnosticException(f"{self.get_input_name()}: {error}") from None

        self.available_frontends["mlir"] = parse_mlir
        self.available_frontends["onnx"] = parse_onnx

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0):
        self.chunk_line_offset = start_offset
        try:
            return super().parse_chunk(chunk, file_extension, start_offset)
        except ParseError as error:
            place = where(error.span, start_offset)
            raise DiagnosticException(f"{place}: {error.msg}") from None

    def setup_pipeline(self):
        def verify(previous: ModulePass | None, module: ModuleOp, following: ModulePass | None):
            if not self.args.disable_verify:
                verify_one_line(module, self.positions, self.chunk_line_offset)

        self.pipeline = PassPipeline.parse_spec(self.available_passes, self.args.passes, verify)


def _output_file(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without its `-o`/`--output-file` and a `-` input (standard input, as without
    one), and the output path (None, or `-`: standard output)."""
    rest, output, args = [], None, iter(argv)
    for arg in args:
        if arg in ("-o", "--output-file"):
            output = next(args, None)
        elif arg.startswith("--output-file="):
            output = arg.partition("=")[2]
        elif arg == "--emit-irdl":  # its `-` is standard output
            rest += [arg, *[value for value in [next(args, None)] if value is not None]]
        elif arg != "-":
            rest.append(arg)
    return rest, None if output == "-" else output


def _emit_irdl(opt: TinyattnOptMain, output: str | None) -> int:
    """Write the IRDL of tinyattn's dialects where --emit-irdl says."""
    if opt.args.input_file is not None or output is not None:
        raise UsageError("--emit-irdl FILE writes the dialects only: no input file, no -o")
    if not opt.args.emit_irdl:
        raise UsageError("--emit-irdl needs a FILE ('-': standard output)")
    if opt.args.emit_irdl == "-":
        sys.stdout.write(irdl_text())
    else:
        write_atomically(opt.args.emit_irdl, irdl_text())
    return 0


def pass_help() -> str:
    """tinyattn's passes and their options, with the names the pipeline takes."""
    lines = ["tinyattn passes (as --name or --name=\"option=value ...\", or in -p name{...}):"]
    for name, factory in TINYATTN_UNIVERSE.all_passes.items():
        cls = factory()
        options = " ".join(
            f"{field.name.replace('_', '-')}={_shown(field.default)}"
            for field in dataclasses.fields(cls)
        )
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name}{{{options}}}" if options else f"  {name}")
        lines.append(f"      {summary}")
    return "\n".join(lines)


def _shown(default: object) -> str:
    """A default as the pipeline spells it."""
    if isinstance(default, bool):
        return str(default).lower()
    return "unset" if default is None else str(default)


def _option_names(message: str) -> str:
    """xDSL names pass options by their fields (`l1_bytes`); the pipeline takes `l1-bytes`."""
    return re.sub(r'"(\w+)"', lambda match: f'"{match.group(1).replace("_", "-")}"', message)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pass_names = [*TINYATTN_UNIVERSE.all_passes, *get_all_passes()]
    args, output = _output_file(argv)
    if "-v" in args or "--version" in args:
        print(f"{TOOL} {version_text()}")
        return 0

    def body() -> int:
        if "-h" in args or "--help" in args:
            try:
                TinyattnOptMain(args=["--help"])
            except SystemExit:
                print(f"\n{pass_help()}")
            return 0
        try:
            opt = TinyattnOptMain(args=expand_pass_flags(args, pass_names))
        except ValueError as error:  # an unknown pass or a bad pass option
            raise DiagnosticException(_option_names(str(error))) from None
        if opt.args.emit_irdl is not None:
            return _emit_irdl(opt, output)
        if output is None:
            opt.run()
            return 0
        with atomic_path(output) as scratch, open(scratch, "w") as stream:
            opt.args.output_file = None
            with redirect_stdout(stream):
                opt.run()
        return 0

    return run_main(TOOL, body)


if __name__ == "__main__":
    sys.exit(main())
