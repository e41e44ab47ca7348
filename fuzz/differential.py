"""A differential fuzzer: random encoder blocks, compiled and run, against the reference.

    python -m tinyattn.fuzz.differential [--seed N] [--cases N] [--out DIR]   (make fuzz)

Each case is an attention block (optionally behind a layer norm) of random shape and weights,
in f32 or int8 (quantized by the compiler's own quantizer on random calibration data),
compiled for a random target with a random schedule, weight fusion and L1 budget, and run
(QEMU, or natively on the host) against the numpy reference (`tinyattn.api.run`). Hypothesis
draws the cases. An outcome is a match, a refusal (a one-line diagnostic: a budget that cannot
fit, a model the quantizer cannot represent), a mismatch, or a crash (any other exception, or
a diagnostic of more than one line); the last two are failures, and the campaign writes a
reproducer script for each into `--out`. `test/test_fuzz.py` runs a fixed-seed slice.
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from xdsl.builder import Builder
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from tinyattn.api import LowerOptions, run
from tinyattn.backend.toolchain import ToolchainError
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import from_numpy
from tinyattn.driver.run import DriverError
from tinyattn.frontend import quantize as q

TARGETS = ("host", "cortex-m4", "cortex-m7", "rv32")
SCHEDULES = ("depth-first", "layerwise")
FUSION = ("auto", "always", "never")
REFUSALS = (DriverError, ToolchainError, q.QuantizeError)


@dataclass(frozen=True)
class Case:
    """One random configuration; `seed` draws its weights and inputs."""

    seq: int
    embed: int
    heads: int
    head_dim: int
    layernorm: bool
    weight_scale: float
    precision: str
    target: str
    schedule: str
    fusion: str
    l1_bytes: int | None
    seed: int


def cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        seq=st.integers(1, 40),
        embed=st.integers(2, 48),
        heads=st.integers(1, 4),
        head_dim=st.integers(1, 16),
        layernorm=st.booleans(),
        weight_scale=st.sampled_from([0.5, 1.0, 3.0]),
        precision=st.sampled_from(["f32", "int8"]),
        target=st.sampled_from(TARGETS),
        schedule=st.sampled_from(SCHEDULES),
        fusion=st.sampled_from(FUSION),
        l1_bytes=st.one_of(st.none(), st.integers(1024, 96 * 1024)),
        seed=st.integers(0, 2**16),
    )


def build(case: Case) -> tuple[ModuleOp, list[np.ndarray]]:
    """`main(x [S, E]) -> mhsa(layernorm?(x))` with random weights, and an input."""
    rng = np.random.default_rng(case.seed)
    s, e, h, p = case.seq, case.embed, case.heads, case.head_dim
    block = Block(arg_types=[TensorType(f32, [s, e])])
    b = Builder(InsertPoint.at_end(block))

    def constant(*shape: int, scale: float):
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        return b.insert(arith.ConstantOp(from_numpy(data))).result

    x = block.args[0]
    x.name_hint = "x"
    if case.layernorm:
        gamma, beta = constant(e, scale=1.0), constant(e, scale=0.1)
        x = b.insert(ta.LayerNormOp(x, gamma, beta, epsilon=1e-5)).result
    weights = [
        (constant(h, e, p, scale=case.weight_scale * e**-0.5), constant(h, p, scale=0.1))
        for _ in range(3)
    ]
    out = (constant(h, p, e, scale=case.weight_scale * (h * p) ** -0.5), constant(e, scale=0.1))
    attention = b.insert(ta.MHSAOp(x, *weights, out, num_heads=h, scale=1 / math.sqrt(p)))
    b.insert(func.ReturnOp(attention.result))
    argument = block.args[0].type
    module = ModuleOp([func.FuncOp("main", ([argument], [argument]), Region(block))])
    return module, [rng.standard_normal((s, e)).astype(np.float32)]


@dataclass(frozen=True)
class Outcome:
    kind: str  # match, refused, mismatch, crash
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.kind in ("mismatch", "crash")


def check(case: Case) -> Outcome:
    """Compile and run `case` against its reference."""
    try:
        module, inputs = build(case)
        if case.precision == "int8":
            rng = np.random.default_rng(case.seed + 1)
            samples = [[rng.standard_normal(inputs[0].shape).astype(np.float32)] for _ in range(4)]
            module = q.quantize(module, [*samples, inputs])
            inputs = q.quantize_inputs(q.entry_function(module), inputs)
        options = LowerOptions(
            schedule=case.schedule, fuse_weights=case.fusion, l1_bytes=case.l1_bytes
        )
        report = run(module, target=case.target, inputs=inputs, options=options)
    except REFUSALS as error:
        message = str(error)
        if "\n" in message.strip() or not message.strip():
            return Outcome("crash", f"a refusal of {len(message.splitlines())} lines: {message}")
        return Outcome("refused", message)
    except Exception:
        return Outcome("crash", traceback.format_exc())
    if report.match:
        return Outcome("match")
    return Outcome(
        "mismatch",
        f"max abs error {report.max_abs_error:.3g}, max rel error {report.max_rel_error:.3g}",
    )


def reproducer(case: Case, outcome: Outcome) -> str:
    """A script that runs `case` again and prints its outcome."""
    detail = "\n".join(f"# {line}" for line in outcome.detail.splitlines()[-20:])
    return (
        f"# tinyattn fuzz reproducer: {outcome.kind}\n{detail}\n"
        "from tinyattn.fuzz.differential import Case, check\n\n"
        f"print(check(Case(**{asdict(case)!r})))\n"
    )


def campaign(seed: int, count: int, out: Path) -> Counter[str]:
    """Run `count` cases drawn from `seed`; a reproducer per failure into `out`."""
    outcomes: Counter[str] = Counter()

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases())
    def explore(case: Case) -> None:
        outcome = check(case)
        outcomes[outcome.kind] += 1
        print(f"{sum(outcomes.values()):>5} {outcome.kind:<8} {case}", flush=True)
        if outcome.failed:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{outcome.kind}-{sum(outcomes.values())}.py"
            path.write_text(reproducer(case, outcome))

    explore()
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the campaign's seed (default 0)")
    parser.add_argument("--cases", type=int, default=200, help="how many cases (default 200)")
    parser.add_argument(
        "--out", type=Path, default=Path("fuzz-failures"), help="where reproducers go"
    )
    args = parser.parse_args(argv)
    outcomes = campaign(args.seed, args.cases, args.out)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(outcomes.items()))
    failures = outcomes["mismatch"] + outcomes["crash"]
    print(f"{sum(outcomes.values())} cases: {summary}")
    if failures:
        print(f"{failures} failures; reproducers in {args.out}/", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
