"""`fuse-weights`: Fused-Weight Self-Attention (FWSA), `tinyattn.mhsa` -> `tinyattn.fused_mhsa`.

Per head the scores `(X Wq + bq)(X Wk + bk)^T` equal `(X Wq + bq) Wk^T X^T` plus a term that is
constant along each row, `(X Wq + bq) bk^T`, which the softmax removes. Fusing offline
`Wqk = s Wq Wk^T` [E, E] and `bqk = s bq Wk^T` [E] (s: the score scale) gives the scores
`(X Wqk + bqk) X^T`: K is never computed. It pays when it lowers MACs and parameters
(`semantics/cost.py`: per head, E (E + S) < P (2E + S) and E < 2P). `mode=auto` fuses only then,
`always` wherever it is exact, `never` nowhere; `remarks=true` explains every decision on stderr.

In int8 the product is re-quantized. With the requantizations written as real multipliers
(`m = mul / 2^shift`, per tensor or per channel), `q ~ m_q (X Wq + bq) + a_q` and likewise k, the
score accumulator is `G X^T` plus a row constant, where `G = X A + c`,
`A = Wq diag(m_q m_k) Wk^T` and `c = (m_q bq + a_q) diag(m_k) Wk^T`. Wqk is A in int8 (one scale
for all heads, as the op has one requantization), bqk is c at that scale in int32; `qk_requant`
maps the int32 product onto the int8 range using the bound |G| <= 128 sum_p |m_k Wk| (q is int8),
so it never clips; `score_requant` absorbs the scale change. Rounding (and scores that clipped in
the unfused op) make the fused result approximate: `remarks=true` states its deviation from the
unfused int8 attention on random inputs.
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
from tinyattn.dialects.annotations import ONNX_NODE_ATTR
from tinyattn.dialects.dense import from_numpy, to_numpy
from tinyattn.semantics import reference as ref
from tinyattn.semantics.cost import attention_macs, attention_params

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
class FusedInt8:
    wqk: np.ndarray  # int8 [H, E, E]
    bqk: np.ndarray  # int32 [H, E]
    qk_requant: ta.RequantAttr
    score_requant: ta.RequantAttr


def _real(requant: ta.RequantAttr) -> tuple[np.ndarray, np.ndarray]:
    """The requantization as a real multiplier and offset (per tensor or per channel)."""
    div = float(2**requant.shift.data)
    mul = np.asarray(requant.mul.get_values(), np.float64)
    return mul / div, np.asarray(requant.add.get_values(), np.float64) / div


def _requant(multiplier: np.ndarray, offset: np.ndarray, acc_bound: float) -> ta.RequantAttr:
    """`reference.requant_for` as an attribute, its failure a pass diagnostic."""
    try:
        requant = ref.requant_for(multiplier, acc_bound, offset)
    except ValueError as error:
        raise PassFailedException(f"fuse-weights: {error}") from None
    return ta.RequantAttr(requant.mul, requant.add, requant.shift)


def fused_weights_int8(op: ta.MHSAOp) -> FusedInt8:
    """Wqk, bqk and the two requantizations of the int8 fused attention (module docstring)."""
    wq, bq, wk = (_constant(v).astype(np.float64) for v in (op.wq, op.bq, op.wk))
    m_q, a_q = _real(op.q_requant)
    m_k, _ = _real(op.k_requant)
    m_s, a_s = _real(op.score_requant)
    a = np.einsum("hep,p,hfp->hef", wq, np.broadcast_to(m_q * m_k, wq.shape[-1:]), wk)
    c = np.einsum("hp,hfp->hf", (m_q * bq + a_q) * m_k, wk)
    weight_scale = np.abs(a).max() / 127
    wqk = np.round(a / weight_scale).astype(np.int8)
    bqk = np.round(c / weight_scale)
    if np.abs(bqk).max() >= 2**31:
        raise PassFailedException("fuse-weights: the fused int8 bias does not fit int32")
    s, e, _, _ = op.dims()
    g_bound = 128 * np.abs(m_k * wk).sum(axis=2).max()  # |G| <= 128 sum_p |m_k Wk| (int8 q)
    x_bound = 255 if op.x.type.get_element_type() == ta.ui8 else 128
    qk_acc = x_bound * np.abs(wqk.astype(np.int64)).sum(axis=1).max() + np.abs(bqk).max()
    qk_requant = _requant(127 * weight_scale / g_bound, np.zeros(1), qk_acc)
    m_qk, _ = _real(qk_requant)
    # scores_acc ~ G X^T = (weight_scale / m_qk) qk X^T: the score requant absorbs that factor
    score_requant = _requant(m_s * weight_scale / m_qk[0], a_s, 128 * x_bound * e)
    return FusedInt8(wqk, bqk.astype(np.int32), qk_requant, score_requant)


def int8_deviation(op: ta.MHSAOp, fused: ta.FusedMHSAOp, samples: int = 8) -> str:
    """How far the fused int8 attention is from the unfused one on random int8 inputs."""
    from tinyattn.dialects.dense import numpy_dtype
    from tinyattn.semantics.interpreter import attention_quant

    rng = np.random.default_rng(0)
    x_dtype = numpy_dtype(op.x.type.get_element_type())
    out_dtype = numpy_dtype(op.result.type.get_element_type())
    info = np.iinfo(x_dtype)
    common = {"softmax_scores": op.normalization.data == ta.SOFTMAX, "out_dtype": out_dtype}
    rest = [_constant(value) for value in (op.wv, op.bv, op.wo, op.bo)]
    score_weights = [_constant(value) for value in (op.wq, op.bq, op.wk, op.bk)]
    qk_weights = [_constant(value) for value in (fused.wqk, fused.bqk)]
    diffs = []
    for _ in range(samples):
        x = rng.integers(info.min, info.max, op.x.type.get_shape(), x_dtype, endpoint=True)
        unfused = ref.mhsa(
            x, *score_weights, *rest, scale=None, quant=attention_quant(op), **common
        )
        ours = ref.fused_mhsa(x, *qk_weights, *rest, quant=attention_quant(fused), **common)
        diffs.append(np.abs(ours.astype(np.int64) - unfused.astype(np.int64)))
    diff = np.stack(diffs)
    return (
        f"int8 re-quantized: output deviation from the unfused int8 attention on {samples} "
        f"random inputs: max {diff.max()} LSB, mean {diff.mean():.3f} LSB, "
        f"{(diff == 0).mean():.1%} exact"
    )


@dataclass(frozen=True)
class Decision:
    fuse: bool
    reason: str


def decide(op: ta.MHSAOp, mode: str) -> Decision:
    """Whether to fuse `op`, and why (the remark)."""
    if mode == "never":
        return Decision(False, "not fused: mode=never")
    if any(_constant(v) is None for v in (op.wq, op.bq, op.wk)):
        return Decision(False, "not fused: Wq, bq and Wk must be constants")
    bk = _constant(op.bk)
    key_offset = op.is_integer() and any(op.k_requant.add.get_values())
    if op.normalization.data != ta.SOFTMAX and (bk is None or np.any(bk != 0) or key_offset):
        return Decision(False, "not fused: without softmax the key bias does not cancel")
    if op.is_integer() and not (np.any(_constant(op.wq)) and np.any(_constant(op.wk))):
        return Decision(False, "not fused: Wq or Wk is all zeros")
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
        name = f"%{op.result.name_hint}" if op.result.name_hint else f"#{self.count}"
        remark = f"remark: fuse-weights: tinyattn.mhsa {name}"
        if self.remarks:
            print(f"{remark}: {decision.reason}", file=sys.stderr)
        self.count += 1
        if not decision.fuse:
            return
        if op.is_integer():
            int8 = fused_weights_int8(op)
            wqk, bqk = int8.wqk, int8.bqk
            properties = {
                name: value
                for name, value in op.properties.items()
                if name not in ("q_requant", "k_requant", "score_requant")
            }
            properties |= {"qk_requant": int8.qk_requant, "score_requant": int8.score_requant}
        else:
            scale = op.scale.value.data
            wqk, bqk = fused_weights(_constant(op.wq), _constant(op.bq), _constant(op.wk), scale)
            properties = {"normalization": op.normalization}
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
            properties=properties,
        )
        if ONNX_NODE_ATTR in op.attributes:
            fused.attributes[ONNX_NODE_ATTR] = op.attributes[ONNX_NODE_ATTR]
        if self.remarks and op.is_integer():
            print(f"{remark}: {int8_deviation(op, fused)}", file=sys.stderr)
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
