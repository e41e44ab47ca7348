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


def word_operands(op: kernel.KernelOp, depth: int = WORD) -> bool:
    """An int8 matmul whose operands are both read by rows of at least `depth` (a word): the
    layout of SIMD dot-product kernels (packed weights give it to every attention matmul)."""
    return (
        isinstance(op, kernel.MatmulOp)
        and op.transpose_rhs is not None
        and _depth_contiguous(op.lhs)
        and _depth_contiguous(op.rhs)
        and op.dims()[2] >= depth
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
    # Emit up to this many steps straight, without a loop: every address is then a base and a
    # constant offset (the accumulators keep their registers; no loop counter or moving base).
    unrolled: int = 0


# (builder, position of the row in its group, step index) -> the row's chunk of that step
Chunks = Callable[[LoopBuilder, SSAValue, SSAValue], Any]
# (builder, operand, first row, number of rows) -> how blocks read that group of rows. A staging
# copies the group once (a row block of the lhs, a panel of rhs rows) into the form the step
# reads fastest, e.g. widened to int16 pairs for SMLAD, so that unpacking is not repeated for
# every block that reads the rows.
Staging = Callable[[LoopBuilder, k.Matrix, SSAValue, int], Chunks]


def direct(step: DepthStep) -> Staging:
    """No copy: blocks read the operand's rows in place through `step.load`."""

    def stage(b: LoopBuilder, matrix: k.Matrix, first: SSAValue, count: int) -> Chunks:
        def chunks(bk: LoopBuilder, position: SSAValue, t: SSAValue) -> Any:
            at = bk.mul(t, bk.index(step.chunk))
            return step.load(bk, matrix, bk.add(first, position), at)

        return chunks

    return stage


def scalar_step(fused: bool = False, chunk: int = 1) -> DepthStep:
    """One scalar multiply-add per depth position (f32 with `math.fma` where `fused`), `chunk`
    positions a step (an unrolled loop, for a target whose LLVM does not unroll it)."""

    def load(b: LoopBuilder, matrix: k.Matrix, row: SSAValue, at: SSAValue) -> list[SSAValue]:
        return [matrix.load(b, row, b.add(at, b.index(d))) for d in range(chunk)]

    def mac(b: LoopBuilder, xs: list[SSAValue], ys: list[SSAValue], acc: SSAValue) -> SSAValue:
        for x, y in zip(xs, ys, strict=True):
            acc = b.fma(x, y, acc) if fused else b.add(acc, b.mul(x, y))
        return acc

    return DepthStep(chunk, load, mac)


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


@dataclass(frozen=True)
class _Group:
    """Consecutive rows of one operand (`first`, `first + 1`, ...) and how blocks read them."""

    first: SSAValue
    chunks: Chunks

    def rows(self, b: LoopBuilder, positions: Sequence[SSAValue]) -> list[SSAValue]:
        return [b.add(self.first, position) for position in positions]


def _block(
    b: LoopBuilder,
    ops: _Operands,
    step: DepthStep,
    left: _Group,
    row_positions: Sequence[SSAValue],
    right: _Group,
    col_positions: Sequence[SSAValue],
) -> None:
    """The outputs at the given rows × columns of the two groups, accumulated in registers,
    then stored."""
    rows, cols = left.rows(b, row_positions), right.rows(b, col_positions)
    blocks = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    zero = compute_type(element_type(ops.out.ref))
    starts = [ops.init(b, rows[i], cols[j]) if ops.init else b.constant(0, zero) for i, j in blocks]

    def chunk(bk: LoopBuilder, t: SSAValue, accs: tuple[SSAValue, ...]) -> list[SSAValue]:
        def lhs(i: int) -> Any:
            return left.chunks(bk, row_positions[i], t)

        lefts = {} if step.rows_in_turn else {i: lhs(i) for i in range(len(rows))}
        rights = [right.chunks(bk, position, t) for position in col_positions]
        sums = dict(zip(blocks, accs, strict=True))
        for i in range(len(rows)):
            chunk_i = lhs(i) if step.rows_in_turn else lefts[i]
            for j, chunk_j in enumerate(rights):
                sums[i, j] = step.mac(bk, chunk_i, chunk_j, sums[i, j])
        return [sums[block] for block in blocks]

    covered = ops.depth // step.chunk * step.chunk
    steps = covered // step.chunk
    if steps <= step.unrolled:
        totals = starts
        for t in range(steps):
            totals = chunk(b, b.index(t), tuple(totals))
    else:
        totals = list(b.for_range(steps, chunk, init=starts))
    for depth_at in range(covered, ops.depth):
        at = b.index(depth_at)
        for index, (i, j) in enumerate(blocks):
            product = b.mul(ops.lhs.load(b, rows[i], at), ops.rhs.load(b, cols[j], at))
            totals[index] = b.add(totals[index], product)
    for (i, j), total in zip(blocks, totals, strict=True):
        if ops.scale is not None:
            total = b.mul(total, b.constant(ops.scale, total.type))
        ops.out.store(b, ops.requant(b, total, cols[j]) if ops.requant else total, rows[i], cols[j])


def _groups(
    b: LoopBuilder, extent: int, size: int, body: Callable[[LoopBuilder, SSAValue, int], None]
) -> None:
    """`body(first, count)` over [0, extent) in groups of `size` (a loop), then the rest."""
    if extent // size == 1:
        body(b, b.index(0), size)
    elif extent // size:

        def group(bg: LoopBuilder, index: SSAValue, _):
            body(bg, bg.mul(index, bg.index(size)), size)
            return ()

        b.for_range(extent // size, group)
    if extent % size:
        body(b, b.index(extent // size * size), extent % size)


def blocked_matmul(
    ctx: KernelContext,
    op: kernel.KernelOp,
    step: DepthStep,
    block: tuple[int, int] = (2, 2),
    stage_rows: Staging | None = None,
    stage_cols: Staging | None = None,
    panel: int = 0,
) -> None:
    """`op` in register blocks of `block` = (rows, columns) outputs (module docstring); the
    columns in panels of `panel` (0: all) whose rhs rows `stage_cols` copies once per panel,
    each block's lhs rows copied by `stage_rows` once per row block and panel (both read in
    place where not given). The rows and columns that do not fill a block form a smaller one."""
    assert isinstance(op, kernel.MatmulOp)
    m, n, depth = op.dims()
    lhs, rhs, out = (k.Matrix.operand(op, i) for i in (0, 1, -1))
    ops = _Operands(
        lhs,
        rhs if op.transpose_rhs is not None else rhs.T(),
        out.T() if op.transpose_out is not None else out,
        depth,
        k.matmul_init(op),
        None if op.scale is None else op.scale.value.data,
        ctx.requant(op),
    )
    block_rows, block_cols = block
    rows_staging, cols_staging = stage_rows or direct(step), stage_cols or direct(step)

    def in_panel(b: LoopBuilder, col_first: SSAValue, width: int) -> None:
        right = _Group(col_first, cols_staging(b, ops.rhs, col_first, width))

        def row_block(bi: LoopBuilder, row_first: SSAValue, height: int) -> None:
            left = _Group(row_first, rows_staging(bi, ops.lhs, row_first, height))
            row_positions = [bi.index(p) for p in range(height)]

            def col_block(bj: LoopBuilder, position: SSAValue, count: int) -> None:
                cols = [bj.add(position, bj.index(q)) for q in range(count)]
                _block(bj, ops, step, left, row_positions, right, cols)

            _groups(bi, width, block_cols, col_block)

        _groups(b, m, block_rows, row_block)

    _groups(ctx.builder, n, panel or n, in_panel)
