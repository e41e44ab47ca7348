"""Cortex-M4/M7 micro-kernels (thumbv7em with the DSP extension), registered for `thumbv7em`.

int8 matmul whose operands both run contiguously along the depth: lhs [M, K] row-major and rhs
[N, K] read as Kᵀ (`transpose_rhs`), as every attention matmul is with packed weights. Both
operands are widened once to int16 pairs in a stack buffer (`_widened`: one `ldr` of four
int8, `SXTB16` of it and of its rotation by 8, `UXTB16` for unsigned data): a panel of rhs
rows, then each block of 4 lhs rows. A 4×2 block of outputs then accumulates in registers
(`blocked_matmul`), one `SMLAD` (two MACs) per pair of each operand: 6 loads and 8 SMLADs per
16 MACs, the fewest the 14 usable registers allow (8 accumulators, 2 rhs pairs, 1 lhs pair
and the two row pointers; a wider step spills). The widening costs a load, two extends and two
stores per four elements of a row, once per panel, against the block's 1.5 loads and 2
widenings per four MACs when widened in the loop. The panel's width keeps the buffer within
`SCRATCH_BYTES`; a matmul too deep for a row block and a two-column panel in it (a depth
above 341) takes the scalar blocks, as do a depth of 1 and an rhs read across its rows. Sums
wrap in i32 as the generic loops' do (SMLAD's overflow flag is not read), so the result is
bit-exact with them.

Integer softmax: the row maximum four byte lanes at a time (`SSUB8`/`USUB8` + `SEL`), the rest
as the generic kernel.

f32 matmul (any layout): 4×4 blocks of fused multiply-adds (`vfma.f32`), 8 loads per 16 MACs;
f32 results match the reference within the usual tolerance (FMA rounds once where mul + add
round twice). Block shapes are the fastest measured on EEG's attention (bench/results/kernels.md).
"""

from __future__ import annotations

from functools import partial

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.lowering import loop_kernels as k
from tinyattn.lowering.blocked_matmul import (
    WORD,
    Chunks,
    DepthStep,
    Staging,
    blocked_matmul,
    scalar_step,
    word,
    word_operands,
)
from tinyattn.lowering.kernel_registry import KernelContext, register_kernel


def _intrinsic(b: LoopBuilder, name: str, *args: SSAValue) -> SSAValue:
    return b.insert(llvm.CallIntrinsicOp(f"llvm.arm.{name}", list(args), [i32]))


def _pairs(b: LoopBuilder, value: SSAValue, unsigned: bool) -> tuple[SSAValue, SSAValue]:
    """Bytes (0, 2) and (1, 3) of `value`, each pair widened to two int16 halves."""
    extend = "uxtb16" if unsigned else "sxtb16"
    rotated = b.insert(
        arith.OrIOp(
            b.insert(arith.ShRUIOp(value, b.constant(8, i32))), b.shl(value, b.constant(24, i32))
        )
    )
    return _intrinsic(b, extend, value), _intrinsic(b, extend, rotated)


# A step of the widened kernel: one pair of int16 (two depth positions) of each operand row,
# from the stack copies `_widened` makes.
PAIR_MAC = DepthStep(
    2,
    lambda b, matrix, row, at: None,  # never read in place: both operands are staged
    lambda b, left, right, acc: _intrinsic(b, "smlad", left, right, acc),
    rows_in_turn=True,
    unrolled=16,
)
DUAL_MAC_BLOCK = (4, 2)
# The stack bytes the widened operands may take (a row block and a panel of at least a block's
# columns; every kernel of a function shares them): deeper matmuls take the scalar blocks.
SCRATCH_BYTES = 4096


def _scratch_rows(depth: int) -> int:
    """Rows of widened operands (int16: 2 bytes per depth position) the scratch holds."""
    return SCRATCH_BYTES // (2 * depth)


def _widenable(op: kernel.KernelOp) -> bool:
    """Depth-contiguous int8 operands of a depth of at least a pair, whose row block and
    narrowest panel fit the scratch."""
    rows, cols = DUAL_MAC_BLOCK
    return word_operands(op, depth=2) and _scratch_rows(op.dims()[2]) >= rows + cols


def _last_pair(b: LoopBuilder, matrix: k.Matrix, row: SSAValue, at: int) -> SSAValue:
    """Depth positions (at, at + 1) of a row as one word of two int16 (low first)."""
    low, high = (matrix.load(b, row, b.index(at + d)) for d in (0, 1))
    low = b.insert(arith.AndIOp(low, b.constant(0xFFFF, i32)))
    return b.insert(arith.OrIOp(low, b.shl(high, b.constant(16, i32))))


def _widened(buffer: SSAValue, depth: int) -> Staging:
    """Copy a group of operand rows into `buffer` as int16 pairs, `depth // 2` words a row:
    per word of four int8 its SXTB16 pairs (UXTB16 for unsigned data), positions (4t, 4t + 2)
    then (4t + 1, 4t + 3); a last pair of a depth of 4t + 2 or 4t + 3 in order. Both operands
    take the same order, so that one SMLAD adds the two products of a pair."""
    words, pairs = depth // WORD, depth // 2

    def stage(b: LoopBuilder, matrix: k.Matrix, first: SSAValue, count: int) -> Chunks:
        def widen_row(br: LoopBuilder, position: SSAValue, _):
            row, start = br.add(first, position), br.mul(position, br.index(pairs))

            def widen(bw: LoopBuilder, t: SSAValue, _):
                packed = word(bw, matrix, row, bw.mul(t, bw.index(WORD)))
                at = bw.add(start, bw.mul(t, bw.index(2)))
                for half, pair in enumerate(_pairs(bw, packed, matrix.unsigned)):
                    bw.store(pair, buffer, [bw.add(at, bw.index(half))])
                return ()

            br.for_range(words, widen)
            if pairs > 2 * words:
                last = _last_pair(br, matrix, row, WORD * words)
                br.store(last, buffer, [br.add(start, br.index(2 * words))])
            return ()

        b.for_range(count, widen_row)
        return lambda bk, position, t: bk.load(
            buffer, [bk.add(bk.mul(position, bk.index(pairs)), t)]
        )

    return stage


@register_kernel("thumbv7em", kernel.MatmulOp, applies=_widenable)
def widened_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """int8: 4×2 register blocks of SMLADs on both operands widened once (module docstring)."""
    _, n, depth = op.dims()
    block_rows, block_cols = DUAL_MAC_BLOCK
    panel = min(n, (_scratch_rows(depth) - block_rows) // block_cols * block_cols)
    row_words = depth // 2
    rows, cols = ctx.stack_buffers(op, block_rows * row_words, panel * row_words)
    blocked_matmul(
        ctx,
        op,
        PAIR_MAC,
        DUAL_MAC_BLOCK,
        stage_rows=_widened(rows, depth),
        stage_cols=_widened(cols, depth),
        panel=panel,
    )


@register_kernel("thumbv7em", kernel.MatmulOp, applies=lambda op: op.is_integer())
def shallow_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """int8 of depth 1 or not depth-contiguous: 4×2 register blocks of
    scalar multiply-adds, each loaded element serving two or four outputs."""
    blocked_matmul(ctx, op, scalar_step(), block=(4, 2))


def _lanes_max(cols: int, x: k.Matrix) -> k.RowMax:
    """A row's maximum four bytes at a time: SSUB8 (USUB8 for unsigned data) sets a GE flag per
    byte lane where the word's byte is not smaller, SEL keeps those bytes: a load and two
    instructions per four elements; then the four lanes, and the last `cols % 4` elements."""
    subtract, lowest = ("usub8", 0) if x.unsigned else ("ssub8", -0x7F7F7F80)  # 0x80808080

    def row_max(b: LoopBuilder, i: SSAValue) -> SSAValue:
        def four(bw: LoopBuilder, t: SSAValue, acc: tuple[SSAValue, ...]):
            packed = word(bw, x, i, bw.mul(t, bw.index(WORD)))
            _intrinsic(bw, subtract, packed, acc[0])  # only its GE flags are read, by SEL
            return (_intrinsic(bw, "sel", packed, acc[0]),)

        (lanes,) = b.for_range(cols // WORD, four, init=(b.constant(lowest, i32),))
        peak = None
        for lane in range(WORD):
            high = b.shl(lanes, b.constant(8 * (WORD - 1 - lane), i32))
            shift = b.constant(8 * (WORD - 1), i32)
            value = b.insert(arith.ShRUIOp(high, shift)) if x.unsigned else b.shr(high, shift)
            peak = value if peak is None else b.max(peak, value)
        for col in range(cols // WORD * WORD, cols):
            peak = b.max(peak, x.load(b, i, b.index(col)))
        assert peak is not None
        return peak

    return row_max


@register_kernel(
    "thumbv7em",
    kernel.SoftmaxOp,
    applies=lambda op: op.isoftmax is not None and op.x.type.get_shape()[-1] >= WORD,
)
def lanes_isoftmax(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """Integer softmax with the row maxima four lanes at a time (`_lanes_max`)."""
    assert isinstance(op, kernel.SoftmaxOp)
    k.isoftmax(ctx.builder, op, partial(ctx.table, op), _lanes_max)


@register_kernel("thumbv7em", kernel.MatmulOp, applies=lambda op: not op.is_integer())
def fma_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """f32: 4×4 register blocks of `vfma.f32` (16 of the FPU's 32 registers accumulate)."""
    blocked_matmul(ctx, op, scalar_step(fused=True), block=(4, 4))
