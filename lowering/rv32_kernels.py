"""RISC-V rv32imfc micro-kernels (no SIMD), registered for `rv32` (and the f32 ones for `gap9`).

matmul of any layout, int8 or f32, in the 2×2 register blocks of `blocked_matmul`: each loaded
element serves two MACs and four depth positions run per loop trip (`lb`/`lbu` + `mul` + `add`
for int8, `flw` + `fmadd.s` for f32), against one load per MAC and a loop trip per position in
the generic nest. int8 sums wrap in i32 exactly as the generic loops' do; f32 fuses the
multiply-add (one rounding).
"""

from __future__ import annotations

from tinyattn.dialects import kernel
from tinyattn.lowering.blocked_matmul import blocked_matmul, scalar_step
from tinyattn.lowering.kernel_registry import KernelContext, register_kernel

UNROLL = 4  # depth positions per loop trip


@register_kernel("rv32", kernel.MatmulOp, applies=lambda op: op.is_integer())
def blocked_int8_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    blocked_matmul(ctx, op, scalar_step(UNROLL))


@register_kernel("rv32", kernel.MatmulOp, applies=lambda op: not op.is_integer())
@register_kernel("gap9", kernel.MatmulOp, applies=lambda op: not op.is_integer())
def blocked_f32_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    blocked_matmul(ctx, op, scalar_step(UNROLL, fused=True))
