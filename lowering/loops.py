"""A small builder for the loop nests the kernels are made of (scf.for, memref, arith, math).

Arithmetic helpers dispatch on the value type, so one kernel serves f32 and integer data:
`add`/`mul` are addf/mulf on floats and addi/muli on integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.builder import Builder
from xdsl.dialects import arith, math, memref, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

LoopBody = Callable[["LoopBuilder", SSAValue, tuple[SSAValue, ...]], Sequence[SSAValue]]


class LoopBuilder:
    """Inserts ops at one insertion point; `for_range` opens a builder inside a loop body."""

    def __init__(self, insertion_point: InsertPoint):
        self.builder = Builder(insertion_point)

    def insert(self, op: Operation) -> SSAValue:
        self.builder.insert(op)
        return op.results[0] if op.results else None  # type: ignore[return-value]

    # -- constants ------------------------------------------------------------------------------

    def index(self, value: int) -> SSAValue:
        return self.insert(arith.ConstantOp(IntegerAttr(value, IndexType())))

    def constant(self, value: float | int, typ: Attribute) -> SSAValue:
        if isinstance(typ, AnyFloat):
            return self.insert(arith.ConstantOp(FloatAttr(float(value), typ)))
        return self.insert(arith.ConstantOp(IntegerAttr(int(value), typ)))

    # -- loops ----------------------------------------------------------------------------------

    def for_range(
        self, count: int | SSAValue, body: LoopBody, init: Sequence[SSAValue] = (), start: int = 0
    ) -> tuple[SSAValue, ...]:
        """`for iv in [start, count)` carrying `init` through `body`, which returns the next
        values of the carried variables; returns their final values."""
        upper = self.index(count) if isinstance(count, int) else count
        block = Block(arg_types=[IndexType(), *(value.type for value in init)])
        loop = scf.ForOp(self.index(start), upper, self.index(1), list(init), Region(block))
        self.builder.insert(loop)
        inner = LoopBuilder(InsertPoint.at_end(block))
        carried = body(inner, block.args[0], tuple(block.args[1:]))
        inner.builder.insert(scf.YieldOp(*carried))
        return tuple(loop.results)

    def for_nest(self, shape: Sequence[int], body: Callable[[LoopBuilder, list[SSAValue]], None]):
        """A perfect loop nest over `shape`; `body` gets the innermost builder and the indices."""

        def level(b: LoopBuilder, outer: list[SSAValue]) -> None:
            if len(outer) == len(shape):
                body(b, outer)
                return

            def step(inner: LoopBuilder, iv: SSAValue, _: tuple[SSAValue, ...]):
                level(inner, [*outer, iv])
                return ()

            b.for_range(shape[len(outer)], step)

        level(self, [])

    def if_else(
        self,
        condition: SSAValue,
        then_body: Callable[[LoopBuilder], None],
        else_body: Callable[[LoopBuilder], None],
    ) -> None:
        """`scf.if` without results."""
        regions = []
        for body in (then_body, else_body):
            block = Block()
            inner = LoopBuilder(InsertPoint.at_end(block))
            body(inner)
            inner.builder.insert(scf.YieldOp())
            regions.append(Region(block))
        self.builder.insert(scf.IfOp(condition, [], *regions))

    def equals(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.CmpiOp(a, b, "eq"))

    # -- memory ---------------------------------------------------------------------------------

    def load(self, ref: SSAValue, indices: Sequence[SSAValue]) -> SSAValue:
        return self.insert(memref.LoadOp.get(ref, list(indices)))

    def store(self, value: SSAValue, ref: SSAValue, indices: Sequence[SSAValue]) -> None:
        self.builder.insert(memref.StoreOp.get(value, ref, list(indices)))

    # -- arithmetic (float or integer by the operand type) ---------------------------------------

    def add(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.AddfOp(a, b) if _is_float(a) else arith.AddiOp(a, b))

    def sub(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.SubfOp(a, b) if _is_float(a) else arith.SubiOp(a, b))

    def mul(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.MulfOp(a, b) if _is_float(a) else arith.MuliOp(a, b))

    def div(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.DivfOp(a, b))

    def max(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.MaximumfOp(a, b) if _is_float(a) else arith.MaxSIOp(a, b))

    def exp(self, x: SSAValue) -> SSAValue:
        return self.insert(math.ExpOp(x))

    def erf(self, x: SSAValue) -> SSAValue:
        return self.insert(math.ErfOp(x))

    def sqrt(self, x: SSAValue) -> SSAValue:
        return self.insert(math.SqrtOp(x))


def _is_float(value: SSAValue) -> bool:
    return isinstance(value.type, AnyFloat)


def element_type(ref: SSAValue) -> Attribute:
    typ = ref.type
    assert isinstance(typ, MemRefType)
    return typ.get_element_type()


def is_integer(typ: Attribute) -> bool:
    return isinstance(typ, IntegerType)
