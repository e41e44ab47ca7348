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
Blocks divide S. With `dma=false` (a single memory level) X, the weights and the output are used
in place and only K, V, Q, the scores and the context are L1 buffers. The attention's inputs and
result cross the tensor/memref boundary with `bufferization.to_buffer` / `to_tensor`, which
`convert-tinyattn-to-loops` resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from xdsl.context import Context
from xdsl.dialects import memref
from xdsl.dialects.builtin import ModuleOp, f32
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import tinyattn as ta
from tinyattn.lowering import kernels as k
from tinyattn.lowering.loops import LoopBuilder
from tinyattn.lowering.memory_plan import ALIGNMENT
from tinyattn.passes.tiling import (
    Attention,
    Staging,
    choose_rows,
    computed_in,
    head_slice,
    operand_buffers,
    rewrite_attention,
    rows_of,
    tiles_bytes,
)

NAME = "depth-first-tile"
COPIED = ("x", "bo", "wq", "bq", "wk", "bk", "wqk", "bqk", "wv", "bv", "wo", "y")


def l1_tiles(
    s: int, e: int, p: int, rows: int, fused: bool, copies: bool = True
) -> dict[str, tuple[int, ...]]:
    """The L1 buffers of one attention and their shapes (all f32); without `copies` only the
    scratch buffers, the rest being used in place."""
    weights = (
        {"wqk": (e, e), "bqk": (e,)}
        if fused
        else {"wq": (e, p), "bq": (p,), "wk": (e, p), "bk": (p,), "k": (s, p)}
    )
    tiles = {
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
    return {name: shape for name, shape in tiles.items() if copies or name not in COPIED}


def l1_bytes_needed(s: int, e: int, p: int, rows: int, fused: bool, copies: bool = True) -> int:
    """The L1 working set, as plan-memory will lay it out (each buffer aligned)."""
    return tiles_bytes(list(l1_tiles(s, e, p, rows, fused, copies).values()))


@dataclass
class _Tiler:
    op: Attention
    rows: int
    staging: Staging

    def rewrite(self) -> None:
        rewrite_attention(self.op, self.staging, self.emit)

    def emit(self, b: LoopBuilder) -> SSAValue:
        op, stage = self.op, self.staging
        s, e, p, h = op.dims()
        blocks = s // self.rows
        fused = isinstance(op, ta.FusedMHSAOp)
        buffers = operand_buffers(b, op)
        out = b.insert(memref.AllocOp.get(f32, ALIGNMENT, [s, e]))
        out.name_hint = op.result.name_hint
        tiles: dict[str, SSAValue | None] = {
            name: stage.copy(b, name, shape) if name in COPIED else stage.scratch(b, name, shape)
            for name, shape in l1_tiles(s, e, p, self.rows, fused).items()
        }
        x, bo = stage.fetch(b, [(buffers["x"], tiles["x"]), (buffers["bo"], tiles["bo"])], 1)
        scale = None if fused else op.scale.value.data
        slices = ["wqk", "bqk"] if fused else ["wq", "bq", "wk", "bk"]

        def head(bh: LoopBuilder, hh: SSAValue, _):
            names = [*slices, "wv", "bv", "wo"]
            pairs = [(head_slice(bh, buffers[name], hh), tiles[name]) for name in names]
            w = dict(zip(names, stage.fetch(bh, pairs, h), strict=True))
            if not fused:
                k.matmul(bh, s, p, e, k.Matrix(x), k.Matrix(w["wk"]), k.Matrix(tiles["k"]),
                         k.vector_init(w["bk"]))  # fmt: skip
            k.matmul(bh, s, p, e, k.Matrix(x), k.Matrix(w["wv"]), k.Matrix(tiles["v"]),
                     k.vector_init(w["bv"]))  # fmt: skip

            def block(br: LoopBuilder, r: SSAValue, _):
                row0 = br.mul(r, br.index(self.rows))
                x_rows = k.Matrix(rows_of(br, x, row0, self.rows))
                q, scores = k.Matrix(tiles["q"]), k.Matrix(tiles["scores"])
                if fused:
                    k.matmul(br, self.rows, e, e, x_rows, k.Matrix(w["wqk"]), q,
                             k.vector_init(w["bqk"]))  # fmt: skip
                    k.matmul(br, self.rows, s, e, q, k.Matrix(x).T(), scores)
                else:
                    k.matmul(br, self.rows, p, e, x_rows, k.Matrix(w["wq"]), q,
                             k.vector_init(w["bq"]))  # fmt: skip
                    k.matmul(br, self.rows, s, p, q, k.Matrix(tiles["k"]).T(), scores,
                             scale=scale)  # fmt: skip
                if op.normalization.data == ta.SOFTMAX:
                    k.softmax_rows(br, self.rows, s, scores, scores)
                context = k.Matrix(tiles["context"])
                k.matmul(br, self.rows, p, s, scores, k.Matrix(tiles["v"]), context)
                out_rows = rows_of(br, out, row0, self.rows)
                y = k.Matrix(computed_in(tiles["y"], out_rows))
                wo = k.Matrix(w["wo"])

                def first_head(bi: LoopBuilder):
                    k.matmul(bi, self.rows, e, p, context, wo, y, k.vector_init(bo))

                def later_head(bi: LoopBuilder):
                    stage.fetch(bi, [(out_rows, tiles["y"])], (h - 1) * blocks)
                    k.matmul(bi, self.rows, e, p, context, wo, y, k.accumulate_into(y))

                br.if_else(br.equals(hh, br.index(0)), first_head, later_head)
                stage.store(br, [(tiles["y"], out_rows)], h * blocks)
                return ()

            bh.for_range(blocks, block)
            return ()

        b.for_range(h, head)
        return out


@dataclass(frozen=True)
class DepthFirstTile(ModulePass):
    """Depth-first tiling of every f32 attention through an L1 of `l1-bytes`; `dma=false` on a
    single-level target computes on the L2 data in place."""

    name = NAME

    l1_bytes: int = 128 * 1024
    rows: int | str = "auto"
    dma: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for attention in [o for o in op.walk() if isinstance(o, Attention)]:
            if attention.is_integer():
                raise PassFailedException(f"{NAME}: cannot tile integer '{attention.name}' yet")
            s, e, p, _ = attention.dims()
            fused = isinstance(attention, ta.FusedMHSAOp)
            rows = choose_rows(
                NAME,
                attention,
                self.l1_bytes,
                self.rows,
                partial(l1_bytes_needed, s, e, p, fused=fused, copies=self.dma),
            )
            _Tiler(attention, rows, Staging(copies=self.dma)).rewrite()
