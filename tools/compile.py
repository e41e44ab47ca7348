"""`tinyattn-compile`: compile a model for a target into an output directory.

    tinyattn-compile model.(onnx|mlir) --target T -o DIR [--name SYMBOL] [--keep-stages]
                     [--report] [--plot FILE.png]

writes DIR/model.o (the object to link), DIR/model.h (its C API), the package to link it with
(libtinyattn_rt.a, tinyattn_rt.h, the linker-script fragment tinyattn.ld, tinyattn.cmake, and
example/: a main.c with a Makefile that builds and runs it on the emulated board), DIR/model.ll
(the optimized LLVM IR), DIR/report.json (params, MACs, activation peaks per level, DMA bytes,
code size, arenas, tensor specs, per-layer facts) and, with --keep-stages, every intermediate of
the upstream pipeline. --report prints the per-layer table (output shape, params, MACs, weight
bytes, L1/L2 peak, DMA bytes; a compile runs nothing, so no instructions: `tinyattn-run
--profile --report` adds them); --plot draws the memory occupancy over the schedule, layer-wise
and depth-first side by side. Nothing is written on error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tinyattn.backend.files import write_bytes_atomically
from tinyattn.backend.targets import TARGETS
from tinyattn.dialects.memory import MemoryLevel
from tinyattn.driver.layer_report import REPORT_FORMATS, format_layers
from tinyattn.driver.lower import SCHEDULES, LowerOptions
from tinyattn.driver.run import DriverError, compile_model, load_model, lower
from tinyattn.tools.cli import (
    ArgumentParser,
    add_lowering_options,
    model_path,
    options_from,
    run_main,
)
from tinyattn.tools.memory_plot import plot_format, render_occupancy

PROG = "tinyattn-compile"


def _totals(report: dict) -> str:
    """The model's totals and footprint, under the per-layer table."""
    rom_share = f" ({report['rom_share']:.1%} of the flash)" if report["rom_share"] else ""
    return "\n".join(
        [
            f"total: {report['macs']:,} MACs, {report['params_bytes']:,} B weights, "
            f"activation peak {report['activation_peak_bytes']:,} B "
            f"(L1 {report['l1_peak_bytes']:,} B, L2 {report['l2_peak_bytes']:,} B), "
            f"{report['dma_bytes']:,} B DMA",
            f"ROM {report['rom_bytes']:,} B (weights {report['params_bytes']:,} + code "
            f"{report['code_bytes']:,}){rom_share}; RAM {report['ram_bytes']:,} B (arenas "
            f"{sum(report['arenas'].values()):,} + I/O {report['io_bytes']:,} + stack "
            f"{report['stack_bytes']:,}, {report['ram_share']:.1%} of the target's memories)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an ONNX model or a tensor-level tinyattn .mlir file")
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    add_lowering_options(parser)
    parser.add_argument("-o", "--output", required=True, help="the output directory")
    parser.add_argument(
        "--name",
        default=LowerOptions().name,
        help="the model's C symbol and (upper-cased) its macro prefix in model.h, so several "
        "models link into one firmware (default: tinyattn_model)",
    )
    parser.add_argument(
        "--keep-stages", action="store_true", help="also keep the pipeline's intermediate files"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the per-layer table (per-layer instructions: tinyattn-run --profile --report)",
    )
    parser.add_argument(
        "--report-format",
        choices=REPORT_FORMATS,
        default="text",
        help="the table as aligned text with totals (default), CSV or Markdown",
    )
    parser.add_argument(
        "--plot", metavar="FILE.png", help="draw memory occupancy, layer-wise vs depth-first"
    )
    args = parser.parse_args(argv)

    def body() -> int:
        options = replace(options_from(args), name=args.name)
        with model_path(args.model) as path:
            module = load_model(path)
        schedules = {
            schedule: lower(module, args.target, replace(options, schedule=schedule))
            for schedule in (SCHEDULES if args.plot else ())
        }
        plot = None
        if args.plot:  # drawn before anything is written, so a failure writes nothing
            if not Path(args.plot).absolute().parent.is_dir():
                raise DriverError(f"{args.plot}: no such directory")
            target = TARGETS[args.target]
            l1_budget = options.l1_bytes or target.l1.size
            title = (
                f"{args.model} on {args.target} (fuse-weights {options.fuse_weights}, "
                f"L1 budget {l1_budget:,} B, rows {options.rows})"
            )
            levels = (MemoryLevel.L1, MemoryLevel.L2)[-len(target.levels) :]
            capacities = {
                level: memory.size for level, memory in zip(levels, target.levels, strict=True)
            }
            try:
                plot = render_occupancy(schedules, title, capacities, plot_format(args.plot))
            except ValueError as error:  # matplotlib: a format it cannot write
                raise DriverError(f"{args.plot}: {error}") from None
        result = compile_model(
            schedules.get(options.schedule) or module,
            args.target,
            args.output,
            keep_stages=args.keep_stages,
            options=options,
        )
        if args.report:
            report = result.report
            print(format_layers(result.lowered.layers, args.report_format))
            if args.report_format == "text":
                print(_totals(report))
        if plot is not None:
            write_bytes_atomically(args.plot, plot)
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
