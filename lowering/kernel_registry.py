"""The per-target kernel registry: which lowering a kernel op takes on a target.

A target family registers a faster lowering of a kernel op where its predicate holds,

    @register_kernel("thumbv7em", kernel.MatmulOp, applies=lambda op: op.is_integer())
    def smlad_matmul(ctx: KernelContext, op: kernel.MatmulOp) -> None: ...

which emits its code at `ctx.builder` (before the op, which `convert-kernels-to-loops` then
erases); everything else takes the generic loop nest (`GENERIC_KERNELS`), which always applies.
This is IREE's micro-kernel pattern done in IR, so a kernel is specialised to its tile's static
shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import MemRefType, StridedLayoutAttr, i32
from xdsl.ir import Operation, SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects.builder import LoopBuilder, ModuleGlobals
from tinyattn.dialects.dense import from_numpy
from tinyattn.lowering import loop_kernels as k

# The kernel families a target may name (backend/targets.py): `generic` has only the loop nests.
KERNEL_TARGETS = ("generic", "thumbv7em", "rv32", "gap9")
# The families whose kernels load operands by words along the depth, so the tiling passes pack
# the weights for them (`pack-weights`); elsewhere packing gains nothing.
PACKED_WEIGHTS_TARGETS = ("thumbv7em", "gap9")


class StackScratch:
    """One stack buffer per function that every kernel in it shares for its scratch (kernels
    run one after the other), allocated at the function's entry: a static frame slot of the
    largest kernel's need, not a stack growth per call or per loop iteration."""

    def __init__(self):
        self.allocations: dict[func.FuncOp, memref.AllocaOp] = {}

    def allocation(self, op: Operation, words: int) -> SSAValue:
        """The buffer of the function around `op`, grown to at least `words` i32."""
        function = op.parent_op()
        while not isinstance(function, func.FuncOp):
            assert function is not None, "a kernel op outside a function"
            function = function.parent_op()
        old = self.allocations.get(function)
        if old is not None and old.memref.type.get_shape()[0] >= words:
            return old.memref
        alloca = memref.AllocaOp.get(i32, shape=[words])
        entry = function.body.blocks.first
        assert entry is not None and entry.first_op is not None
        entry.insert_op_before(alloca, entry.first_op)
        if old is not None:
            old.memref.replace_all_uses_with(alloca.memref)
            old.detach()
            old.erase()
        self.allocations[function] = alloca
        return alloca.memref


@dataclass(frozen=True)
class KernelContext:
    """Where a lowering emits its code, how it makes module-level constant tables, and its
    stack scratch."""

    builder: LoopBuilder
    globals: ModuleGlobals
    scratch: StackScratch

    def table(self, op: Operation, name: str, values: Sequence[int]) -> SSAValue:
        """A read-only i32 table of `values`, readable at the builder's position."""
        data = from_numpy(np.array(values, np.int32), i32)
        return self.globals.constant(self.builder, name, data, op)

    def stack_buffers(self, op: Operation, *words: int) -> list[SSAValue]:
        """Scratch buffers of `words` i32 each (1-D), on the stack of the function around `op`
        (module docstring of `StackScratch`)."""
        whole = self.scratch.allocation(op, sum(words))
        views, offset = [], 0
        for count in words:
            result = MemRefType(i32, [count], StridedLayoutAttr([1], offset))
            view = memref.SubviewOp(whole, [], [], [], [offset], [count], [1], result)
            views.append(self.builder.insert(view))
            offset += count
        return views

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


def lowering_for(
    target: str, op: kernel.KernelOp, generic: dict[type[kernel.KernelOp], KernelLowering]
) -> KernelLowering:
    """`target`'s lowering of `op` if one applies, else `generic`'s."""
    for registration in _TARGET_KERNELS.get(target, ()):
        if isinstance(op, registration.op) and registration.applies(op):
            return registration.lowering
    return generic[type(op)]
