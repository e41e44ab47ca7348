"""The error convention shared by tinyattn-compile and tinyattn-run: any error a user can cause
ends in ONE line `<prog>: error: <message>` on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from tinyattn.backend.toolchain import ToolchainError
from tinyattn.driver.lower import SCHEDULES, LowerOptions
from tinyattn.driver.run import DriverError
from tinyattn.passes.fuse_weights import MODES


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one line and status 1, like every other error."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(1)


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run `body`; turn driver, toolchain and OS errors into one line on stderr and status 1."""
    try:
        return body()
    except (DriverError, ToolchainError) as error:
        message = str(error)
    except OSError as error:
        message = f"{error.filename}: {error.strerror}" if error.filename else str(error)
    lines = message.strip().splitlines() or ["unknown error"]
    print(f"{prog}: error: {lines[0]}", file=sys.stderr)
    return 1


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
        "--l1-bytes", type=int, help="the L1 budget of the tiling (default: the target's L1)"
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
