"""`fuse-weights`: Fused-Weight Self-Attention (FWSA), `tinyattn.mhsa` -> `tinyattn.fused_mhsa`.

Per head the scores `(X Wq + bq)(X Wk + bk)^T` equal `(X Wq + bq) Wk^T X^T` plus a term that is
constant along each row, `(X Wq + bq) bk^T`, which the softmax removes. Fusing offline
`Wqk = s Wq Wk^T` [E, E] and `bqk = s bq Wk^T` [E] (s: the score scale) gives the scores
`(X Wqk + bqk) X^T`: K is never computed. It pays when it lowers MACs and parameters
(`dialects/cost.py`: per head, E (E + S) < P (2E + S) and E < 2P). `mode=auto` fuses only then,
`always` wherever it is exact, `never` nowhere; `remarks=true` explains every decision on stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.cost import attention_macs, attention_params
from tinyattn.dialects.dense import from_numpy, to_numpy

MODES = ("auto", "always", "never")


def _constant(value: SSAValue) -> np.ndarray | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, DenseIntOrFPElementsAttr):
        return to_numpy(owner.value)
    return None


def fused_weights(
    wq: np.ndarray, bq: np.ndarray, wk: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """`Wqk[h] = s Wq[h] Wk[h]^T`, `bqk[h] = s bq[h] Wk[h]^T`, computed in float64."""
    wq, bq, wk = (np.asarray(a, np.float64) for a in (wq, bq, wk))
    wqk = scale * np.einsum("hep,hfp->hef", wq, wk)
    bqk = scale * np.einsum("hp,hfp->hf", bq, wk)
    return wqk.astype(np.float32), bqk.astype(np.float32)


@dataclass(frozen=True)
class Decision:
    fuse: bool
    reason: str


def decide(op: ta.MHSAOp, mode: str) -> Decision:
    """Whether to fuse `op`, and why (the remark)."""
    if mode == "never":
        return Decision(False, "not fused: mode=never")
    if op.is_integer():
        return Decision(False, "not fused: int8 attention needs re-quantized Wqk/bqk")
    if any(_constant(v) is None for v in (op.wq, op.bq, op.wk)):
        return Decision(False, "not fused: Wq, bq and Wk must be constants")
    bk = _constant(op.bk)
    if op.normalization.data != ta.SOFTMAX and (bk is None or np.any(bk != 0)):
        return Decision(False, "not fused: without softmax the key bias does not cancel")
    s, e, p, h = op.dims()
    macs = (attention_macs(s, e, p, h, fused=False), attention_macs(s, e, p, h, fused=True))
    params = (attention_params(e, p, h, fused=False), attention_params(e, p, h, fused=True))
    numbers = (
        f"MACs {macs[0]:,} -> {macs[1]:,}, params {params[0]:,} -> {params[1]:,} "
        f"(S={s} E={e} P={p} H={h})"
    )
    if mode == "always":
        return Decision(True, f"fused (mode=always): {numbers}")
    if macs[1] < macs[0] and params[1] <= params[0]:
        return Decision(True, f"fused: {numbers}")
    return Decision(False, f"not fused, it does not pay: {numbers}")


@dataclass
class _FuseAttention(RewritePattern):
    mode: str
    remarks: bool
    count: int = 0

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ta.MHSAOp, rewriter: PatternRewriter) -> None:
        decision = decide(op, self.mode)
        if self.remarks:
            name = f"%{op.result.name_hint}" if op.result.name_hint else f"#{self.count}"
            print(f"remark: fuse-weights: tinyattn.mhsa {name}: {decision.reason}", file=sys.stderr)
        self.count += 1
        if not decision.fuse:
            return
        scale = op.scale.value.data
        wqk, bqk = fused_weights(_constant(op.wq), _constant(op.bq), _constant(op.wk), scale)
        constants = [arith.ConstantOp(from_numpy(wqk)), arith.ConstantOp(from_numpy(bqk))]
        constants[0].result.name_hint, constants[1].result.name_hint = "wqk", "bqk"
        rewriter.insert(constants)
        fused = ta.FusedMHSAOp(
            op.x,
            (constants[0].result, constants[1].result),
            (op.wv, op.bv),
            (op.wo, op.bo),
            num_heads=op.heads,
            result_type=op.result.type,
            properties={"normalization": op.normalization},
        )
        rewriter.replace(op, fused)
        _erase_if_unused(rewriter, (op.wq, op.bq, op.wk, op.bk))


def _erase_if_unused(rewriter: PatternRewriter, values: tuple[SSAValue, ...]) -> None:
    """Drop the Q/K weights the fused op no longer needs (each once; they may be shared)."""
    for owner in dict.fromkeys(v.owner for v in values):
        if isinstance(owner, Operation) and not any(r.uses for r in owner.results):
            rewriter.erase(owner)


@dataclass(frozen=True)
class FuseWeights(ModulePass):
    """FWSA with a cost model: `mode=auto|always|never`, `remarks=true` to see each decision."""

    name = "fuse-weights"

    mode: str = "auto"
    remarks: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.mode not in MODES:
            raise PassFailedException(
                f"fuse-weights: mode must be one of {', '.join(MODES)}, got '{self.mode}'"
            )
        walker = PatternRewriteWalker(
            _FuseAttention(self.mode, self.remarks), apply_recursively=False
        )
        walker.rewrite_module(op)
