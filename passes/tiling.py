"""What the attention tiling passes share: slices of L2 buffers, L1 tiles, DMA between them.

On a target with two memory levels a tile is an L1 copy of L2 data, moved by `dma` transfers. On a
single-level target (L1 and L2 are the same memory) such a copy would only duplicate data, so the
passes run with `dma=false`: the compute reads and writes the L2 data in place and only scratch
buffers (results that exist nowhere else) are allocated. `Staging` makes that choice once.

Tiles hold the element type of their data: f32, or for int8 attention i8 activations and weights
with i32 biases and accumulators (`Precision`), so L1 budgets and transfers count real bytes.
Memrefs hold ui8 data as i8 (`storage_type`); a ui8 operand or result crosses the tensor boundary
through an `unrealized_conversion_cast` between the two memref types, which
`convert-tinyattn-to-kernels` folds (they are the same bytes).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from math import prod
from typing import ClassVar

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, bufferization, memref
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    MemRefType,
    ModuleOp,
    TensorType,
    UnrealizedConversionCastOp,
    f32,
    i8,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import dma
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import LAYER_ATTR, tag
from tinyattn.dialects.builder import LoopBuilder, memref_type, storage_type, subview
from tinyattn.dialects.dense import from_numpy, to_numpy
from tinyattn.dialects.memory import ALIGNMENT, MemoryLevel, aligned, element_bytes, nbytes

Attention = ta.MHSAOp | ta.FusedMHSAOp


@dataclass(frozen=True)
class Precision:
    """The element types of an attention's buffers: `data` for activations and weights, `wide`
    for biases and accumulators; `softmax_row`: its integer softmax needs an i32 scratch row."""

    data: Attribute
    wide: Attribute
    softmax_row: bool = False

    @staticmethod
    def of(op: Attention) -> Precision:
        if not op.is_integer():
            return F32
        return Precision(i8, i32, softmax_row=op.isoftmax is not None)

    @property
    def integer(self) -> bool:
        return self.data != f32


F32 = Precision(f32, f32)


class Tile(tuple[int, ...]):
    """The shape of an L1 buffer (a tuple, so `prod(tile)` counts its elements) and the element
    type it holds."""

    element: Attribute

    def __new__(cls, shape: Sequence[int], element: Attribute) -> Tile:
        tile = super().__new__(cls, shape)
        tile.element = element
        return tile

    @property
    def nbytes(self) -> int:
        return prod(self) * element_bytes(self.element)


def tiles_bytes(tiles: Sequence[Tile]) -> int:
    """The L1 bytes of `tiles` as plan-memory lays them out (each buffer aligned)."""
    return sum(aligned(tile.nbytes) for tile in tiles)


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


class L1TooSmall(PassFailedException):
    """No row block of a schedule fits the L1 budget; the message states the minimum."""


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
    raise L1TooSmall(
        f"{pass_name}: the attention (S={s} E={e} P={p}) needs at least "
        f"{working_set(candidates[-1])} bytes of L1 with {candidates[-1]}-row blocks, "
        f"but l1-bytes={l1_bytes}"
    )


@dataclass(frozen=True)
class AttentionTiling(ModulePass, ABC):
    """The options and the driver both attention tiling passes share: each attention gets the
    largest row block whose L1 working set fits `l1-bytes` (`choose_rows`), then is rewritten;
    `dma=false` (a single-level target) computes on the L2 data in place; `pack-weights`
    rearranges constant weights (`PACKING`) so that every matmul reads its rhs along the depth
    (`transpose_rhs`) and V is computed transposed, the layout of depth-contiguous kernels."""

    l1_bytes: int = 128 * 1024
    rows: int | str = "auto"
    dma: bool = True
    pack_weights: bool = False

    PACKING: ClassVar[Packing]

    def __post_init__(self):
        if self.l1_bytes <= 0:
            raise ValueError(f"{self.name}: l1-bytes must be positive, got {self.l1_bytes}")

    @abstractmethod
    def working_set(self, attention: Attention, rows: int) -> int:
        """The L1 bytes `attention` needs with `rows`-row blocks."""

    @abstractmethod
    def rewrite(self, attention: Attention, rows: int, staging: Staging, packed: bool) -> None:
        """Replace `attention` by its tiled schedule (its weights packed if `packed`)."""

    def fallback(self) -> AttentionTiling | None:
        """The schedule an attention gets where no row block of this one fits in L1 and the
        rows are `auto` (None: refuse, with the minimum it needs)."""
        return None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        attentions = [o for o in op.walk() if isinstance(o, Attention)]
        for index, attention in enumerate(attentions):
            schedule: AttentionTiling = self
            try:
                working_set = partial(self.working_set, attention)
                rows = choose_rows(self.name, attention, self.l1_bytes, self.rows, working_set)
            except L1TooSmall as refusal:
                fallback = self.fallback() if self.rows == "auto" else None
                if fallback is None:
                    raise
                try:
                    rows = choose_rows(
                        fallback.name,
                        attention,
                        fallback.l1_bytes,
                        fallback.rows,
                        partial(fallback.working_set, attention),
                    )
                except L1TooSmall:
                    raise refusal from None
                schedule = fallback
                print(
                    f"remark: {refusal} (attention #{index}); scheduled by {fallback.name} "
                    f"instead, in {rows}-row blocks",
                    file=sys.stderr,
                )
            packed = self.pack_weights and packable(attention, schedule.PACKING)
            schedule.rewrite(attention, rows, Staging(copies=self.dma), packed)


def head_slice(b: LoopBuilder, weights: SSAValue, head: SSAValue) -> SSAValue:
    """Head `head` of a [H, ...] buffer: [E, P], [P, E], [E, E], [S, P], [P] or [E]."""
    shape = list(weights.type.get_shape())
    return subview(b, weights, [head] + [0] * (len(shape) - 1), [1, *shape[1:]], squeeze=(0,))


def rows_of(b: LoopBuilder, matrix: SSAValue, row0: SSAValue, rows: int) -> SSAValue:
    """Rows [row0, row0 + rows) of a 2-D buffer."""
    return subview(b, matrix, [row0, 0], [rows, matrix.type.get_shape()[1]])


def operand_names(op: Attention) -> list[str]:
    """The attention's operands by name (x, wq, bq, ... or x, wqk, bqk, ...)."""
    if isinstance(op, ta.FusedMHSAOp):
        return ["x", "wqk", "bqk", "wv", "bv", "wo", "bo"]
    return ["x", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"]


# Weight packing: each weight rearranged offline so that a kernel reads it along the depth of
# its product (rows of the rhs, `transpose_rhs`), the layout dot-product and SMLAD kernels
# load by words. (axes permutation, then the 2-D or 3-D shape as a function of S, E, P, H.)
Packing = dict[str, tuple[tuple[int, ...], Callable[[int, int, int, int], tuple[int, ...]]]]


def packable(op: Attention, packing: Packing) -> bool:
    """Whether every weight `packing` rearranges is a constant (known at compile time)."""
    operands = dict(zip(operand_names(op), op.operands, strict=True))
    return all(
        name not in operands or isinstance(operands[name].owner, arith.ConstantOp)
        for name in packing
    )


def operand_buffers(
    b: LoopBuilder, op: Attention, packing: Packing | None = None
) -> dict[str, SSAValue]:
    """The attention's operands as memrefs, by name; with `packing` (where `packable`), its
    weights rearranged offline: a permutation of their axes and a reshape, as new constants
    named after them (no byte more: packing only reorders)."""
    buffers: dict[str, SSAValue] = {}
    made: dict[tuple[SSAValue, tuple], SSAValue] = {}  # one buffer per value and layout
    for name, value in zip(operand_names(op), op.operands, strict=True):
        perm, shape = packing[name] if packing and name in packing else ((), None)
        layout = (perm, shape(*op.dims()) if shape else ())
        if (value, layout) not in made:
            source = _packed(b, value, perm, layout[1]) if shape else value
            made[value, layout] = _buffer(b, source)
        buffers[name] = made[value, layout]
    return buffers


def _packed(
    b: LoopBuilder, value: SSAValue, perm: tuple[int, ...], shape: tuple[int, ...]
) -> SSAValue:
    """Constant `value` with its axes permuted by `perm`, reshaped to `shape`: a new constant."""
    owner = value.owner
    assert isinstance(owner, arith.ConstantOp)
    assert isinstance(owner.value, DenseIntOrFPElementsAttr)
    data = np.transpose(to_numpy(owner.value), perm).reshape(shape)
    packed = b.insert(arith.ConstantOp(from_numpy(data, owner.value.get_element_type())))
    packed.name_hint = value.name_hint
    return packed


def l2_buffer(
    b: LoopBuilder, name: str | None, shape: Sequence[int], element: Attribute
) -> SSAValue:
    """An L2 buffer of `element`s (ui8 stored as i8)."""
    buffer = b.insert(memref.AllocOp.get(storage_type(element), ALIGNMENT, list(shape)))
    buffer.name_hint = name
    return buffer


def stage_requants(op: Attention) -> dict[str, ta.RequantAttr | None]:
    """The requantization of each stage of an int8 attention ("q", "k", "qk", "v", "score",
    "context", "out"; None where the op has none, as in f32): the epilogues of its matmuls."""
    stages = ("q", "k", "qk", "v", "score", "context", "out")
    return {stage: op.properties.get(f"{stage}_requant") for stage in stages}  # type: ignore


def _buffer(b: LoopBuilder, value: SSAValue) -> SSAValue:
    """The buffer of tensor `value`, in its storage type."""
    buffer = b.insert(
        bufferization.ToBufferOp(operands=[value], result_types=[_tensor_memref(value)])
    )
    return _cast(b, buffer, memref_type(value.type))


def _tensor_memref(value: SSAValue) -> MemRefType[Attribute]:
    """The memref type bufferization pairs with tensor `value` (same element type)."""
    typ = value.type
    assert isinstance(typ, TensorType)
    return MemRefType(typ.get_element_type(), typ.get_shape())


def _cast(b: LoopBuilder, buffer: SSAValue, typ: MemRefType[Attribute]) -> SSAValue:
    """`buffer` seen as `typ` (the same bytes: ui8 <-> i8)."""
    if buffer.type == typ:
        return buffer
    return b.insert(UnrealizedConversionCastOp.get([buffer], [typ]))


def rewrite_attention(
    op: Attention, staging: Staging, build: Callable[[LoopBuilder], SSAValue]
) -> None:
    """Replace `op` by what `build` emits before it (returning the result buffer), back across
    the tensor boundary; the emitted top-level ops carry the op's layer tag and DMA bytes."""
    block, before = op.parent_block(), op.prev_op
    assert block is not None
    b = LoopBuilder(InsertPoint.before(op))
    result = b.insert(bufferization.ToTensorOp(_cast(b, build(b), _tensor_memref(op.result))))
    op.result.replace_all_uses_with(result)
    emitted: list[Operation] = []
    current = before.next_op if before else block.first_op
    while current is not op and current is not None:
        emitted.append(current)
        current = current.next_op
    # The DMA bytes go on the first op that outlives the lowering, which resolves the tensor
    # boundary (bufferization, the ui8 casts, the packed weights' tensor constants) away.
    boundary = (bufferization.ToBufferOp, UnrealizedConversionCastOp, arith.ConstantOp)
    outliving_first = sorted(emitted, key=lambda o: isinstance(o, boundary))
    tag(outliving_first, op.attributes.get(LAYER_ATTR), staging.moved)
    op.detach()
    op.erase()


@dataclass
class Staging:
    """Where tiles live: L1 copies moved by DMA (`copies`), or the L2 data itself. `moved`
    counts the bytes the emitted transfers move over the whole schedule."""

    copies: bool
    moved: int = 0

    def scratch(self, b: LoopBuilder, name: str, tile: Tile) -> SSAValue:
        """An L1 buffer for values computed in the tile (they exist nowhere else)."""
        buffer = b.insert(
            memref.AllocOp.get(
                tile.element, ALIGNMENT, list(tile), memory_space=MemoryLevel.L1.space
            )
        )
        buffer.name_hint = f"{name}_l1"
        return buffer

    def copy(self, b: LoopBuilder, name: str, tile: Tile) -> SSAValue | None:
        """An L1 buffer for a copy of L2 data; None where the L2 data is used in place."""
        return self.scratch(b, name, tile) if self.copies else None

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
        self.moved += times * sum(nbytes(dst.type) for _, dst in pairs)


def computed_in(tile: SSAValue | None, dest: SSAValue) -> SSAValue:
    """Where a result tile is computed: its L1 copy, or its L2 destination in place."""
    return dest if tile is None else tile
