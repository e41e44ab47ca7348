"""`depth-first-tile`: depth-first tiling (DFT) of multi-head self-attention through L1.

Layer-wise execution materializes Q, K, V of every head and the whole H x S x S score map. Here
each (fused_)mhsa becomes, per head and per block of `x` query rows, the whole chain
projection -> scores -> softmax -> ·V -> partial output projection, accumulated into the output
across heads. Whole score rows are kept, so the softmax stays exact. The working set lives in L1
buffers (memory space "L1"); X, the weight slices of the head and the output rows move between
L2 (and flash) and L1 with `dma` transfers:

    X -> L1 once;  bo -> L1 once
    for h:  Wq/Wk/Wv/Wo and biases of head h -> L1;  K_h, V_h [S, P] = X Wk_h + bk_h, X Wv_h + bv_h
      for each block of x rows r:
        Q = X[r] Wq_h + bq_h;  A = softmax(s Q K_h^T)  [x, S];  C = A V_h  [x, P]
        Y = (h == 0 ? bo : out[r] (from L2)) + C Wo_h;  out[r] <- Y (to L2)

The fused form (FWSA) replaces Q K_h^T by (X[r] Wqk_h + bqk_h) X^T and needs no K. `rows=auto`
takes the largest block (fewest transfers and loop trips; the traffic does not depend on x) whose
L1 working set fits `l1-bytes`; a budget no block fits is a diagnostic stating the minimum.
Blocks divide S. The attention's inputs and result cross the tensor/memref boundary with
`bufferization.to_buffer` / `to_tensor`, which `convert-tinyattn-to-loops` resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects import bufferization, memref
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    MemRefType,
    ModuleOp,
    StridedLayoutAttr,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import dma
from tinyattn.dialects import tinyattn as ta
from tinyattn.lowering import kernels as k
from tinyattn.lowering.loops import LoopBuilder
from tinyattn.lowering.memory_plan import ALIGNMENT, aligned

L1 = StringAttr("L1")
F32_BYTES = 4


def l1_tiles(s: int, e: int, p: int, rows: int, fused: bool) -> dict[str, tuple[int, ...]]:
    """The L1 buffers of one attention and their shapes (all f32)."""
    weights = (
        {"wqk": (e, e), "bqk": (e,)}
        if fused
        else {"wq": (e, p), "bq": (p,), "wk": (e, p), "bk": (p,), "k": (s, p)}
    )
    return {
        "x": (s, e),
        "bo": (e,),
        **weights,
        "wv": (e, p),
        "bv": (p,),
        "wo": (p, e),
        "v": (s, p),
        "q": (rows, e if fused else p),
        "scores": (rows, s),
        "context": (rows, p),
        "y": (rows, e),
    }


def l1_bytes_needed(s: int, e: int, p: int, rows: int, fused: bool) -> int:
    """The L1 working set, as plan-memory will lay it out (each buffer aligned)."""
    tiles = l1_tiles(s, e, p, rows, fused).values()
    return sum(aligned(prod(shape) * F32_BYTES) for shape in tiles)


def choose_rows(op: ta.MHSAOp | ta.FusedMHSAOp, l1_bytes: int, rows: int | str) -> int:
    s, e, p, _ = op.dims()
    fused = isinstance(op, ta.FusedMHSAOp)
    if rows != "auto":
        block = int(rows)
        if block < 1 or s % block:
            raise PassFailedException(
                f"depth-first-tile: rows={block} must divide the sequence length S={s}"
            )
        candidates = [block]
    else:
        candidates = [d for d in range(s, 0, -1) if s % d == 0]
    for block in candidates:
        if l1_bytes_needed(s, e, p, block, fused) <= l1_bytes:
            return block
    minimum = l1_bytes_needed(s, e, p, candidates[-1], fused)
    raise PassFailedException(
        f"depth-first-tile: the attention (S={s} E={e} P={p}) needs at least {minimum} bytes of "
        f"L1 with {candidates[-1]}-row blocks, but l1-bytes={l1_bytes}"
    )


def _subview(
    b: LoopBuilder,
    source: SSAValue,
    offsets: list[int | SSAValue],
    sizes: list[int],
    drop_leading: int = 0,
) -> SSAValue:
    """A unit-stride slice of `source` without its first `drop_leading` (size-1) dimensions."""
    typ = source.type
    assert isinstance(typ, MemRefType)
    strides = typ.get_strides()
    assert strides is not None
    dynamic = [o for o in offsets if isinstance(o, SSAValue)]
    static_offsets = [DYNAMIC_INDEX if isinstance(o, SSAValue) else o for o in offsets]
    offset = None if dynamic else sum(o * st for o, st in zip(offsets, strides, strict=True))
    layout = StridedLayoutAttr(strides[drop_leading:], offset)
    result = MemRefType(typ.get_element_type(), sizes[drop_leading:], layout, typ.memory_space)
    return b.insert(
        memref.SubviewOp(source, dynamic, [], [], static_offsets, sizes, [1] * len(sizes), result)
    )


def _transfer_all(b: LoopBuilder, pairs: list[tuple[SSAValue, SSAValue]]) -> None:
    """Start every transfer, then wait for all of them (they may overlap)."""
    tokens = [b.insert(dma.StartOp(src, dst)) for src, dst in pairs]
    for token in tokens:
        b.builder.insert(dma.WaitOp(token))


@dataclass
class _Tiler:
    op: ta.MHSAOp | ta.FusedMHSAOp
    rows: int

    def rewrite(self) -> None:
        op = self.op
        s, e, p, h = op.dims()
        fused = isinstance(op, ta.FusedMHSAOp)
        b = LoopBuilder(InsertPoint.before(op))
        buffers = {
            name: b.insert(
                bufferization.ToBufferOp(
                    operands=[value], result_types=[_memref(value.type)]
                )
            )
            for name, value in zip(_operand_names(op), op.operands, strict=True)
        }
        out = b.insert(memref.AllocOp.get(f32, ALIGNMENT, [s, e]))
        tiles = {
            name: b.insert(memref.AllocOp.get(f32, ALIGNMENT, list(shape), memory_space=L1))
            for name, shape in l1_tiles(s, e, p, self.rows, fused).items()
        }
        for name, tile in tiles.items():
            tile.name_hint = f"{name}_l1"
        out.name_hint = op.result.name_hint
        _transfer_all(b, [(buffers["x"], tiles["x"]), (buffers["bo"], tiles["bo"])])
        scale = None if fused else op.scale.value.data

        def head(bh: LoopBuilder, hh: SSAValue, _):
            slices = ["wqk", "bqk"] if fused else ["wq", "bq", "wk", "bk"]
            _transfer_all(
                bh,
                [
                    (_head_slice(bh, buffers[name], hh), tiles[name])
                    for name in [*slices, "wv", "bv", "wo"]
                ],
            )
            x = k.Matrix(tiles["x"])
            if not fused:
                k.matmul(bh, s, p, e, x, k.Matrix(tiles["wk"]), k.Matrix(tiles["k"]),
                         k.vector_init(tiles["bk"]))  # fmt: skip
            k.matmul(bh, s, p, e, x, k.Matrix(tiles["wv"]), k.Matrix(tiles["v"]),
                     k.vector_init(tiles["bv"]))  # fmt: skip

            def block(br: LoopBuilder, r: SSAValue, _):
                row0 = br.mul(r, br.index(self.rows))
                x_rows = k.Matrix(_subview(br, tiles["x"], [row0, 0], [self.rows, e]))
                q, scores = k.Matrix(tiles["q"]), k.Matrix(tiles["scores"])
                if fused:
                    k.matmul(br, self.rows, e, e, x_rows, k.Matrix(tiles["wqk"]), q,
                             k.vector_init(tiles["bqk"]))  # fmt: skip
                    k.matmul(br, self.rows, s, e, q, x.T(), scores)
                else:
                    k.matmul(br, self.rows, p, e, x_rows, k.Matrix(tiles["wq"]), q,
                             k.vector_init(tiles["bq"]))  # fmt: skip
                    k.matmul(br, self.rows, s, p, q, k.Matrix(tiles["k"]).T(), scores,
                             scale=scale)  # fmt: skip
                if op.normalization.data == ta.SOFTMAX:
                    k.softmax_rows(br, self.rows, s, scores, scores)
                context = k.Matrix(tiles["context"])
                k.matmul(br, self.rows, p, s, scores, k.Matrix(tiles["v"]), context)
                y = k.Matrix(tiles["y"])
                out_rows = _subview(br, out, [row0, 0], [self.rows, e])
                wo = k.Matrix(tiles["wo"])

                def first_head(bi: LoopBuilder):
                    k.matmul(bi, self.rows, e, p, context, wo, y, k.vector_init(tiles["bo"]))

                def later_head(bi: LoopBuilder):
                    _transfer_all(bi, [(out_rows, tiles["y"])])
                    k.matmul(bi, self.rows, e, p, context, wo, y, k.accumulate_into(y))

                br.if_else(br.equals(hh, br.index(0)), first_head, later_head)
                _transfer_all(br, [(tiles["y"], out_rows)])
                return ()

            bh.for_range(s // self.rows, block)
            return ()

        b.for_range(h, head)
        result = b.insert(bufferization.ToTensorOp(out))
        op.result.replace_all_uses_with(result)
        op.detach()
        op.erase()


def _operand_names(op: ta.MHSAOp | ta.FusedMHSAOp) -> list[str]:
    if isinstance(op, ta.FusedMHSAOp):
        return ["x", "wqk", "bqk", "wv", "bv", "wo", "bo"]
    return ["x", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo"]


def _memref(typ: Attribute) -> MemRefType[Attribute]:
    assert isinstance(typ, TensorType)
    return MemRefType(typ.get_element_type(), typ.get_shape())


def _head_slice(b: LoopBuilder, weights: SSAValue, head: SSAValue) -> SSAValue:
    """Head `head` of a [H, ...] weight or bias: [E, P], [P, E], [E, E], [P] or [E]."""
    shape = list(weights.type.get_shape())
    return _subview(b, weights, [head] + [0] * (len(shape) - 1), [1, *shape[1:]], drop_leading=1)


@dataclass(frozen=True)
class DepthFirstTile(ModulePass):
    """Depth-first tiling of every f32 attention through an L1 of `l1-bytes`."""

    name = "depth-first-tile"

    l1_bytes: int = 128 * 1024
    rows: int | str = "auto"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.rows != "auto" and not str(self.rows).isdigit():
            raise PassFailedException(
                f"depth-first-tile: rows must be 'auto' or a number, got '{self.rows}'"
            )
        for attention in [o for o in op.walk() if isinstance(o, ta.MHSAOp | ta.FusedMHSAOp)]:
            if attention.is_integer():
                raise PassFailedException(
                    f"depth-first-tile: cannot tile integer '{attention.name}' yet"
                )
            _Tiler(attention, choose_rows(attention, self.l1_bytes, self.rows)).rewrite()
