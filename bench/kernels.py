"""Attention kernels at the hardware limit: MHSA-only modules against the floor and against the
generic loops, measured in the same run.

    python bench/kernels.py [--out bench/results/kernels.md]

Three MHSA shapes (S/E/P/H: EEG 81/32/32/8, ECG 66/16/2/8, ATT 16/64/8/8), random weights with a
fixed seed, in f32 and quantized by tinyattn-quantize on 8 random calibration samples; each runs
on cortex-m4, cortex-m7 and rv32 in both schedules, with the target's kernels and with the
generic loop nests (the target's `kernels` set to `generic`: the code before micro-kernels),
and the bundled models the same way.
Instruction counts are exact (QEMU TCG plugin), every run matches its reference (int8 bit for
bit), and the floor is MACs / 2 (one SMLAD is two MACs).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from tinyattn.api import LowerOptions, run
from tinyattn.backend.targets import get_target
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import from_numpy
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.models.generate import calibration_set, spec_named

REPO = Path(__file__).resolve().parent.parent
SHAPES = {"EEG": (81, 32, 32, 8), "ECG": (66, 16, 2, 8), "ATT": (16, 64, 8, 8)}
TARGETS = ("cortex-m4", "cortex-m7", "rv32")
SCHEDULES = ("depth-first", "layerwise")
COMMAND = "make bench  (python bench/kernels.py)"
SEED = 7
CALIBRATION = 8


def mhsa_module(s: int, e: int, p: int, h: int, seed: int = SEED) -> ModuleOp:
    """`main(x [S, E]) -> mhsa(x)` with random weights (scaled so activations stay O(1))."""
    rng = np.random.default_rng(seed)
    block = Block(arg_types=[TensorType(f32, [s, e])])
    b = Builder(InsertPoint.at_end(block))

    def constant(*shape: int, scale: float):
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        return b.insert(arith.ConstantOp(from_numpy(data))).result

    weights = [(constant(h, e, p, scale=e**-0.5), constant(h, p, scale=0.1)) for _ in range(3)]
    out = (constant(h, p, e, scale=(h * p) ** -0.5), constant(e, scale=0.1))
    x = block.args[0]
    x.name_hint = "x"
    attention = b.insert(ta.MHSAOp(x, *weights, out, num_heads=h, scale=1 / math.sqrt(p)))
    b.insert(func.ReturnOp(attention.result))
    function = func.FuncOp("main", ([x.type], [x.type]), Region(block))
    return ModuleOp([function])


def quantized(module: ModuleOp, s: int, e: int) -> tuple[ModuleOp, list[np.ndarray]]:
    rng = np.random.default_rng(SEED)
    samples = [[rng.standard_normal((s, e)).astype(np.float32)] for _ in range(CALIBRATION)]
    int8 = q.quantize(module, samples)
    return int8, q.quantize_inputs(q.entry_function(int8), samples[-1])


def _run(source, target: str, kernels: str, schedule: str, inputs, profile: bool = False):
    """One run, checked against the reference."""
    chosen = dataclasses.replace(get_target(target), kernels=kernels)
    options = LowerOptions(schedule=schedule)
    report = run(source, target=chosen, inputs=inputs, options=options, profile=profile)
    if not report.match:
        sys.exit(f"{target} {schedule} {kernels}: a run does not match the reference")
    return report


# (shape label, precision, target, schedule) -> instructions with the target's kernels
MEASURED: dict[tuple[str, str, str, str], int] = {}
# The micro-kernel issue's goals, MHSA-only, default schedule: (shape, precision, target, bound)
GOALS = (
    ("EEG", "int8", "cortex-m4", 6_000_000),
    ("ECG", "int8", "cortex-m4", 800_000),
    ("ATT", "int8", "cortex-m4", 400_000),
    ("EEG", "int8", "rv32", 17_000_000),
    ("EEG", "f32", "cortex-m4", 12_000_000),
)
# Why a shape stays above its goal, from the profiler's split (the section below).
SHORTFALL = """\
- The int8 matmuls on the Cortex-Ms run at 0.65-0.85 MAC/instruction: 6 loads and 8 `SMLAD`s
  per 16 MACs in the block (0.875 instructions per MAC is the 4x2 block's floor: a 4-deep step
  or a larger block needs more than the 14 usable registers, and measured slower), LLVM's LICM
  hoisting the unrolled lhs block out of the column loop and spilling it, the requantization
  (about 4 instructions per output) and the widening (about 5 per 4 elements of a row).
  Reaching 1 MAC/instruction over the whole attention needs the inner loop below 0.7
  instructions per MAC, which the register file does not allow without hand-scheduled
  assembly.
- The integer softmax costs about 12 instructions per score (a score load, a subtraction, a
  table load, a store and an add for each exponential; a load, multiply, division and store for
  each probability; under one for the row maximum). It is half of ECG (P = 2: 2 MACs per score)
  and 8% of EEG. A reciprocal per row would replace each `udiv` (one instruction) by a
  multiply-high and a correction (three or more): fewer cycles, more instructions, so it is
  not done; QEMU counts instructions, not cycles.
- The cortex-m7 build is the same IR scheduled by LLVM for the M7's pipeline; in the shallow
  blocks of ECG and ATT that schedule takes more instructions (not necessarily more cycles).
- rv32 has no SIMD: each MAC is a `mul` and an `add` plus a share of the byte loads (about 2.9
  instructions per MAC in the 4x2 block), and each clip of a requantization is a branch.
"""


def _compare(label: str, precision: str, source, inputs, schedules=SCHEDULES) -> list[str]:
    """A row per target and schedule: generic loops against the target's kernels."""
    rows = []
    for target in TARGETS:
        for schedule in schedules:
            ours = _run(source, target, get_target(target).kernels, schedule, inputs)
            generic = _run(source, target, "generic", schedule, inputs).instructions
            count, macs = ours.instructions, ours.macs
            MEASURED[label.split()[0], precision, target, schedule] = count
            print(label, precision, target, schedule, generic, count, file=sys.stderr)
            rows.append(
                f"| {label} | {precision} | {target} | {schedule} | {macs:,} | {generic:,} | "
                f"{count:,} | {generic / count:.2f}x | {macs / count:.3f} | "
                f"{count / (macs / 2):.1f}x |"
            )
    return rows


def _split(label: str, precision: str, source, inputs) -> list[str]:
    """The profiler's split of the default schedule on cortex-m4, most expensive first."""
    report = _run(source, "cortex-m4", "thumbv7em", "depth-first", inputs, profile=True)
    rows = []
    for row in sorted(report.profile, key=lambda r: -r.instructions)[:6]:
        rate = f"{row.mac_per_instruction:.3f}" if row.macs else "-"
        rows.append(
            f"| {label} | {precision} | {row.kernel} | {row.calls:,} | {row.macs:,} | "
            f"{row.instructions:,} | {rate} | {100 * row.share:.1f}% |"
        )
    return rows


def measure() -> tuple[list[str], list[str], list[str]]:
    """The MHSA shapes (comparison, split) and the bundled models (comparison)."""
    shapes, splits, models = [], [], []
    for shape, (s, e, p, h) in SHAPES.items():
        module = mhsa_module(s, e, p, h)
        int8, int8_inputs = quantized(module, s, e)
        label = f"{shape} {s}/{e}/{p}/{h}"
        for precision, source, inputs in (("int8", int8, int8_inputs), ("f32", module, None)):
            shapes += _compare(label, precision, source, inputs)
            splits += _split(label, precision, source, inputs)
    for model in ("ecg", "radar", "eeg", "cct"):
        path = REPO / "models" / f"{model}.onnx"
        samples = [[x] for x in calibration_set(spec_named(model), CALIBRATION)["x"]]
        int8 = q.quantize(import_model(path), samples)
        int8_inputs = q.quantize_inputs(q.entry_function(int8), samples[-1])
        for precision, source, inputs in (("int8", int8, int8_inputs), ("f32", path, None)):
            models += _compare(model, precision, source, inputs, ("depth-first",))
    return shapes, splits, models


def goals() -> list[str]:
    """Each goal against its measurement, and cortex-m7 against cortex-m4 per shape (int8)."""
    rows = []
    for shape, precision, target, bound in GOALS:
        count = MEASURED[shape, precision, target, "depth-first"]
        verdict = "met" if count <= bound else f"{count / bound - 1:+.0%} over"
        rows.append(f"| {shape} {precision} on {target} | <= {bound:,} | {count:,} | {verdict} |")
    for shape in SHAPES:
        m4, m7 = (MEASURED[shape, "int8", t, "depth-first"] for t in ("cortex-m4", "cortex-m7"))
        verdict = "met" if m7 <= 1.1 * m4 else f"{m7 / m4 - 1:+.0%} vs cortex-m4"
        rows.append(f"| {shape} int8 on cortex-m7 | within 10% of {m4:,} | {m7:,} | {verdict} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/kernels.md")
    args = parser.parse_args()
    shapes, splits, models = measure()
    header = (
        "| {what} | precision | target | schedule | MACs | generic loops | target kernels | "
        "speed-up | MAC/instr | x floor |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    text = "\n".join(
        [
            "# Attention kernels",
            "",
            f"Reproduce with `{COMMAND}`. {__doc__.split(chr(10) + chr(10))[2]}",
            "",
            "## Goals (MHSA-only, default schedule: depth-first)",
            "",
            "| goal | bound | instructions | |",
            "|---|---:|---:|---|",
            *goals(),
            "",
            "Where a goal is not met:",
            "",
            SHORTFALL,
            "## MHSA-only modules",
            "",
            header.format(what="shape S/E/P/H"),
            *shapes,
            "",
            "## Where the instructions go (`tinyattn-run --profile`, cortex-m4, depth-first)",
            "",
            "| shape | precision | kernel | calls | MACs | instructions | MAC/instr | share |",
            "|---|---|---|---:|---:|---:|---:|---:|",
            *splits,
            "",
            "## Bundled models (default schedule; int8 quantized on 8 calibration samples)",
            "",
            header.format(what="model"),
            *models,
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
