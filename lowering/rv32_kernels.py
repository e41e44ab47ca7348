"""RISC-V rv32imfc micro-kernels (no SIMD), registered for `rv32` (and the f32 ones for `gap9`).

matmul of any layout, int8 or f32, in the register blocks of `blocked_matmul`: int8 in 4×2
blocks (`lb`/`lbu` + `mul` + `add`: 6 loads per 8 MACs), f32 in 4×4 blocks of `fmadd.s` (8
loads per 16 MACs, 16 of the 32 float registers accumulating), against two loads per MAC in
the generic nest. Each loop step takes two depth positions: LLVM does not unroll these loops
for RISC-V, and a second position halves the loop's own instructions (a wider step spills).
The block shapes and the step are the fastest measured on EEG's attention. int8 sums wrap
in i32 exactly as the generic loops' do; f32 fuses the multiply-add (one rounding).
"""

from __future__ import annotations

from tinyattn.dialects import kernel
from tinyattn.lowering.blocked_matmul import blocked_matmul, scalar_step
from tinyattn.lowering.kernel_registry import KernelContext, register_kernel


@register_kernel("rv32", kernel.MatmulOp, applies=lambda op: op.is_integer())
def blocked_int8_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    blocked_matmul(ctx, op, scalar_step(chunk=2), block=(4, 2))


@register_kernel("rv32", kernel.MatmulOp, applies=lambda op: not op.is_integer())
@register_kernel("gap9", kernel.MatmulOp, applies=lambda op: not op.is_integer())
def blocked_f32_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    blocked_matmul(ctx, op, scalar_step(fused=True, chunk=2), block=(4, 4))
