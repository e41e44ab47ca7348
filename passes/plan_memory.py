"""`plan-memory`: replace a function's buffers by views into static arenas.

Each top-level `memref.alloc` lives from its position to its `memref.dealloc` (or the end of the
function). Buffers are grouped by memory level (`MemoryLevel.of` their memref), placed with
`plan_memory`, and become `memref.view`s of one `memref<Nxi8>` arena argument per level,
appended to the function's arguments (fastest level first). The function records what it
needs in `tinyattn.arena_bytes` (bytes per level) and `tinyattn.live_peak_bytes` (the largest
total of live buffer bytes over the schedule, all levels together). A level whose arena
exceeds its capacity is a diagnostic that states the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    NoneAttr,
    i8,
    i64,
)
from xdsl.ir import Attribute
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects.annotations import ARENA_BYTES, LIVE_PEAK_BYTES
from tinyattn.dialects.memory import LEVELS, MemoryLevel, nbytes
from tinyattn.passes.memory_plan import Lifetime, plan_memory


def buffer_lifetimes(
    function: func.FuncOp, single_level: bool = False
) -> dict[str, list[Lifetime]]:
    """Each top-level alloc's bytes and the top-level positions it is live over (keyed by the
    alloc), by memory level; on a single level everything is L2."""
    ops = list(function.body.block.ops)
    position = {op: index for index, op in enumerate(ops)}
    ends = {
        op.memref.owner: position[op]
        for op in ops
        if isinstance(op, memref.DeallocOp) and op.memref.owner in position
    }
    by_level: dict[str, list[Lifetime]] = {}
    for alloc in [op for op in ops if isinstance(op, memref.AllocOp)]:
        typ = alloc.memref.type
        assert isinstance(typ, MemRefType)
        if not typ.has_static_shape():
            raise PassFailedException(f"buffer {typ} has a dynamic shape")
        lifetime = Lifetime(alloc, nbytes(typ), position[alloc], ends.get(alloc, len(ops)))
        level = MemoryLevel.L2 if single_level else MemoryLevel.of(typ)
        by_level.setdefault(level, []).append(lifetime)
    return by_level


def plan_function(
    function: func.FuncOp, capacities: dict[str, int], single_level: bool = False
) -> None:
    block = function.body.block
    by_level = buffer_lifetimes(function, single_level)
    if not by_level:
        return
    allocs = [lifetime.key for level in by_level.values() for lifetime in level]
    plans = {level: plan_memory(by_level[level]) for level in LEVELS if level in by_level}
    for level, plan in plans.items():
        capacity = capacities.get(level)
        if capacity is not None and plan.arena_bytes > capacity:
            raise PassFailedException(
                f"@{function.sym_name.data} needs {plan.arena_bytes} bytes of {level} for its "
                f"activations, but {level} has {capacity} bytes"
            )
    arenas = {
        level: block.insert_arg(MemRefType(i8, [plan.arena_bytes]), len(block.args))
        for level, plan in plans.items()
    }
    for level, arena in arenas.items():
        arena.name_hint = f"arena_{level.lower()}"
    for alloc in allocs:
        level = MemoryLevel.L2 if single_level else MemoryLevel.of(alloc.memref.type)
        offset = arith.ConstantOp(IntegerAttr(plans[level].offsets[alloc], IndexType()))
        view = memref.ViewOp(arenas[level], offset, [], _without_space(alloc.memref.type))
        block.insert_ops_before([offset, view], alloc)
        view.result.name_hint = alloc.memref.name_hint
        view.attributes.update(
            {name: a for name, a in alloc.attributes.items() if name.startswith("tinyattn.")}
        )
        alloc.memref.replace_all_uses_with(view.result)
        block.erase_op(alloc)
    for op in list(block.ops):
        if isinstance(op, memref.DeallocOp) and isinstance(op.memref.owner, memref.ViewOp):
            block.erase_op(op)
    _clear_memory_spaces(function)
    function.function_type = FunctionType.from_lists(
        [arg.type for arg in block.args], function.function_type.outputs.data
    )
    if function.arg_attrs is not None:  # the arenas' attributes: none
        missing = len(block.args) - len(function.arg_attrs.data)
        function.arg_attrs = ArrayAttr([*function.arg_attrs.data, *[DictionaryAttr({})] * missing])
    function.attributes[ARENA_BYTES] = DictionaryAttr(
        {level: IntegerAttr(plan.arena_bytes, i64) for level, plan in plans.items()}
    )
    all_lifetimes = [lifetime for level in by_level.values() for lifetime in level]
    function.attributes[LIVE_PEAK_BYTES] = IntegerAttr(
        plan_memory(all_lifetimes).live_peak_bytes, i64
    )


def _without_space(typ: MemRefType[Attribute]) -> MemRefType[Attribute]:
    return MemRefType(typ.get_element_type(), typ.get_shape(), typ.layout)


def _clear_memory_spaces(function: func.FuncOp) -> None:
    """Once every level is an arena, the spaces have served: drop them from all types (views of
    L1 buffers included), as upstream's memref-to-llvm accepts only integer spaces."""
    for op in function.walk():
        blocks = (block for region in op.regions for block in region.blocks)
        for value in (*op.results, *(arg for block in blocks for arg in block.args)):
            typ = value.type
            if isinstance(typ, MemRefType) and not isinstance(typ.memory_space, NoneAttr):
                Rewriter.replace_value_with_new_type(value, _without_space(typ))


@dataclass(frozen=True)
class PlanMemory(ModulePass):
    """Static arena allocation of every function's buffers, with capacity checks."""

    name = "plan-memory"

    l1_bytes: int | None = None
    l2_bytes: int | None = None
    single_level: bool = False  # one physical memory: L1 buffers go into the L2 arena too

    def __post_init__(self):
        for option, size in (("l1-bytes", self.l1_bytes), ("l2-bytes", self.l2_bytes)):
            if size is not None and size <= 0:
                raise ValueError(f"{self.name}: {option} must be positive, got {size}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        capacities = {
            level: size
            for level, size in ((MemoryLevel.L1, self.l1_bytes), (MemoryLevel.L2, self.l2_bytes))
            if size is not None
        }
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if not function.is_declaration:
                plan_function(function, capacities, self.single_level)
