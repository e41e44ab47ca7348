"""int8 next to f32: instructions, MAC/instruction and activation peak per model and target.

    python bench/int8.py [--out bench/results/int8.md]

Each bundled model runs in f32 and quantized by tinyattn-quantize (on the first 8 samples of its
calibration set), in the default schedule (depth-first, FWSA where the cost model says it pays).
Instruction counts are exact (QEMU TCG plugin); every run is checked against the reference (int8
bit for bit), and a mismatch fails the benchmark.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyattn.api import run
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.models.generate import calibration_set, spec_named

REPO = Path(__file__).resolve().parent.parent
MODELS = ("ecg", "radar", "eeg")
TARGETS = ("cortex-m4", "cortex-m7", "rv32")
COMMAND = "make bench  (python bench/int8.py)"
CALIBRATION = 8


def _checked(source, target: str, **kwargs) -> dict:
    report = run(source, target=target, **kwargs).as_dict()
    if not report["match"]:
        sys.exit(f"{target}: a run does not match the reference")
    return report


def measure() -> list[str]:
    rows = []
    for model in MODELS:
        path = REPO / "models" / f"{model}.onnx"
        samples = [[x] for x in calibration_set(spec_named(model), CALIBRATION)["x"]]
        quantized = q.quantize(import_model(path), samples)
        inputs = q.quantize_inputs(q.entry_function(quantized), samples[-1])
        for target in TARGETS:
            f32 = _checked(path, target)
            int8 = _checked(quantized, target, inputs=inputs)
            print(model, target, f32["instructions"], int8["instructions"], file=sys.stderr)
            rows.append(
                f"| {model} | {target} | {f32['instructions']:,} | {int8['instructions']:,} | "
                f"{f32['instructions'] / int8['instructions']:.2f}x | "
                f"{f32['mac_per_instruction']:.3f} | {int8['mac_per_instruction']:.3f} | "
                f"{f32['activation_peak_bytes']:,} | {int8['activation_peak_bytes']:,} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/int8.md")
    args = parser.parse_args()
    text = "\n".join(
        [
            "# int8 vs f32: instructions and activation peak",
            "",
            f"Reproduce with `{COMMAND}`. Default schedule (depth-first through the target's L1,",
            "FWSA where it pays). Instructions: exact counts of the entry function under QEMU;",
            "every run matched its reference (int8 bit-exact).",
            "",
            "| model | target | f32 instructions | int8 instructions | speed-up | f32 MAC/instr | "
            "int8 MAC/instr | f32 peak (B) | int8 peak (B) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *measure(),
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
