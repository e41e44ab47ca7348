"""`convert-kernels-to-loops`: kernel ops -> a target's micro-kernels, else generic loop nests.

Each kernel op lowers through the lowering its target registers for that op (and, through the
registration's predicate, element types and shapes), else through the generic loop nest of
`loop_kernels`, which always applies. This is IREE's micro-kernel pattern done in IR, so a
kernel is specialised to its tile's static shape. A target registers a lowering with

    @register_kernel("thumbv7em", kernel.MatmulOp, applies=lambda op: not op.is_integer())
    def fma_matmul(ctx: KernelContext, op: kernel.MatmulOp) -> None: ...

which emits its code at `ctx.builder` (before the op, which the pass then erases). Per-channel
requantization tables become read-only globals (`ctx.requant`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, i32
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder, ModuleGlobals
from tinyattn.dialects.dense import from_numpy
from tinyattn.lowering import loop_kernels as k

# The kernel families a target may name (backend/targets.py): `generic` has only the loop nests.
KERNEL_TARGETS = ("generic", "thumbv7em", "rv32", "gap9")


@dataclass(frozen=True)
class KernelContext:
    """Where a lowering emits its code, and how it makes module-level constant tables."""

    builder: LoopBuilder
    globals: ModuleGlobals

    def table(self, op: Operation, name: str, values: Sequence[int]) -> SSAValue:
        """A read-only i32 table of `values`, readable at the builder's position."""
        data = from_numpy(np.array(values, np.int32), i32)
        return self.globals.constant(self.builder, name, data, op)

    def requant(self, op: kernel.KernelOp) -> k.Requant | None:
        """The epilogue of `op`'s `requant` (None without one), clipping to its out's type."""
        attr = op.properties.get("requant")
        if attr is None:
            return None
        assert isinstance(attr, kernel.RequantAttr)
        return k.Requant.of(
            attr, op.is_unsigned(-1), lambda what, values: self.table(op, f"requant_{what}", values)
        )


KernelLowering = Callable[[KernelContext, kernel.KernelOp], None]


@dataclass(frozen=True)
class _Registration:
    op: type[kernel.KernelOp]
    applies: Callable[[kernel.KernelOp], bool]
    lowering: KernelLowering


_TARGET_KERNELS: dict[str, list[_Registration]] = {}


def register_kernel(
    target: str,
    op: type[kernel.KernelOp],
    applies: Callable[[kernel.KernelOp], bool] = lambda _: True,
) -> Callable[[KernelLowering], KernelLowering]:
    """Register a decorated function as `target`'s lowering of `op` where `applies(op)`; the
    first registered that applies wins."""
    if target not in KERNEL_TARGETS or target == "generic":
        raise ValueError(f"unknown kernel target '{target}'")

    def register(lowering: KernelLowering) -> KernelLowering:
        _TARGET_KERNELS.setdefault(target, []).append(_Registration(op, applies, lowering))
        return lowering

    return register


def _matrix(op: kernel.KernelOp, index: int) -> k.Matrix:
    """Operand `index` of `op` as a matrix, unsigned as the op says."""
    return k.Matrix(op.operands[index], unsigned=op.is_unsigned(index))


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


def _matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MatmulOp)
    m, n, depth = op.dims()
    rhs = _matrix(op, 1)
    if op.acc is not None:
        init = k.accumulate_into(k.Matrix(op.acc))
    elif op.bias is not None:
        init = k.vector_init(op.bias)
    else:
        init = None
    k.matmul(
        ctx.builder,
        m,
        n,
        depth,
        _matrix(op, 0),
        rhs.T() if op.transpose_rhs is not None else rhs,
        _matrix(op, -1),
        init,
        scale=None if op.scale is None else op.scale.value.data,
        requant=ctx.requant(op),
    )


def _softmax(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.SoftmaxOp)
    rows, cols = _shape(op.x)
    x, out = _matrix(op, 0), _matrix(op, -1)
    if op.isoftmax is None:
        k.softmax_rows(ctx.builder, rows, cols, x, out)
    else:
        assert op.scratch is not None
        k.isoftmax_rows(ctx.builder, rows, cols, x, out, op.isoftmax, op.scratch)


def _layernorm(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.LayerNormOp)
    rows, cols = _shape(op.x)
    x, out = _matrix(op, 0), _matrix(op, -1)
    if op.ilayernorm is None:
        assert op.epsilon is not None
        k.layernorm_rows(ctx.builder, rows, cols, x, op.gamma, op.beta, op.epsilon.value.data, out)
    else:
        k.ilayernorm_rows(
            ctx.builder, rows, cols, x, op.gamma, op.beta, op.ilayernorm, out, ctx.requant(op)
        )


def _map_function(op: kernel.MapOp) -> Callable[[LoopBuilder, list[SSAValue]], SSAValue]:
    fn, params = op.fn.data, op.igelu
    if fn == "add":
        return lambda b, values: b.add(values[0], values[1])
    if fn == "relu":
        return lambda b, values: k.relu(b, values[0])
    if fn == "gelu" and params is not None:
        return lambda b, values: k.igelu(b, values[0], params)
    if fn == "gelu":
        return lambda b, values: k.gelu(b, values[0])
    return lambda b, values: values[0]  # copy


def _map(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MapOp)
    rows, cols = _shape(op.output)
    inputs = [_matrix(op, index) for index in range(len(op.inputs))]
    k.elementwise(
        ctx.builder, rows, cols, inputs, _matrix(op, -1), _map_function(op), ctx.requant(op)
    )


def _mean(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MeanOp)
    outer, axis, inner = _shape(op.x)
    k.mean_axis(
        ctx.builder, outer, axis, inner, op.x, op.output, ctx.requant(op), op.is_unsigned(0)
    )


GENERIC_KERNELS: dict[type[kernel.KernelOp], KernelLowering] = {
    kernel.MatmulOp: _matmul,
    kernel.SoftmaxOp: _softmax,
    kernel.LayerNormOp: _layernorm,
    kernel.MapOp: _map,
    kernel.MeanOp: _mean,
}


def lowering_for(target: str, op: kernel.KernelOp) -> KernelLowering:
    """`target`'s lowering of `op` if one applies, else the generic loop nest."""
    for registration in _TARGET_KERNELS.get(target, ()):
        if isinstance(op, registration.op) and registration.applies(op):
            return registration.lowering
    return GENERIC_KERNELS[type(op)]


@dataclass(frozen=True)
class ConvertKernelsToLoops(ModulePass):
    """Lower every kernel op through `target`'s kernels, falling back to loop nests."""

    name = "convert-kernels-to-loops"

    target: str = "generic"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in KERNEL_TARGETS:
            raise PassFailedException(
                f"{self.name}: unknown target '{self.target}' (one of {', '.join(KERNEL_TARGETS)})"
            )
        module_globals = ModuleGlobals(op)
        for kernel_op in [o for o in op.walk() if isinstance(o, kernel.KernelOp)]:
            context = KernelContext(LoopBuilder(InsertPoint.before(kernel_op)), module_globals)
            lowering_for(self.target, kernel_op)(context, kernel_op)
            kernel_op.detach()
            kernel_op.erase()
