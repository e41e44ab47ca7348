"""The `dma` dialect: transfers between memory levels, as an MCU's DMA engine does them.

`dma.start %src, %dst` copies one 1-D or 2-D memref (a whole buffer or a strided subview whose
rows are contiguous) into another of the same shape and returns a token; `dma.wait %token` blocks
until the copy is done. Tiling passes emit them between L2 and L1 buffers; `lower-dma` turns them
into calls of the runtime's `ta_dma_start_1d/2d` and `ta_dma_wait`.
"""

from __future__ import annotations

from xdsl.dialects.builtin import MemRefType
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException


@irdl_attr_definition
class TokenType(ParametrizedAttribute, TypeAttribute):
    """A transfer in flight."""

    name = "dma.token"


def _rows_contiguous(typ: MemRefType[Attribute]) -> bool:
    strides = typ.get_strides()
    return strides is not None and strides[-1] == 1


@irdl_op_definition
class StartOp(IRDLOperation):
    """Start copying `src` into `dst` (equal shapes and element types, rank 1 or 2)."""

    name = "dma.start"

    src = operand_def(MemRefType)
    dst = operand_def(MemRefType)
    token = result_def(TokenType)

    assembly_format = "$src `,` $dst attr-dict `:` type($src) `,` type($dst)"

    def __init__(self, src: SSAValue, dst: SSAValue):
        super().__init__(operands=[src, dst], result_types=[TokenType()])

    def verify_(self) -> None:
        src, dst = self.src.type, self.dst.type
        assert isinstance(src, MemRefType) and isinstance(dst, MemRefType)
        if tuple(src.get_shape()) != tuple(dst.get_shape()):
            raise VerifyException(
                f"source shape {list(src.get_shape())} differs from destination shape "
                f"{list(dst.get_shape())}"
            )
        if src.get_element_type() != dst.get_element_type():
            raise VerifyException(
                f"source element type {src.get_element_type()} differs from destination "
                f"element type {dst.get_element_type()}"
            )
        if len(src.get_shape()) not in (1, 2):
            raise VerifyException(f"transfers are 1-D or 2-D, got rank {len(src.get_shape())}")
        for name, typ in (("source", src), ("destination", dst)):
            if not _rows_contiguous(typ):
                raise VerifyException(f"{name} rows must be contiguous (innermost stride 1)")


@irdl_op_definition
class WaitOp(IRDLOperation):
    """Wait for the transfer of `token` to complete."""

    name = "dma.wait"

    token = operand_def(TokenType)

    assembly_format = "$token attr-dict"

    def __init__(self, token: SSAValue):
        super().__init__(operands=[token])


DMA = Dialect("dma", [StartOp, WaitOp], [TokenType])
