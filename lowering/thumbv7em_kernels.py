"""Cortex-M4/M7 micro-kernels (thumbv7em with the DSP extension), registered for `thumbv7em`.

int8 matmul whose operands both run contiguously along the depth: lhs [M, K] row-major and rhs
[N, K] read as Kᵀ (`transpose_rhs`), as the attention scores Q·Kᵀ are. Each 4-deep step loads
one word of every operand row (four byte loads that LLVM combines into one `ldr`), widens it
into two pairs of int16 with `SXTB16` (`UXTB16` for unsigned data; the odd bytes through a
rotate by 8 that folds into the instruction) and accumulates two MACs per `SMLAD` into a 2×2
block of outputs held in registers: 4 loads, 8 widenings and 8 `SMLAD`s per 16 MACs. The depth's
remainder (K mod 4) takes scalar MACs, odd last rows and columns the same code with fewer
accumulators, and each output is requantized once, after its sum. Sums wrap in i32 as the
generic loops' do (SMLAD's overflow flag is not read), so the result is bit-exact with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import IntegerType, MemRefType, i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.lowering import loop_kernels as k
from tinyattn.lowering.kernel_registry import KernelContext, register_kernel

STEP = 4  # bytes per word: the depth one load of each operand row covers


def _depth_contiguous(value: SSAValue) -> bool:
    """A 2-D 8-bit memref whose rows are contiguous (unit innermost stride)."""
    typ = value.type
    if not isinstance(typ, MemRefType) or typ.get_element_type() != IntegerType(8):
        return False
    strides = typ.get_strides()
    return strides is not None and strides[-1] == 1


def _dual_mac_applies(op: kernel.KernelOp) -> bool:
    return (
        isinstance(op, kernel.MatmulOp)
        and op.transpose_rhs is not None
        and _depth_contiguous(op.lhs)
        and _depth_contiguous(op.rhs)
        and op.dims()[2] >= STEP
    )


def _intrinsic(b: LoopBuilder, name: str, *args: SSAValue) -> SSAValue:
    return b.insert(llvm.CallIntrinsicOp(f"llvm.arm.{name}", list(args), [i32]))


def _word(b: LoopBuilder, matrix: k.Matrix, row: SSAValue, col: SSAValue) -> SSAValue:
    """The four bytes at (row, col..col+3) as one little-endian i32 (one `ldr` after LLVM)."""
    word = None
    for byte in range(STEP):
        column = col if byte == 0 else b.insert(arith.AddiOp(col, b.index(byte)))
        value = b.convert(b.load(matrix.ref, matrix.indices(row, column)), i32, unsigned=True)
        if byte:
            value = b.shl(value, b.constant(8 * byte, i32))
        word = value if word is None else b.insert(arith.OrIOp(word, value))
    assert word is not None
    return word


def _pairs(b: LoopBuilder, word: SSAValue, unsigned: bool) -> tuple[SSAValue, SSAValue]:
    """Bytes (0, 2) and (1, 3) of `word`, each pair widened to two int16 halves."""
    extend = "uxtb16" if unsigned else "sxtb16"
    rotated = b.insert(
        arith.OrIOp(
            b.insert(arith.ShRUIOp(word, b.constant(8, i32))), b.shl(word, b.constant(24, i32))
        )
    )
    return _intrinsic(b, extend, word), _intrinsic(b, extend, rotated)


@dataclass(frozen=True)
class _Operands:
    """What every block of one matmul reads: its matrices, initial value and epilogue."""

    lhs: k.Matrix
    rhs: k.Matrix  # [N, K]: row j is column j of the product's right operand
    out: k.Matrix
    depth: int
    init: k.AccumulatorInit | None
    requant: k.Requant | None


def _block(
    b: LoopBuilder, ops: _Operands, rows: Sequence[SSAValue], cols: Sequence[SSAValue]
) -> None:
    """The outputs rows × cols (at most 2 × 2), accumulated in registers, then stored."""
    blocks = [(i, j) for i in rows for j in cols]
    starts = [ops.init(b, i, j) if ops.init else b.constant(0, i32) for i, j in blocks]

    def step(bk: LoopBuilder, t: SSAValue, accs: tuple[SSAValue, ...]) -> list[SSAValue]:
        at = bk.mul(t, bk.index(STEP))
        lefts = {i: _pairs(bk, _word(bk, ops.lhs, i, at), ops.lhs.unsigned) for i in rows}
        rights = {j: _pairs(bk, _word(bk, ops.rhs, j, at), ops.rhs.unsigned) for j in cols}
        sums = []
        for (i, j), acc in zip(blocks, accs, strict=True):
            for left, right in zip(lefts[i], rights[j], strict=True):
                acc = _intrinsic(bk, "smlad", left, right, acc)
            sums.append(acc)
        return sums

    totals = list(b.for_range(ops.depth // STEP, step, init=starts))
    for depth_at in range(ops.depth // STEP * STEP, ops.depth):
        at = b.index(depth_at)
        for index, (i, j) in enumerate(blocks):
            product = b.mul(ops.lhs.load(b, i, at), ops.rhs.load(b, j, at))
            totals[index] = b.add(totals[index], product)
    for (i, j), total in zip(blocks, totals, strict=True):
        ops.out.store(b, ops.requant(b, total, j) if ops.requant else total, i, j)


@register_kernel("thumbv7em", kernel.MatmulOp, applies=_dual_mac_applies)
def dual_mac_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """2×2 register-blocked SMLAD matmul of depth-contiguous int8 operands (module docstring):
    full blocks, then the odd last column, row and corner."""
    assert isinstance(op, kernel.MatmulOp)
    m, n, depth = op.dims()
    if op.acc is not None:
        partial_sums = k.Matrix(op.acc)
        init = k.accumulate_into(partial_sums.T() if op.transpose_out else partial_sums)
    elif op.bias is not None:
        init = k.vector_init(op.bias)
    else:
        init = None
    lhs, rhs, out = (k.Matrix(op.operands[i], unsigned=op.is_unsigned(i)) for i in (0, 1, -1))
    out = out.T() if op.transpose_out is not None else out
    ops = _Operands(lhs, rhs, out, depth, init, ctx.requant(op))

    def pair(b: LoopBuilder, index: SSAValue) -> list[SSAValue]:
        first = b.mul(index, b.index(2))
        return [first, b.add(first, b.index(1))]

    def columns(b: LoopBuilder, rows: list[SSAValue]) -> None:
        def column_pair(bj: LoopBuilder, jj: SSAValue, _):
            _block(bj, ops, rows, pair(bj, jj))
            return ()

        if n // 2:
            b.for_range(n // 2, column_pair)
        if n % 2:
            _block(b, ops, rows, [b.index(n - 1)])

    def row_pair(bi: LoopBuilder, ii: SSAValue, _):
        columns(bi, pair(bi, ii))
        return ()

    if m // 2:
        ctx.builder.for_range(m // 2, row_pair)
    if m % 2:
        columns(ctx.builder, [ctx.builder.index(m - 1)])
