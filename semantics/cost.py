"""Static cost of tinyattn ops: multiply-accumulates and parameters (weights held as constants).

The attention formulas are the ones FWSA's cost model compares (see `attention_macs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.dialects import arith
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import numpy_dtype


def attention_macs(s: int, e: int, p: int, h: int, fused: bool) -> int:
    """MACs of one attention: projections, scores, context and output projection, all heads.

    Unfused per head: Q, K, V projections 3·S·E·P, scores S²·P, context S²·P, output S·P·E.
    Fused per head: X·Wqk S·E², scores S²·E, V projection S·E·P, context S²·P, output S·P·E.
    """
    if fused:
        per_head = s * e * e + s * s * e + 2 * s * e * p + s * s * p
    else:
        per_head = 4 * s * e * p + 2 * s * s * p
    return h * per_head


def attention_params(e: int, p: int, h: int, fused: bool) -> int:
    """Weights and biases of one attention (Wq/Wk/bq/bk or Wqk/bqk, Wv/bv, Wo, bo)."""
    score_params = h * (e * e + e) if fused else h * 2 * (e * p + p)
    return score_params + h * (e * p + p) + h * p * e + e


@dataclass(frozen=True)
class OpCost:
    macs: int
    params: int
    param_bytes: int


def _macs(op: Operation) -> int:
    if isinstance(op, ta.MHSAOp | ta.FusedMHSAOp):
        return attention_macs(*op.dims(), fused=isinstance(op, ta.FusedMHSAOp))
    if isinstance(op, ta.LinearOp):
        x, w = op.x.type, op.weight.type
        assert isinstance(x, TensorType) and isinstance(w, TensorType)
        return prod(x.get_shape()) * w.get_shape()[1]
    if isinstance(op, ta.ConvOp):
        weight, result = op.weight.type, op.result.type
        assert isinstance(weight, TensorType) and isinstance(result, TensorType)
        return prod(result.get_shape()) * prod(weight.get_shape()[1:])
    if isinstance(op, ta.MatMulOp):
        lhs, result = op.lhs.type, op.result.type
        assert isinstance(lhs, TensorType) and isinstance(result, TensorType)
        return prod(result.get_shape()) * lhs.get_shape()[-1]
    return 0


def op_cost(op: Operation) -> OpCost:
    """MACs of `op` and the size of its operands that are constants (its parameters)."""
    params = param_bytes = 0
    for operand in op.operands:
        if isinstance(operand.owner, arith.ConstantOp) and isinstance(operand.type, TensorType):
            count = prod(operand.type.get_shape())
            params += count
            param_bytes += count * numpy_dtype(operand.type.get_element_type()).itemsize
    return OpCost(_macs(op), params, param_bytes)


def tinyattn_ops(module: ModuleOp) -> list[Operation]:
    return [op for op in module.walk() if op.dialect_name() == "tinyattn"]


def total_cost(module: ModuleOp) -> OpCost:
    costs = [op_cost(op) for op in tinyattn_ops(module)]
    return OpCost(
        sum(c.macs for c in costs), sum(c.params for c in costs), sum(c.param_bytes for c in costs)
    )


def format_summary(module: ModuleOp) -> str:
    """A per-op table (op, result shape, MACs, params) with totals, for people to read."""
    rows = [("op", "result", "MACs", "params")]
    for op in tinyattn_ops(module):
        cost = op_cost(op)
        result = op.results[0].type
        shape = "x".join(map(str, result.get_shape())) if isinstance(result, TensorType) else ""
        element = result.get_element_type() if isinstance(result, TensorType) else ""
        rows.append((op.name, f"{shape}x{element}", f"{cost.macs:,}", f"{cost.params:,}"))
    total = total_cost(module)
    rows.append(("total", "", f"{total.macs:,}", f"{total.params:,} ({total.param_bytes:,} B)"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)
