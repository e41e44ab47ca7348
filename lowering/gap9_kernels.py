"""GAP9-class (RISC-V + CORE-V XpulpV2) micro-kernels, registered for `gap9`.

int8 matmul on depth-contiguous operands (packed weights give every attention matmul that
layout): each 4-deep step loads one word of every operand row and accumulates its four byte
products with one CORE-V dot product into the 2×2 register blocks of `blocked_matmul`: 4 loads
and 4 dot products per 16 MACs. LLVM 22 assembles `cv.sdotsp.b` (signed × signed),
`cv.sdotusp.b` (unsigned × signed) and `cv.sdotup.b` (unsigned × unsigned) with `+xcvsimd` but
has no intrinsic or pattern for them, so they are inline assembly with the accumulator tied to
the result. QEMU cannot run CORE-V: gap9 is compile-only, and the interpreter checks these
kernels instead (the loop level runs the dot products).
"""

from __future__ import annotations

from xdsl.dialects import llvm
from xdsl.dialects.builtin import i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.lowering.blocked_matmul import WORD, DepthStep, blocked_matmul, word, word_operands
from tinyattn.lowering.kernel_registry import KernelContext, register_kernel

# (lhs unsigned, rhs unsigned) -> the dot product and whether its operands swap (rs1 is the
# unsigned one of a mixed pair)
DOT_PRODUCTS = {
    (False, False): ("cv.sdotsp.b", False),
    (True, False): ("cv.sdotusp.b", False),
    (False, True): ("cv.sdotusp.b", True),
    (True, True): ("cv.sdotup.b", False),
}


def _dot(b: LoopBuilder, left, right, acc: SSAValue) -> SSAValue:
    (lhs, lhs_unsigned), (rhs, rhs_unsigned) = left, right
    mnemonic, swap = DOT_PRODUCTS[lhs_unsigned, rhs_unsigned]
    first, second = (rhs, lhs) if swap else (lhs, rhs)
    asm = llvm.InlineAsmOp(f"{mnemonic} $0, $1, $2", "=r,r,r,0", [first, second, acc], [i32])
    return b.insert(asm)


DOT4 = DepthStep(
    WORD,
    lambda b, matrix, row, at: (word(b, matrix, row, at), matrix.unsigned),
    _dot,
)


@register_kernel("gap9", kernel.MatmulOp, applies=word_operands)
def dot4_matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    """int8: 2×2 register blocks of 4-way CORE-V dot products (module docstring)."""
    blocked_matmul(ctx, op, DOT4)
