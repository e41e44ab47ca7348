"""`lower-dma`: `dma.start`/`dma.wait` -> calls of the runtime's DMA API.

    ta_dma_t ta_dma_start_1d(void *dst, const void *src, unsigned long bytes);
    ta_dma_t ta_dma_start_2d(void *dst, const void *src, unsigned long row_bytes,
                             unsigned long rows, unsigned long dst_stride_bytes,
                             unsigned long src_stride_bytes);
    void ta_dma_wait(ta_dma_t);

Addresses are passed as `index` values (the pointer width on every target: `index` is 32 bits on
the MCUs, 64 on the host), computed from the memref's aligned pointer and its offset, so strided
subviews of the arenas transfer in place. Sizes and strides are static.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import IndexType, MemRefType, ModuleOp, i32
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import dma
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.dialects.memory import element_bytes

_INDEX = IndexType()
RUNTIME_FUNCTIONS: dict[str, tuple[list[Attribute], list[Attribute]]] = {
    "ta_dma_start_1d": ([_INDEX] * 3, [i32]),
    "ta_dma_start_2d": ([_INDEX] * 6, [i32]),
    "ta_dma_wait": ([i32], []),
}


def _address(b: LoopBuilder, ref: SSAValue) -> SSAValue:
    """The byte address of `ref`'s first element."""
    pointer = b.insert(memref.ExtractAlignedPointerAsIndexOp.get(ref))
    metadata = memref.ExtractStridedMetaDataOp(ref)
    b.builder.insert(metadata)
    offset = b.mul(metadata.offset, b.index(element_bytes(ref.type.get_element_type())))
    return b.add(pointer, offset)


def _static_row_stride(typ: MemRefType[Attribute], what: str) -> int:
    strides = typ.get_strides()
    if strides is None or strides[0] is None:
        raise PassFailedException(f"lower-dma: the {what} of a transfer needs static strides")
    return strides[0]


def _lower_start(op: dma.StartOp) -> None:
    b = LoopBuilder(InsertPoint.before(op))
    typ = op.src.type
    assert isinstance(typ, MemRefType)
    element = element_bytes(typ.get_element_type())
    shape = typ.get_shape()
    addresses = [_address(b, op.dst), _address(b, op.src)]
    if len(shape) == 1:
        call = func.CallOp("ta_dma_start_1d", [*addresses, b.index(shape[0] * element)], [i32])
    else:
        strides = [
            _static_row_stride(op.dst.type, "destination"),
            _static_row_stride(op.src.type, "source"),
        ]
        sizes = [shape[1] * element, shape[0], *(stride * element for stride in strides)]
        call = func.CallOp("ta_dma_start_2d", [*addresses, *map(b.index, sizes)], [i32])
    b.builder.insert(call)
    op.token.replace_all_uses_with(call.res[0])
    op.detach()
    op.erase()


def _lower_wait(op: dma.WaitOp) -> None:
    op.parent_block().insert_op_before(func.CallOp("ta_dma_wait", [op.token], []), op)
    op.detach()
    op.erase()


def _declare_runtime(module: ModuleOp, used: set[str]) -> None:
    declared = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    for name in sorted(used - declared, reverse=True):  # each goes first: sorted in the end
        inputs, outputs = RUNTIME_FUNCTIONS[name]
        module.body.block.insert_op_before(
            func.FuncOp.external(name, inputs, outputs), module.body.block.first_op
        )


@dataclass(frozen=True)
class LowerDMA(ModulePass):
    """Turn DMA transfers into runtime calls."""

    name = "lower-dma"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        used: set[str] = set()
        ops: list[Operation] = list(op.walk())
        for start in (o for o in ops if isinstance(o, dma.StartOp)):
            rank = len(start.src.type.get_shape())
            used.add(f"ta_dma_start_{rank}d")
            _lower_start(start)
        for wait in (o for o in ops if isinstance(o, dma.WaitOp)):
            used.add("ta_dma_wait")
            _lower_wait(wait)
        if used:
            _declare_runtime(op, used)
