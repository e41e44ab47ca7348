"""Register-blocked matmul, the skeleton of every target's matmul micro-kernel.

The outputs are computed in blocks of R×C (2×2 by default; each target picks the shape its
registers hold best) whose accumulators stay in registers over the whole depth, so each operand
element loaded serves C or R MACs; the rows and columns left over take the same code with fewer
accumulators. A `DepthStep` says how a target consumes `chunk` consecutive depth
positions: how it loads a chunk of one operand row (a word of four int8 for SIMD dot products,
or one scalar) and how it multiplies two such chunks into an accumulator (SMLADs, a
`cv.sdotsp.b`, or scalar multiply-adds). The depth's remainder takes scalar MACs, and each output
is finished once, after its sum: scaled (f32) or requantized (int8). The right operand is read
as rows of length K whatever its layout (`Matrix.T()` for a [K, N] rhs), so scalar steps work on
any layout and word steps where the kernel op's rhs is depth-contiguous.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerType, MemRefType, i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder, compute_type, element_type
from tinyattn.lowering import loop_kernels as k
from tinyattn.lowering.kernel_registry import KernelContext

WORD = 4  # int8 values per 32-bit word: the depth one load of an operand row covers


def _depth_contiguous(value: SSAValue) -> bool:
    """A 2-D 8-bit memref whose rows are contiguous (unit innermost stride)."""
    typ = value.type
    if not isinstance(typ, MemRefType) or typ.get_element_type() != IntegerType(8):
        return False
    strides = typ.get_strides()
    return strides is not None and strides[-1] == 1


def word_operands(op: kernel.KernelOp) -> bool:
    """An int8 matmul whose operands are both read by rows of at least a word: the layout of
    SIMD dot-product kernels (packed weights give it to every attention matmul)."""
    return (
        isinstance(op, kernel.MatmulOp)
        and op.transpose_rhs is not None
        and _depth_contiguous(op.lhs)
        and _depth_contiguous(op.rhs)
        and op.dims()[2] >= WORD
    )


def word(b: LoopBuilder, matrix: k.Matrix, row: SSAValue, col: SSAValue) -> SSAValue:
    """The four bytes at (row, col..col+3) as one little-endian i32 (one `ldr` after LLVM)."""
    packed = None
    for byte in range(WORD):
        column = col if byte == 0 else b.insert(arith.AddiOp(col, b.index(byte)))
        value = b.convert(b.load(matrix.ref, matrix.indices(row, column)), i32, unsigned=True)
        if byte:
            value = b.shl(value, b.constant(8 * byte, i32))
        packed = value if packed is None else b.insert(arith.OrIOp(packed, value))
    assert packed is not None
    return packed


@dataclass(frozen=True)
class DepthStep:
    """How a kernel consumes `chunk` depth positions of one lhs row and one rhs row."""

    chunk: int
    # (builder, operand, row, first depth position) -> the loaded chunk (any value(s))
    load: Callable[[LoopBuilder, k.Matrix, SSAValue, SSAValue], Any]
    # (builder, lhs chunk, rhs chunk, accumulator) -> the new accumulator
    mac: Callable[[LoopBuilder, Any, Any, SSAValue], SSAValue]
    # Load each lhs row's chunk just before its MACs, so fewer values are live at once (fewer
    # spills where a chunk takes several registers, as SMLAD's two widened pairs).
    rows_in_turn: bool = False


def scalar_step(fused: bool = False) -> DepthStep:
    """One scalar multiply-add per depth position (f32 with `math.fma` where `fused`)."""

    def mac(b: LoopBuilder, x: SSAValue, y: SSAValue, acc: SSAValue) -> SSAValue:
        return b.fma(x, y, acc) if fused else b.add(acc, b.mul(x, y))

    return DepthStep(1, lambda b, matrix, row, at: matrix.load(b, row, at), mac)


@dataclass(frozen=True)
class _Operands:
    """What every block of one matmul reads: its rows, initial value and epilogue."""

    lhs: k.Matrix
    rhs: k.Matrix  # row j: column j of the product's right operand
    out: k.Matrix
    depth: int
    init: k.AccumulatorInit | None
    scale: float | None
    requant: k.Requant | None


def _block(
    b: LoopBuilder,
    ops: _Operands,
    step: DepthStep,
    rows: Sequence[SSAValue],
    cols: Sequence[SSAValue],
) -> None:
    """The outputs rows × cols, accumulated in registers, then stored."""
    blocks = [(i, j) for i in rows for j in cols]
    zero = compute_type(element_type(ops.out.ref))
    starts = [ops.init(b, i, j) if ops.init else b.constant(0, zero) for i, j in blocks]

    def chunk(bk: LoopBuilder, t: SSAValue, accs: tuple[SSAValue, ...]) -> list[SSAValue]:
        at = bk.mul(t, bk.index(step.chunk))
        lefts = {} if step.rows_in_turn else {i: step.load(bk, ops.lhs, i, at) for i in rows}
        rights = {j: step.load(bk, ops.rhs, j, at) for j in cols}
        sums = dict(zip(blocks, accs, strict=True))
        for i in rows:
            left = step.load(bk, ops.lhs, i, at) if step.rows_in_turn else lefts[i]
            for j in cols:
                sums[i, j] = step.mac(bk, left, rights[j], sums[i, j])
        return [sums[block] for block in blocks]

    totals = list(b.for_range(ops.depth // step.chunk, chunk, init=starts))
    for depth_at in range(ops.depth // step.chunk * step.chunk, ops.depth):
        at = b.index(depth_at)
        for index, (i, j) in enumerate(blocks):
            product = b.mul(ops.lhs.load(b, i, at), ops.rhs.load(b, j, at))
            totals[index] = b.add(totals[index], product)
    for (i, j), total in zip(blocks, totals, strict=True):
        if ops.scale is not None:
            total = b.mul(total, b.constant(ops.scale, total.type))
        ops.out.store(b, ops.requant(b, total, j) if ops.requant else total, i, j)


def blocked_matmul(
    ctx: KernelContext, op: kernel.KernelOp, step: DepthStep, block: tuple[int, int] = (2, 2)
) -> None:
    """`op` in register blocks of `block` = (rows, columns) outputs (module docstring): full
    blocks, then the last columns and rows that do not fill one, a row or column at a time."""
    assert isinstance(op, kernel.MatmulOp)
    m, n, depth = op.dims()
    init = k.matmul_init(op)
    lhs, rhs, out = (k.Matrix(op.operands[i], unsigned=op.is_unsigned(i)) for i in (0, 1, -1))
    ops = _Operands(
        lhs,
        rhs if op.transpose_rhs is not None else rhs.T(),
        out.T() if op.transpose_out is not None else out,
        depth,
        init,
        None if op.scale is None else op.scale.value.data,
        ctx.requant(op),
    )
    block_rows, block_cols = block

    def group(b: LoopBuilder, index: SSAValue, size: int) -> list[SSAValue]:
        first = b.mul(index, b.index(size))
        return [first, *(b.add(first, b.index(offset)) for offset in range(1, size))]

    def columns(b: LoopBuilder, rows: list[SSAValue]) -> None:
        def column_group(bj: LoopBuilder, jj: SSAValue, _):
            _block(bj, ops, step, rows, group(bj, jj, block_cols))
            return ()

        if n // block_cols:
            b.for_range(n // block_cols, column_group)
        for col in range(n // block_cols * block_cols, n):
            _block(b, ops, step, rows, [b.index(col)])

    def row_group(bi: LoopBuilder, ii: SSAValue, _):
        columns(bi, group(bi, ii, block_rows))
        return ()

    if m // block_rows:
        ctx.builder.for_range(m // block_rows, row_group)
    for row in range(m // block_rows * block_rows, m):
        columns(ctx.builder, [ctx.builder.index(row)])
