"""Cortex-M4/M7 micro-kernels (thumbv7em with the DSP extension), registered for `thumbv7em`.

int8 matmul whose operands both run contiguously along the depth: lhs [M, K] row-major and rhs
[N, K] read as Kᵀ (`transpose_rhs`), as the attention scores Q·Kᵀ are. Each 4-deep step loads
one word of every operand row (four byte loads that LLVM combines into one `ldr`), widens it
into two pairs of int16 with `SXTB16` (`UXTB16` for unsigned data; the odd bytes through a
rotate by 8 that folds into the instruction) and accumulates two MACs per `SMLAD` into a 2×2
block of outputs held in registers (`blocked_matmul`): 4 loads, 8 widenings and 8 `SMLAD`s per
16 MACs. Sums wrap in i32 as the generic loops' do (SMLAD's overflow flag is not read), so the
result is bit-exact with them.

f32 matmul (any layout): 4×4 blocks of fused multiply-adds (`vfma.f32`), 8 loads per 16 MACs;
f32 results match the reference within the usual tolerance (FMA rounds once where mul + add
round twice). Block shapes are the fastest measured on EEG's attention (bench/results/kernels.md).
"""

from __future__ import annotations

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.lowering.blocked_matmul import (
    WORD,
    DepthStep,
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


DUAL_MAC = DepthStep(
    WORD,
    lambda b, matrix, row, at: _pairs(b, word(b, matrix, row, at), matrix.unsigned),
    lambda b, left, right, acc: _intrinsic(
        b, "smlad", left[1], right[1], _intrinsic(b, "smlad", left[0], right[0], acc)
    ),
    rows_in_turn=True,
)


@register_kernel("thumbv7em", kernel.MatmulOp, applies=word_operands)
def dual_mac_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """int8: 2×2 register blocks of SMLADs on depth-contiguous operands (module docstring)."""
    blocked_matmul(ctx, op, DUAL_MAC)


@register_kernel("thumbv7em", kernel.MatmulOp, applies=lambda op: not op.is_integer())
def fma_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """f32: 4×4 register blocks of `vfma.f32` (16 of the FPU's 32 registers accumulate)."""
    blocked_matmul(ctx, op, scalar_step(fused=True), block=(4, 4))
