"""What the attention tiling passes share: slices of L2 buffers, L1 tiles, DMA between them.

On a target with two memory levels a tile is an L1 copy of L2 data, moved by `dma` transfers. On a
single-level target (L1 and L2 are the same memory) such a copy would only duplicate data, so the
passes run with `dma=false`: the compute reads and writes the L2 data in place and only scratch
buffers (results that exist nowhere else) are allocated. `Staging` makes that choice once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

from xdsl.dialects import bufferization, memref
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    MemRefType,
    StridedLayoutAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import dma
from tinyattn.dialects import tinyattn as ta
from tinyattn.lowering.layer_report import LAYER_ATTR, tag
from tinyattn.lowering.loops import LoopBuilder
from tinyattn.lowering.memory_plan import ALIGNMENT, aligned

L1 = StringAttr("L1")
F32_BYTES = 4

Attention = ta.MHSAOp | ta.FusedMHSAOp


def tiles_bytes(tiles: Sequence[tuple[int, ...]]) -> int:
    """The L1 bytes of f32 tiles as plan-memory lays them out (each buffer aligned)."""
    return sum(aligned(prod(shape) * F32_BYTES) for shape in tiles)


def row_blocks(pass_name: str, s: int, rows: int | str) -> list[int]:
    """The candidate row-block sizes, largest first: the divisors of S, or the one asked for."""
    if rows == "auto":
        return [d for d in range(s, 0, -1) if s % d == 0]
    if not str(rows).isdigit():
        raise PassFailedException(f"{pass_name}: rows must be 'auto' or a number, got '{rows}'")
    block = int(rows)
    if block < 1 or s % block:
        raise PassFailedException(
            f"{pass_name}: rows={block} must divide the sequence length S={s}"
        )
    return [block]


def choose_rows(
    pass_name: str,
    op: Attention,
    l1_bytes: int,
    rows: int | str,
    working_set: Callable[[int], int],
) -> int:
    """The largest row block whose L1 working set (`working_set(rows)`) fits `l1_bytes`; fewer,
    larger blocks mean fewer transfers and loop trips. No fit is a diagnostic with the minimum."""
    s, e, p, _ = op.dims()
    candidates = row_blocks(pass_name, s, rows)
    for block in candidates:
        if working_set(block) <= l1_bytes:
            return block
    raise PassFailedException(
        f"{pass_name}: the attention (S={s} E={e} P={p}) needs at least "
        f"{working_set(candidates[-1])} bytes of L1 with {candidates[-1]}-row blocks, "
        f"but l1-bytes={l1_bytes}"
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


def head_slice(b: LoopBuilder, weights: SSAValue, head: SSAValue) -> SSAValue:
    """Head `head` of a [H, ...] buffer: [E, P], [P, E], [E, E], [S, P], [P] or [E]."""
    shape = list(weights.type.get_shape())
    return subview(b, weights, [head] + [0] * (len(shape) - 1), [1, *shape[1:]], squeeze=(0,))


def rows_of(b: LoopBuilder, matrix: SSAValue, row0: SSAValue, rows: int) -> SSAValue:
    """Rows [row0, row0 + rows) of a 2-D buffer."""
    return subview(b, matrix, [row0, 0], [rows, matrix.type.get_shape()[1]])


def operand_buffers(b: LoopBuilder, op: Attention) -> dict[str, SSAValue]:
    """The attention's operands as memrefs, by name (x, wq, bq, ... or x, wqk, bqk, ...)."""
    names = (
        ["x", "wqk", "bqk", "wv", "bv", "wo", "bo"]
        if isinstance(op, ta.FusedMHSAOp)
        else ["x", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"]
    )
    return {
        name: b.insert(
            bufferization.ToBufferOp(operands=[value], result_types=[_memref(value.type)])
        )
        for name, value in zip(names, op.operands, strict=True)
    }


def rewrite_attention(
    op: Attention, staging: Staging, build: Callable[[LoopBuilder], SSAValue]
) -> None:
    """Replace `op` by what `build` emits before it (returning the result buffer), back across
    the tensor boundary; the emitted top-level ops carry the op's layer tag and DMA bytes."""
    block, before = op.parent_block(), op.prev_op
    assert block is not None
    b = LoopBuilder(InsertPoint.before(op))
    result = b.insert(bufferization.ToTensorOp(build(b)))
    op.result.replace_all_uses_with(result)
    emitted: list[Operation] = []
    current = before.next_op if before else block.first_op
    while current is not op and current is not None:
        emitted.append(current)
        current = current.next_op
    tag(emitted, op.attributes.get(LAYER_ATTR), staging.moved)
    op.detach()
    op.erase()


def _memref(typ: Attribute) -> MemRefType[Attribute]:
    assert isinstance(typ, TensorType)
    return MemRefType(typ.get_element_type(), typ.get_shape())


@dataclass
class Staging:
    """Where tiles live: L1 copies moved by DMA (`copies`), or the L2 data itself. `moved`
    counts the bytes the emitted transfers move over the whole schedule."""

    copies: bool
    moved: int = 0

    def scratch(self, b: LoopBuilder, name: str, shape: Sequence[int]) -> SSAValue:
        """An L1 buffer for values computed in the tile (they exist nowhere else)."""
        tile = b.insert(memref.AllocOp.get(ta.f32, ALIGNMENT, list(shape), memory_space=L1))
        tile.name_hint = f"{name}_l1"
        return tile

    def copy(self, b: LoopBuilder, name: str, shape: Sequence[int]) -> SSAValue | None:
        """An L1 buffer for a copy of L2 data; None where the L2 data is used in place."""
        return self.scratch(b, name, shape) if self.copies else None

    def fetch(
        self, b: LoopBuilder, pairs: Sequence[tuple[SSAValue, SSAValue | None]], times: int
    ) -> list[SSAValue]:
        """Bring each (L2 source, L1 copy) in, `times` times over the schedule; what the compute
        reads from, per pair."""
        self._transfer(b, [(source, tile) for source, tile in pairs if tile is not None], times)
        return [source if tile is None else tile for source, tile in pairs]

    def store(
        self, b: LoopBuilder, pairs: Sequence[tuple[SSAValue | None, SSAValue]], times: int
    ) -> None:
        """Write each (L1 copy, L2 destination) back, `times` times; nothing to do in place."""
        self._transfer(b, [(tile, dest) for tile, dest in pairs if tile is not None], times)

    def _transfer(
        self, b: LoopBuilder, pairs: Sequence[tuple[SSAValue, SSAValue]], times: int
    ) -> None:
        """Start every transfer, then wait for all of them (they may overlap)."""
        tokens = [b.insert(dma.StartOp(src, dst)) for src, dst in pairs]
        for token in tokens:
            b.builder.insert(dma.WaitOp(token))
        self.moved += times * sum(_nbytes(dst.type) for _, dst in pairs)


def computed_in(tile: SSAValue | None, dest: SSAValue) -> SSAValue:
    """Where a result tile is computed: its L1 copy, or its L2 destination in place."""
    return dest if tile is None else tile


def _nbytes(typ: Attribute) -> int:
    assert isinstance(typ, MemRefType)
    return prod(typ.get_shape()) * F32_BYTES
