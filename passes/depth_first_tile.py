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

The fused form (FWSA) replaces Q K_h^T by (X[r] Wqk_h + bqk_h) X^T and needs no K.

Each stage is one kernel op on L1 tiles (`kernel.matmul`, `kernel.softmax`). In int8 the
buffers hold i8 data (i32 biases), every stage narrows its i32 accumulator with its
requantization as the matmul's epilogue, and the integer softmax rewrites the scores in place as
ui8 probabilities (with an i32 scratch row). The partial sums over heads are i32 rows of an
[S, E] accumulator in L2, moved like Y; the last head requantizes them into the 8-bit out[r].

`rows=auto` takes the largest block (fewest transfers and loop trips; the traffic does not depend
on x) whose L1 working set fits `l1-bytes`; a budget no block fits is a diagnostic stating the
minimum, unless layer-wise tiling fits: then that attention is scheduled layer by layer, with a
remark on stderr. Blocks divide S. With `dma=false` (a single memory level) X, the weights, the
output and the partial sums are used in place and only K, V, Q, the scores, the context (and the
integer softmax's row) are L1 buffers. The attention's inputs and result cross the tensor/memref
boundary with `bufferization.to_buffer` / `to_tensor`, which `convert-tinyattn-to-kernels`
resolves.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import i32
from xdsl.ir import SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.passes.layerwise_tile import LayerwiseTile
from tinyattn.passes.tiling import (
    F32,
    Attention,
    AttentionTiling,
    Packing,
    Precision,
    Staging,
    Tile,
    computed_in,
    head_slice,
    l2_buffer,
    operand_buffers,
    rewrite_attention,
    rows_of,
    stage_requants,
    tiles_bytes,
)

NAME = "depth-first-tile"
COPIED = ("x", "bo", "wq", "bq", "wk", "bk", "wqk", "bqk", "wv", "bv", "wo", "y", "out")


# Packed, a head's projection weights are [P, E] (Wqk [E, E] transposed), Wo [E, P]: each
# matmul reads its rhs by rows; V is computed transposed, [P, S].
PACKING: Packing = {
    "wq": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wk": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wqk": ((0, 2, 1), lambda s, e, p, h: (h, e, e)),
    "wv": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wo": ((0, 2, 1), lambda s, e, p, h: (h, e, p)),
}


def l1_tiles(
    s: int,
    e: int,
    p: int,
    rows: int,
    fused: bool,
    copies: bool = True,
    precision: Precision = F32,
    packed: bool = False,
) -> dict[str, Tile]:
    """The L1 buffers of one attention: shapes and element types. In int8 `y` holds the i32
    partial sums and `out` the requantized output rows. Without `copies` only the scratch
    buffers, the rest being used in place. `packed` transposes the weight slices and V."""
    data, wide = precision.data, precision.wide

    def matrix(rows_: int, cols: int) -> Tile:
        return Tile((cols, rows_) if packed else (rows_, cols), data)

    weights = (
        {"wqk": matrix(e, e), "bqk": Tile((e,), wide)}
        if fused
        else {
            "wq": matrix(e, p),
            "bq": Tile((p,), wide),
            "wk": matrix(e, p),
            "bk": Tile((p,), wide),
            "k": Tile((s, p), data),
        }
    )
    tiles = {
        "x": Tile((s, e), data),
        "bo": Tile((e,), wide),
        **weights,
        "wv": matrix(e, p),
        "bv": Tile((p,), wide),
        "wo": matrix(p, e),
        "v": matrix(s, p),
        "q": Tile((rows, e if fused else p), data),
        "scores": Tile((rows, s), data),
        "context": Tile((rows, p), data),
        "y": Tile((rows, e), wide),
    }
    if precision.integer:
        tiles["out"] = Tile((rows, e), data)
    if precision.softmax_row:
        tiles["row"] = Tile((s,), i32)
    return {name: tile for name, tile in tiles.items() if copies or name not in COPIED}


def l1_bytes_needed(
    s: int,
    e: int,
    p: int,
    rows: int,
    fused: bool,
    copies: bool = True,
    precision: Precision = F32,
) -> int:
    """The L1 working set, as plan-memory will lay it out (each buffer aligned)."""
    return tiles_bytes(list(l1_tiles(s, e, p, rows, fused, copies, precision).values()))


@dataclass
class _Tiler:
    op: Attention
    rows: int
    staging: Staging

    packed: bool = False

    def rewrite(self) -> None:
        rewrite_attention(self.op, self.staging, self.emit)

    def emit(self, b: LoopBuilder) -> SSAValue:
        op, stage = self.op, self.staging
        s, e, p, h = op.dims()
        blocks = s // self.rows
        fused = isinstance(op, ta.FusedMHSAOp)
        precision = Precision.of(op)
        buffers = operand_buffers(b, op, PACKING if self.packed else None)
        packed = self.packed
        out = l2_buffer(b, op.result.name_hint, (s, e), op.result.type.get_element_type())
        tiles: dict[str, SSAValue | None] = {
            name: stage.copy(b, name, tile) if name in COPIED else stage.scratch(b, name, tile)
            for name, tile in l1_tiles(s, e, p, self.rows, fused, precision=precision,
                                       packed=packed).items()  # fmt: skip
        }
        x, bo = stage.fetch(b, [(buffers["x"], tiles["x"]), (buffers["bo"], tiles["bo"])], 1)
        # The partial sums over heads: the output itself in f32, i32 rows in int8.
        acc = l2_buffer(b, "acc", (s, e), i32) if precision.integer else out
        requant = stage_requants(op)
        # The 8-bit views of unsigned data: X (and its rows) if ui8, the integer softmax's
        # probabilities, the output (and its L1 copy) if ui8.
        x_unsigned = op.x.type.get_element_type() == ta.ui8
        x_lhs = ["lhs"] if x_unsigned else []
        out_unsigned = op.result.type.get_element_type() == ta.ui8
        scale = None if fused or op.scale is None else op.scale.value.data
        slices = ["wqk", "bqk"] if fused else ["wq", "bq", "wk", "bk"]

        def head(bh: LoopBuilder, hh: SSAValue, _):
            names = [*slices, "wv", "bv", "wo"]
            pairs = [(head_slice(bh, buffers[name], hh), tiles[name]) for name in names]
            w = dict(zip(names, stage.fetch(bh, pairs, h), strict=True))
            if not fused:
                bh.insert(kernel.MatmulOp(x, w["wk"], tiles["k"], bias=w["bk"],
                                          transpose_rhs=packed, requant=requant["k"],
                                          unsigned=x_lhs))  # fmt: skip
            bh.insert(kernel.MatmulOp(x, w["wv"], tiles["v"], bias=w["bv"], requant=requant["v"],
                                      transpose_rhs=packed, transpose_out=packed,
                                      unsigned=x_lhs))  # fmt: skip

            def block(br: LoopBuilder, r: SSAValue, _):
                row0 = br.mul(r, br.index(self.rows))
                x_rows = rows_of(br, x, row0, self.rows)
                q, scores = tiles["q"], tiles["scores"]
                if fused:
                    br.insert(kernel.MatmulOp(x_rows, w["wqk"], q, bias=w["bqk"],
                                              transpose_rhs=packed, requant=requant["qk"],
                                              unsigned=x_lhs))  # fmt: skip
                    br.insert(kernel.MatmulOp(q, x, scores, transpose_rhs=True,
                                              requant=requant["score"],
                                              unsigned=["rhs"] if x_unsigned else []))  # fmt: skip
                else:
                    br.insert(kernel.MatmulOp(x_rows, w["wq"], q, bias=w["bq"],
                                              transpose_rhs=packed, requant=requant["q"],
                                              unsigned=x_lhs))  # fmt: skip
                    br.insert(kernel.MatmulOp(q, tiles["k"], scores, transpose_rhs=True,
                                              scale=scale, requant=requant["score"]))  # fmt: skip
                # The integer softmax rewrites the i8 scores in place as ui8 probabilities.
                integer_probabilities = op.isoftmax is not None
                probabilities_out = ["out"] if integer_probabilities else []
                probabilities_in = ["lhs"] if integer_probabilities else []
                if op.normalization.data == ta.SOFTMAX:
                    br.insert(kernel.SoftmaxOp(scores, scores, isoftmax=op.isoftmax,
                                               scratch=tiles.get("row"),
                                               unsigned=probabilities_out))  # fmt: skip
                context = tiles["context"]
                br.insert(kernel.MatmulOp(scores, tiles["v"], context, transpose_rhs=packed,
                                          requant=requant["context"],
                                          unsigned=probabilities_in))  # fmt: skip
                out_rows = rows_of(br, out, row0, self.rows)
                acc_rows = out_rows if acc is out else rows_of(br, acc, row0, self.rows)
                partial_sums = computed_in(tiles["y"], acc_rows)
                wo = w["wo"]

                def heads_output(
                    bi: LoopBuilder,
                    tile: SSAValue | None,
                    dest: SSAValue,
                    epilogue: ta.RequantAttr | None,
                    heads: range,
                ):
                    """C Wo_h of the heads `heads` into the rows `dest` (through `tile`), from
                    bo on head 0 and from the partial sums of the earlier heads on the others."""
                    y = computed_in(tile, dest)
                    narrow_unsigned = ["out"] if epilogue is not None and out_unsigned else []

                    def first_head(bf: LoopBuilder):
                        bf.insert(kernel.MatmulOp(context, wo, y, bias=bo, requant=epilogue,
                                                  transpose_rhs=packed,
                                                  unsigned=narrow_unsigned))  # fmt: skip

                    def later_head(bl: LoopBuilder):
                        later = (len(heads) - (0 in heads)) * blocks
                        stage.fetch(bl, [(acc_rows, tiles["y"])], later)
                        bl.insert(kernel.MatmulOp(context, wo, y, acc=partial_sums,
                                                  requant=epilogue, transpose_rhs=packed,
                                                  unsigned=narrow_unsigned))  # fmt: skip

                    if 0 in heads:
                        bi.if_else(bi.equals(hh, bi.index(0)), first_head, later_head)
                    else:
                        later_head(bi)
                    stage.store(bi, [(tile, dest)], len(heads) * blocks)

                def last_head(bl: LoopBuilder):
                    """The sums of all heads, narrowed into the 8-bit output rows."""
                    heads_output(bl, tiles["out"], out_rows, requant["out"], range(h - 1, h))

                def other_heads(bp: LoopBuilder):
                    heads_output(bp, tiles["y"], acc_rows, None, range(h - 1))

                if not precision.integer:
                    heads_output(br, tiles["y"], out_rows, None, range(h))
                elif h == 1:
                    last_head(br)
                else:
                    br.if_else(br.equals(hh, br.index(h - 1)), last_head, other_heads)
                return ()

            bh.for_range(blocks, block)
            return ()

        b.for_range(h, head)
        return out


@dataclass(frozen=True)
class DepthFirstTile(AttentionTiling):
    """Depth-first tiling of every attention (f32 or int8) through an L1 of `l1-bytes`;
    `dma=false` on a single-level target computes on the L2 data in place."""

    name = NAME

    PACKING = PACKING

    def working_set(self, attention: Attention, rows: int) -> int:
        s, e, p, _ = attention.dims()
        fused = isinstance(attention, ta.FusedMHSAOp)
        return l1_bytes_needed(s, e, p, rows, fused, self.dma, Precision.of(attention))

    def fallback(self) -> AttentionTiling:
        """An attention whose depth-first working set (every head's weights and a row block)
        exceeds L1 even in one-row blocks is tiled layer by layer, which holds one layer's
        operands at a time."""
        return LayerwiseTile(self.l1_bytes, "auto", self.dma, self.pack_weights)

    def rewrite(self, attention: Attention, rows: int, staging: Staging, packed: bool) -> None:
        _Tiler(attention, rows, staging, packed).rewrite()
