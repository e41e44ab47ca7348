"""The conventions every tinyattn command line shares.

Exit status: 0 on success; 1 when a run's outputs do not match (tinyattn-run); 2 for bad input
or usage (a malformed or unsupported model, bad options, a budget that cannot fit, a file that
cannot be read or written), as ONE line `<prog>: error: <path>: <reason>` on stderr; 3 for an
internal error (a bug in tinyattn), also one line, with the traceback when the environment sets
TINYATTN_TRACEBACK=1. Nothing is left behind on an error: outputs appear whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException

from tinyattn.backend.toolchain import ToolchainError
from tinyattn.driver.lower import SCHEDULES, LowerOptions
from tinyattn.driver.run import DriverError
from tinyattn.frontend.onnx_graph import OnnxImportError
from tinyattn.frontend.quantize import QuantizeError
from tinyattn.passes.fuse_weights import MODES

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

# What a user's model, inputs or options can cause: their message is the one line to print.
USER_ERRORS = (DriverError, ToolchainError, DiagnosticException, OnnxImportError, QuantizeError)


class UsageError(Exception):
    """A bad command line that argparse cannot see (a value out of range, options that
    conflict); the message is one line."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit status 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def error_line(prog: str, message: str) -> int:
    """Print one error line; the exit status for bad input."""
    lines = message.strip().splitlines() or ["unknown error"]
    print(f"{prog}: error: {lines[0]}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run `body` under the conventions above."""
    try:
        return body()
    except (*USER_ERRORS, UsageError) as error:
        return error_line(prog, str(error))
    except ArgSpecParseError as error:  # xDSL's pass-option parser raises a BaseException
        return error_line(prog, _pipeline_error(str(error)))
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        return error_line(prog, f"{where}{error.strerror or error}")
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("TINYATTN_TRACEBACK"):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"{prog}: internal error: {type(error).__name__}: {reason} "
            "(a bug in tinyattn; TINYATTN_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _pipeline_error(message: str) -> str:
    """xDSL's multi-line pipeline parse error (title, place, text, caret, reason) as one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) >= 4 and lines[1].startswith("pass-pipeline:"):
        column = lines[1].rpartition(":")[2]
        return f"bad pass pipeline '{lines[2]}' at column {column}: {lines[-1]}"
    return f"bad pass pipeline: {' '.join(lines)}"


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def add_lowering_options(parser: argparse.ArgumentParser) -> None:
    """The choices a compilation offers, shared by tinyattn-compile and tinyattn-run."""
    defaults = LowerOptions()
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=defaults.schedule,
        help="attention schedule through L1: depth-first (default) or layer by layer",
    )
    parser.add_argument(
        "--fuse-weights",
        choices=MODES,
        default=defaults.fuse_weights,
        help="fused-weight self-attention: where it pays (auto), always, or never",
    )
    parser.add_argument(
        "--l1-bytes",
        type=count(1),
        help="the L1 budget of the tiling in bytes (default: the target's L1)",
    )
    parser.add_argument(
        "--rows", default=defaults.rows, help="rows per tile, or auto (the largest that fits L1)"
    )


def options_from(args: argparse.Namespace) -> LowerOptions:
    return LowerOptions(
        fuse_weights=args.fuse_weights,
        schedule=args.schedule,
        l1_bytes=args.l1_bytes,
        rows=args.rows,
    )
