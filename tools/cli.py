"""The conventions every tinyattn command line shares.

Exit status: 0 on success; 1 when a run's outputs do not match (tinyattn-run); 2 for bad input
or usage (a malformed or unsupported model, bad options, a budget that cannot fit, a file that
cannot be read or written), as ONE line `<prog>: error: <path>: <reason>` on stderr; 3 for an
internal error (a bug in tinyattn), also one line, with the traceback when the environment sets
TINYATTN_TRACEBACK=1. Nothing is left behind on an error: outputs appear whole or not at all.
Notes (arrays of an .npz the model does not take) are lines `<prog>: note: <what>` on stderr.
A reader that closes the output early (`| head`) ends the command quietly with 141 (128 +
SIGPIPE), as it would a C tool; Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException

from tinyattn.backend import toolchain
from tinyattn.backend.toolchain import ToolchainError
from tinyattn.driver.lower import SCHEDULES, LowerOptions
from tinyattn.driver.run import DriverError
from tinyattn.frontend.arrays import ArraysNote
from tinyattn.frontend.onnx_graph import OnnxImportError
from tinyattn.frontend.onnx_import import model_from_bytes
from tinyattn.frontend.quantize import QuantizeError
from tinyattn.passes.fuse_weights import MODES

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_BROKEN_PIPE = 141

# What a user's model, inputs or options can cause: their message is the one line to print.
USER_ERRORS = (DriverError, ToolchainError, DiagnosticException, OnnxImportError, QuantizeError)


class UsageError(Exception):
    """A bad command line that argparse cannot see (a value out of range, options that
    conflict); the message is one line."""


def version_text() -> str:
    """tinyattn's version and those of the xDSL and LLVM it drives."""
    try:
        llvm_version = subprocess.run(
            [toolchain.tool("llc-22"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        found = re.search(r"LLVM version (\S+)", llvm_version)
        llvm = found.group(1) if found else "22 (version unknown)"
    except (ToolchainError, OSError, subprocess.CalledProcessError):
        llvm = "22 (not installed: make setup)"
    return f"{version('tinyattn')} (xDSL {version('xdsl')}, LLVM {llvm})"


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the versions and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {version_text()}")
        parser.exit()


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit status 2, with --version."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=_Version)

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


# Temporary files standing for standard input (`-`), by the name errors should show.
_STDIN_COPIES: dict[str, str] = {}


def error_line(prog: str, message: str) -> int:
    """Print one error line; the exit status for bad input."""
    lines = message.strip().splitlines() or ["unknown error"]
    line = lines[0]
    for copy, shown in _STDIN_COPIES.items():
        line = line.replace(copy, shown)
    print(f"{prog}: error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT


@contextmanager
def model_path(path: str) -> Iterator[str]:
    """The model file to read: `path`, or for `-` standard input, kept in a temporary file as
    ONNX when it holds a model, else as MLIR text (errors name it `<stdin>`)."""
    if path != "-":
        yield path
        return
    data = sys.stdin.buffer.read()
    try:
        model_from_bytes(data)
        suffix = ".onnx"
    except OnnxImportError:
        suffix = ".mlir"
    with tempfile.TemporaryDirectory(prefix="tinyattn-stdin-") as directory:
        copy = Path(directory) / f"stdin{suffix}"
        copy.write_bytes(data)
        _STDIN_COPIES[str(copy)] = (
            "<stdin>"  # kept: the error may be printed after the copy is gone
        )
        yield str(copy)


@contextmanager
def _notes(prog: str) -> Iterator[None]:
    """Print each distinct `ArraysNote` the body warns of once, as `prog: note: ...`."""
    seen: set[str] = set()
    others = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if not issubclass(category, ArraysNote):
            others(message, category, *args, **kwargs)
        elif str(message) not in seen:
            seen.add(str(message))
            print(f"{prog}: note: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ArraysNote)
        warnings.showwarning = show
        yield


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run `body` under the conventions above."""
    try:
        with _notes(prog):
            return body()
    except (*USER_ERRORS, UsageError) as error:
        return error_line(prog, str(error))
    except ArgSpecParseError as error:  # xDSL's pass-option parser raises a BaseException
        return error_line(prog, _pipeline_error(str(error)))
    except BrokenPipeError as error:
        if error.filename is not None:  # a file we opened, not our output
            return error_line(prog, f"{error.filename}: {error.strerror}")
        # The reader of our output left (`| head`): end quietly, as a shell tool does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
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
