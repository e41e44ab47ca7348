"""Fused-weight self-attention against the unfused baseline, measured in the same run.

    python bench/fwsa.py [--out bench/results/fwsa.md]

Per model and target: attention parameters and whole-model weight bytes, and exact instruction
counts, with FWSA forced on (`always`) and off (`never`), plus what `auto` (the cost model)
picks. Both schedules are the layer-by-layer baseline; every run is checked against the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyattn.api import LowerOptions, run
from tinyattn.dialects.tinyattn import MHSAOp
from tinyattn.frontend.onnx_import import import_model
from tinyattn.passes.fuse_weights import decide
from tinyattn.semantics.cost import attention_params

REPO = Path(__file__).resolve().parent.parent
MODELS = ("ecg", "radar", "eeg")
TARGETS = ("cortex-m4", "cortex-m7", "rv32")
COMMAND = "make bench  (python bench/fwsa.py)"


def _attention(model: str) -> tuple[MHSAOp, str]:
    """The first attention of the model and what the cost model decides for it."""
    op = next(op for op in import_model(REPO / "models" / f"{model}.onnx").walk()
              if isinstance(op, MHSAOp))  # fmt: skip
    return op, "fuse" if decide(op, "auto").fuse else "keep"


def _run(model: str, target: str, mode: str) -> dict:
    options = LowerOptions(fuse_weights=mode, schedule="layerwise")
    report = run(REPO / "models" / f"{model}.onnx", target=target, options=options).as_dict()
    if not report["match"]:
        sys.exit(f"{model} on {target} with fuse-weights={mode} does not match the reference")
    return report


def measure() -> list[str]:
    rows = []
    for model in MODELS:
        op, auto = _attention(model)
        s, e, p, h = op.dims()
        unfused, fused = (attention_params(e, p, h, fused=f) for f in (False, True))
        for target in TARGETS:
            never, always = _run(model, target, "never"), _run(model, target, "always")
            weights = f"{never['params_bytes']:,} -> {always['params_bytes']:,}"
            rows.append(
                f"| {model} | S={s} E={e} P={p} H={h} | {target} | {unfused:,} -> {fused:,} "
                f"({fused / unfused:.3f}x) | {weights} "
                f"| {never['instructions']:,} -> {always['instructions']:,} "
                f"({never['instructions'] / always['instructions']:.2f}x speed-up) | {auto} |"
            )
            print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/fwsa.md")
    args = parser.parse_args()
    header = (
        "| model | shape | target | attention params (per block) | model weight bytes "
        "| instructions unfused -> fused | auto |\n|---|---|---|---|---|---|---|"
    )
    text = (
        "# Fused-weight self-attention (FWSA), f32, layer-by-layer schedule\n\n"
        f"Reproduce with `{COMMAND}`. Left of each arrow: unfused (`--fuse-weights never`);\n"
        "right: fused (`always`). `auto` is the cost model's choice (fuse where it lowers MACs\n"
        "and parameters). Instructions: exact counts under QEMU; every run matched the\n"
        "reference.\n\n"
        f"{header}\n" + "\n".join(measure()) + "\n"
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
