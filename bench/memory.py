"""Activation peak and DMA traffic: depth-first tiling against the layer-by-layer schedule.

    python bench/memory.py [--out bench/results/memory.md]

Per model on cortex-m7 (L1 = 128 KiB DTCM, L2 = 512 KiB SRAM): the activation peak (the largest
total of live activation bytes, all levels, weights excluded) of the two schedules, both tiled
through the same L1 with `rows=auto` (layer-wise-tile and depth-first-tile), each with and without
FWSA; then the rows-per-block trade-off of EEG (peak vs exact instructions vs DMA bytes). Every run
is checked against the reference, and its measured DMA bytes against the planned ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyattn.api import LowerOptions, run

REPO = Path(__file__).resolve().parent.parent
TARGET = "cortex-m7"
COMMAND = "make bench  (python bench/memory.py)"


def _run(model: str, **options) -> dict:
    report = run(REPO / "models" / f"{model}.onnx", target=TARGET,
                 options=LowerOptions(**options)).as_dict()  # fmt: skip
    if not report["match"]:
        sys.exit(f"{model} with {options} does not match the reference")
    if report["dma_bytes"] != report["planned_dma_bytes"]:
        sys.exit(f"{model} with {options} moved other DMA bytes than planned")
    print(model, options, report["activation_peak_bytes"], file=sys.stderr)
    return report


def peaks() -> list[str]:
    rows = []
    for model in ("ecg", "radar", "eeg"):
        for fuse in ("never", "auto"):
            layerwise = _run(model, schedule="layerwise", fuse_weights=fuse)
            tiled = _run(model, schedule="depth-first", fuse_weights=fuse)
            rows.append(
                f"| {model} | {fuse} | {layerwise['activation_peak_bytes']:,} | "
                f"{tiled['activation_peak_bytes']:,} | "
                f"{layerwise['activation_peak_bytes'] / tiled['activation_peak_bytes']:.2f}x | "
                f"{layerwise['instructions']:,} | {tiled['instructions']:,} | "
                f"{layerwise['dma_bytes']:,} | {tiled['dma_bytes']:,} |"
            )
    return rows


def trade_off() -> list[str]:
    layerwise = _run("eeg", schedule="layerwise", fuse_weights="never")["activation_peak_bytes"]
    rows = []
    for block in ("81", "27", "9", "3", "1"):
        for fuse in ("never", "auto"):
            r = _run("eeg", schedule="depth-first", fuse_weights=fuse, rows=block)
            arenas = ", ".join(f"{level} {size:,}" for level, size in r["arena_bytes"].items())
            rows.append(
                f"| {block} | {fuse} | {r['activation_peak_bytes']:,} ({arenas}) | "
                f"{layerwise / r['activation_peak_bytes']:.2f}x | {r['instructions']:,} | "
                f"{r['dma_bytes']:,} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/memory.md")
    args = parser.parse_args()
    text = "\n".join(
        [
            "# Activation peak: depth-first vs layer-wise tiling, f32, cortex-m7",
            "",
            f"Reproduce with `{COMMAND}`. Peak: the largest total of live activation bytes over",
            "the schedule, all memory levels together, weights excluded (from the memory plan).",
            "Instructions: exact counts under QEMU. Every run matched the numpy reference.",
            "",
            "| model | FWSA | layer-wise peak (B) | depth-first peak (B) | ratio | layer-wise "
            "instructions | depth-first instructions | layer-wise DMA bytes | "
            "depth-first DMA bytes |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *peaks(),
            "",
            "## EEG (S=81 E=32 P=32 H=8): query rows per depth-first block",
            "",
            "The ratio is against the layer-wise peak without FWSA (rows=auto).",
            "",
            "| rows | FWSA | peak (B) (arenas) | ratio | instructions | DMA bytes |",
            "|---:|---|---|---:|---:|---:|",
            *trade_off(),
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
