"""The upstream half of code generation: a memref-level module to a target object file.

    xDSL (generic MLIR) -> mlir-opt-22 -> llvm dialect -> mlir-translate-22 -> LLVM IR
        -> opt-22 -O2 -> llc-22 -> model.o

xDSL prints the module in generic form, which upstream MLIR parses whatever custom syntax xDSL
uses. opt-22 gets the target's triple, cpu and features: the translated module carries neither
triple nor data layout, and without them opt assumes 64-bit pointers and widens every 32-bit
address computation to i64. llc-22 runs no IR optimization of its own (docs/architecture.md).
"""

from __future__ import annotations

import io
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from tinyattn.backend import toolchain
from tinyattn.backend.targets import Target

# The mlir-opt-22 pipeline from memref/scf/arith/math to the llvm dialect, in order; `{index}` is
# the target's index width. Every conversion gets it explicitly (--convert-to-llvm would ignore
# it). Math goes to polynomials first: the boards have no libm, and the few rounding libcalls
# that remain (floorf, ...) come from the runtime. Bare-pointer memrefs give C signatures.
MLIR_OPT_PASSES = (
    "--test-math-polynomial-approximation",
    "--expand-strided-metadata",  # subviews -> affine address arithmetic, so before lower-affine
    "--lower-affine",
    "--convert-scf-to-cf",
    "--canonicalize",
    "--cse",
    "--finalize-memref-to-llvm=index-bitwidth={index}",
    "--convert-math-to-llvm",
    "--convert-arith-to-llvm=index-bitwidth={index}",
    "--convert-index-to-llvm=index-bitwidth={index}",
    "--convert-cf-to-llvm=index-bitwidth={index}",
    "--convert-func-to-llvm=index-bitwidth={index} use-bare-ptr-memref-call-conv=1",
    "--convert-ub-to-llvm=index-bitwidth={index}",
    "--reconcile-unrealized-casts",
)

# The file names of the upstream stages, in pipeline order (kept with keep_stages=True): the
# lowered module, the LLVM dialect, LLVM IR, optimized LLVM IR, assembly, and the commands
# that made them as a script the user can re-run in the directory.
STAGES = ("0-memref.mlir", "1-llvm.mlir", "2-model.ll", "3-model.opt.ll", "4-model.s")
STAGES_SCRIPT = "stages.sh"


@dataclass(frozen=True)
class Artifacts:
    """What lower_to_object produced: the object, its LLVM IR, and the stages if kept."""

    obj: Path
    ll: Path
    code_bytes: int  # size of the object's .text sections
    stages: tuple[Path, ...]
    stack_bytes: int  # the entry function's stack frame


def mlir_opt_args(target: Target) -> list[str]:
    return [flag.format(index=target.index_bitwidth) for flag in MLIR_OPT_PASSES]


def opt_args(target: Target) -> list[str]:
    """opt-22 flags: -O2 plus llc's target description (triple, cpu, features, float ABI), from
    which opt infers the data layout and gets the target's cost model."""
    return [*target.codegen_args, "-O2"]


def generic_mlir(module: ModuleOp) -> str:
    text = io.StringIO()
    Printer(stream=text, print_generic_format=True).print_op(module)
    text.write("\n")
    return text.getvalue()


def code_bytes(obj: Path) -> int:
    """Total size of the .text sections of an object, from `llvm-size-22 -A` (SysV format)."""
    out = toolchain.execute([toolchain.tool("llvm-size-22"), "-A", str(obj)], f"reading {obj.name}")
    return sum(
        int(fields[1])
        for fields in (line.split() for line in out.stdout.splitlines())
        if len(fields) >= 2 and fields[0].startswith(".text") and fields[1].isdigit()
    )


def _script(commands: list[list[str]], target: Target) -> str:
    """The upstream commands as a shell script that re-runs them from 0-memref.mlir."""
    lines = [
        "#!/bin/sh",
        f"# The upstream half of tinyattn's pipeline for {target.name}, from 0-memref.mlir:",
        "# run it in this directory to remake every later stage and model.o.",
        "set -e",
        *(" ".join(shlex.quote(arg) for arg in command) for command in commands),
    ]
    return "\n".join(lines) + "\n"


def lower_to_object(
    module: ModuleOp, entry: str, target: Target, out_dir: Path, keep_stages: bool = False
) -> Artifacts:
    """Compile the memref-level `module` (entry function `entry`) into out_dir/model.o and
    out_dir/model.ll (the optimized LLVM IR that llc compiled); with keep_stages, also every
    intermediate named in STAGES.

    A failing tool raises a one-line ToolchainError naming it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tinyattn-pipeline-") as scratch:
        memref_mlir, llvm_mlir, ll, opt_ll, asm = STAGES
        (Path(scratch) / memref_mlir).write_text(generic_mlir(module))
        steps = (
            ("mlir-opt-22", *mlir_opt_args(target), memref_mlir, "-o", llvm_mlir),
            ("mlir-translate-22", "--mlir-to-llvmir", llvm_mlir, "-o", ll),
            ("opt-22", *opt_args(target), "-S", ll, "-o", opt_ll),
        )
        # Run in the scratch directory so that diagnostics name the stage file (as kept by
        # keep_stages), not a temporary path.
        for name, *args in steps:
            toolchain.execute(
                [toolchain.tool(name), *args], f"lowering {entry}", cwd=scratch
            )
        optimized = Path(scratch) / opt_ll
        obj = toolchain.compile_ll(target, optimized, out_dir / "model.o")
        shutil.copyfile(optimized, out_dir / "model.ll")
        stages = ()
        if keep_stages:
            llc = toolchain.llc_command(target, opt_ll, asm, fmt="asm")
            toolchain.execute(llc, f"writing the assembly of {entry}", cwd=scratch)
            llc_obj = toolchain.llc_command(target, opt_ll, "model.o")
            commands = [[toolchain.tool(name), *args] for name, *args in steps] + [llc, llc_obj]
            (Path(scratch) / STAGES_SCRIPT).write_text(_script(commands, target))
            names = (*STAGES, STAGES_SCRIPT)
            stages = tuple(Path(shutil.copy(Path(scratch) / name, out_dir)) for name in names)
    stack = toolchain.stack_sizes(obj).get(entry, 0)
    return Artifacts(obj, out_dir / "model.ll", code_bytes(obj), stages, stack)
