"""IR-building helpers every stage shares: a builder for loop nests (scf, memref, arith, math),
the memref types that hold tensors, reshaped views and module-level constants.

Arithmetic helpers dispatch on the value type, so one kernel serves f32 and integer data:
`add`/`mul` are addf/mulf on floats and addi/muli on integers. Integers compute in i32 (the
accumulator width of int8 deployment), whose arithmetic wraps; narrower integers live only in
memory, widened on load and truncated on store (`convert`). Memrefs hold signless integers, so
whether a stored 8-bit value is unsigned is the caller's knowledge, passed to `convert`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

from xdsl.builder import Builder
from xdsl.dialects import arith, math, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AnyFloat,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
    StridedLayoutAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

from tinyattn.dialects.memory import ALIGNMENT

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
        then_body: Callable[[LoopBuilder], Sequence[SSAValue] | None],
        else_body: Callable[[LoopBuilder], Sequence[SSAValue] | None],
    ) -> tuple[SSAValue, ...]:
        """`scf.if`; its results are what both bodies return (values of the same types)."""
        regions, types = [], []
        for body in (then_body, else_body):
            block = Block()
            inner = LoopBuilder(InsertPoint.at_end(block))
            yielded = list(body(inner) or ())
            inner.builder.insert(scf.YieldOp(*yielded))
            regions.append(Region(block))
            types.append([value.type for value in yielded])
        assert types[0] == types[1], f"the branches yield {types[0]} and {types[1]}"
        branch = scf.IfOp(condition, types[0], *regions)
        self.builder.insert(branch)
        return tuple(branch.results)

    def while_loop(
        self,
        init: Sequence[SSAValue],
        before: Callable[[LoopBuilder, tuple[SSAValue, ...]], tuple[SSAValue, Sequence[SSAValue]]],
        after: Callable[[LoopBuilder, tuple[SSAValue, ...]], Sequence[SSAValue]],
    ) -> tuple[SSAValue, ...]:
        """`scf.while` carrying `init`: `before` gets the carried values and returns a condition
        and the values it passes on, to `after` (which returns the next carried values) while
        the condition holds, else out of the loop; returns the values passed out."""
        first = Block(arg_types=[value.type for value in init])
        inner = LoopBuilder(InsertPoint.at_end(first))
        condition, passed = before(inner, tuple(first.args))
        inner.builder.insert(scf.ConditionOp(condition, *passed))
        second = Block(arg_types=[value.type for value in passed])
        inner = LoopBuilder(InsertPoint.at_end(second))
        inner.builder.insert(scf.YieldOp(*after(inner, tuple(second.args))))
        loop = scf.WhileOp(
            list(init), [value.type for value in passed], Region(first), Region(second)
        )
        self.builder.insert(loop)
        return tuple(loop.results)

    def equals(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.CmpiOp(a, b, "eq"))

    def less(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """`a < b` on signed integers."""
        return self.insert(arith.CmpiOp(a, b, "slt"))

    def select(self, condition: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        """`condition ? a : b`."""
        return self.insert(arith.SelectOp(condition, a, b))

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
        """Division; on integers signed and rounding down (Python's `//`)."""
        return self.insert(arith.DivfOp(a, b) if _is_float(a) else arith.FloorDivSIOp(a, b))

    def rem(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """Unsigned integer (or index) remainder."""
        return self.insert(arith.RemUIOp(a, b))

    def max(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """The larger; on floats a NaN of either operand wins (as numpy's and ONNX's)."""
        if not _is_float(a):
            return self.insert(arith.MaxSIOp(a, b))
        return self._float_extreme(a, b, "olt")

    def max_number(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """`a > b ? a : b` on floats: one compare and select, where `max` (NaN-propagating,
        as numpy's) takes two. For values known to be numbers (a softmax's scores)."""
        return self.select(self.insert(arith.CmpfOp(a, b, "ogt")), a, b)

    def min(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """The smaller; on floats a NaN of either operand wins (as numpy's and ONNX's)."""
        if not _is_float(a):
            return self.insert(arith.MinSIOp(a, b))
        return self._float_extreme(a, b, "ogt")

    def _float_extreme(self, a: SSAValue, b: SSAValue, b_wins: str) -> SSAValue:
        """`b` where `a <b_wins> b` or b is NaN, else `a` (so also a NaN `a`): compares and
        selects, where `arith.maximumf`/`minimumf` take ~25 instructions on an FPU without
        them (Cortex-M4); the NaN test of a constant `b` folds away. Of two zeros either may be
        returned (they compare equal)."""
        pick = self.select(self.insert(arith.CmpfOp(a, b, b_wins)), b, a)
        return self.select(self.insert(arith.CmpfOp(b, b, "uno")), b, pick)

    def clip(self, x: SSAValue, low: int, high: int) -> SSAValue:
        """`min(max(x, low), high)` (signed integers)."""
        return self.min(self.max(x, self.constant(low, x.type)), self.constant(high, x.type))

    def shr(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """Arithmetic (sign-propagating) right shift: `floor(a / 2^b)`."""
        return self.insert(arith.ShRSIOp(a, b))

    def udiv(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """Unsigned integer division (rounds down)."""
        return self.insert(arith.DivUIOp(a, b))

    def sdiv(self, a: SSAValue, b: SSAValue) -> SSAValue:
        """Signed integer division rounding toward zero (C's `/`)."""
        return self.insert(arith.DivSIOp(a, b))

    def shl(self, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.insert(arith.ShLIOp(a, b))

    def ctlz(self, a: SSAValue) -> SSAValue:
        """The number of leading zero bits of an integer (its width for 0)."""
        return self.insert(math.CountLeadingZerosOp(a))

    def convert(self, value: SSAValue, typ: Attribute, unsigned: bool = False) -> SSAValue:
        """`value` as integer type `typ`: sign- or (`unsigned`) zero-extended, or truncated; any
        other value unchanged."""
        source = value.type
        if source == typ or not isinstance(source, IntegerType):
            return value
        assert isinstance(typ, IntegerType)
        if typ.width.data < source.width.data:
            return self.insert(arith.TruncIOp(value, typ))
        return self.insert(arith.ExtUIOp(value, typ) if unsigned else arith.ExtSIOp(value, typ))

    def fma(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        """`a * b + c` rounded once (floats)."""
        return self.insert(math.FmaOp(a, b, c))

    def exp(self, x: SSAValue) -> SSAValue:
        return self.insert(math.ExpOp(x))

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


def compute_type(storage: Attribute) -> Attribute:
    """The type a stored element is computed in: integers in i32, anything else as stored."""
    return i32 if is_integer(storage) else storage


def storage_type(element: Attribute) -> Attribute:
    """Memrefs hold signless integers (arith needs them); ui8 data is stored as i8."""
    if isinstance(element, IntegerType) and element.signedness.data != Signedness.SIGNLESS:
        return IntegerType(element.width.data)
    return element


def memref_type(tensor: Attribute) -> MemRefType[Attribute]:
    """The memref holding a value of static tensor type `tensor`, in its storage type."""
    assert isinstance(tensor, TensorType)
    return MemRefType(storage_type(tensor.get_element_type()), tensor.get_shape())


def reshaped(b: LoopBuilder, ref: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`ref` (contiguous, row-major) seen with another static shape."""
    typ = ref.type
    assert isinstance(typ, MemRefType)
    if tuple(typ.get_shape()) == tuple(shape):
        return ref
    strides = [prod(shape[i + 1 :]) for i in range(len(shape))]
    return b.insert(
        memref.ReinterpretCastOp(
            ref,
            [],
            [],
            [],
            [0],
            list(shape),
            strides,
            MemRefType(typ.get_element_type(), shape, memory_space=typ.memory_space),
        )
    )


def subview(
    b: LoopBuilder,
    source: SSAValue,
    offsets: list[int | SSAValue],
    sizes: list[int],
    squeeze: Sequence[int] = (),
) -> SSAValue:
    """A unit-stride slice of `source` without its (size-1) dimensions `squeeze`."""
    typ = source.type
    assert isinstance(typ, MemRefType)
    strides = typ.get_strides()
    assert strides is not None
    dynamic = [o for o in offsets if isinstance(o, SSAValue)]
    static_offsets = [DYNAMIC_INDEX if isinstance(o, SSAValue) else o for o in offsets]
    offset = None if dynamic else sum(o * st for o, st in zip(offsets, strides, strict=True))
    kept = [d for d in range(len(sizes)) if d not in squeeze]
    layout = StridedLayoutAttr([strides[d] for d in kept], offset)
    shape = [sizes[d] for d in kept]
    result = MemRefType(typ.get_element_type(), shape, layout, typ.memory_space)
    return b.insert(
        memref.SubviewOp(source, dynamic, [], [], static_offsets, sizes, [1] * len(sizes), result)
    )


class ModuleGlobals:
    """Read-only `memref.global`s of one module (weights, per-channel tables), named after
    what they hold and placed before the function that uses them."""

    def __init__(self, module: ModuleOp):
        self.module = module
        self.symbols = {op.sym_name.data for op in module.ops if hasattr(op, "sym_name")}

    def _symbol(self, hint: str) -> str:
        """A fresh module-level symbol named after `hint` (weights keep their model names)."""
        base = "".join(c if c.isalnum() or c in "_." else "_" for c in hint)
        name, suffix = base, 0
        while name in self.symbols:
            suffix += 1
            name = f"{base}_{suffix}"
        self.symbols.add(name)
        return name

    def constant(
        self, b: LoopBuilder, name: str | None, data: DenseIntOrFPElementsAttr, user: Operation
    ) -> SSAValue:
        """A global holding `data` (in its storage type), declared before `user`'s top-level
        op, and a reference to it at `b`."""
        typ = memref_type(data.type)
        if typ.get_element_type() != data.get_element_type():
            data = DenseIntOrFPElementsAttr(
                TensorType(typ.get_element_type(), typ.get_shape()), data.data
            )
        symbol = self._symbol(name or "const")
        glob = memref.GlobalOp.get(
            StringAttr(symbol), typ, data, constant=UnitAttr(), alignment=ALIGNMENT
        )
        top = user
        while top.parent_op() is not self.module:
            parent = top.parent_op()
            assert parent is not None
            top = parent
        self.module.body.block.insert_op_before(glob, top)
        ref = b.insert(memref.GetGlobalOp(symbol, typ))
        if name:
            ref.name_hint = name
        return ref
