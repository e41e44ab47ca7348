"""`layerwise-tile`: the classic layer-by-layer schedule of multi-head self-attention, each
layer tiled through L1 on its own.

This is the baseline `depth-first-tile` is measured against, built by the same compiler. Every
layer of the attention runs over the whole sequence before the next starts, so Q, K, V of every
head, the H x S x S score map and the context materialize in L2; each layer streams blocks of
`rows` rows of its input through L1 (DMA in, compute, DMA the result rows back to L2):

    for h, r:  Q[h, r] = X[r] Wq_h + bq_h;  K[h, r] = X[r] Wk_h + bk_h      (weights per head)
    for h, r:  A[h, r] = s Q[h, r] K[h]^T                                   (K[h] whole, per head)
    for h, r:  A[h, r] = softmax(A[h, r])
    for h, r:  V[h, r] = X[r] Wv_h + bv_h
    for h, r:  C[r, h] = A[h, r] V[h]                                       (V[h] whole, per head)
    for r:     out[r] = C[r] Wo + bo                                        (Wo whole)

The fused form (FWSA) computes QK[h, r] = X[r] Wqk_h + bqk_h and A[h, r] = QK[h, r] X^T.

In int8 Q, K, V, the scores and the context are i8 in L2, each layer narrows its i32 accumulator
with its requantization as the matmul's epilogue, the integer softmax rewrites the score rows as
ui8 probabilities (with an i32 scratch row in L1) and the output projection is requantized into
the 8-bit output.

Each layer's L1 tiles are freed when it ends, so the L1 working set is the largest layer's.
`rows=auto` takes the largest block that fits `l1-bytes`; no fit is a diagnostic stating the
minimum. With `dma=false` (a single memory level) the layers compute on the L2 data in place
(only the integer softmax's row is an L1 buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.dialects.builtin import i32
from xdsl.ir import Attribute, SSAValue

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.builder import LoopBuilder, reshaped, subview
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

NAME = "layerwise-tile"


def layer_tiles(
    s: int, e: int, p: int, h: int, rows: int, fused: bool, precision: Precision = F32
) -> list[list[Tile]]:
    """The L1 tiles of each layer of one attention (shapes and element types), in schedule
    order."""
    width = e if fused else p
    data, wide = precision.data, precision.wide

    def block(w: int) -> Tile:
        """A block of rows of width `w`."""
        return Tile((rows, w), data)

    def projection(w: int) -> list[Tile]:
        return [block(e), Tile((e, w), data), Tile((w,), wide), block(w)]

    return [
        projection(width),
        [Tile((s, width), data), block(width), block(s)],  # scores: K[h] (or X) whole, Q rows
        [block(s), *softmax_scratch(s, precision)],  # softmax
        projection(p),  # V
        [Tile((s, p), data), block(s), block(p)],  # context: V[h] whole, a block of A
        [Tile((h * p, e), data), Tile((e,), wide), block(h * p), block(e)],  # output projection
    ]


def softmax_scratch(s: int, precision: Precision) -> list[Tile]:
    """The softmax layer's L1 scratch: the integer softmax's i32 row, if any."""
    return [Tile((s,), i32)] if precision.softmax_row else []


def l1_bytes_needed(
    s: int,
    e: int,
    p: int,
    h: int,
    rows: int,
    fused: bool,
    copies: bool = True,
    precision: Precision = F32,
) -> int:
    """The L1 working set: the largest layer's tiles, as plan-memory lays them out (only the
    softmax's scratch when the layers work in place)."""
    if not copies:
        return tiles_bytes(softmax_scratch(s, precision))
    return max(tiles_bytes(tiles) for tiles in layer_tiles(s, e, p, h, rows, fused, precision))


# Packed, a head's projection weights are [W, E] and Wo is [E, H P] (the concatenated heads'
# Wo transposed): each matmul reads its rhs by rows; V is computed transposed, [H, P, S].
PACKING: Packing = {
    "wq": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wk": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wqk": ((0, 2, 1), lambda s, e, p, h: (h, e, e)),
    "wv": ((0, 2, 1), lambda s, e, p, h: (h, p, e)),
    "wo": ((2, 0, 1), lambda s, e, p, h: (e, h * p)),
}


@dataclass
class _Tiler:
    op: Attention
    rows: int
    staging: Staging
    packed: bool = False

    def rewrite(self) -> None:
        rewrite_attention(self.op, self.staging, self.emit)

    def emit(self, b: LoopBuilder) -> SSAValue:
        op = self.op
        s, e, p, h = op.dims()
        self.b = b
        self.precision = Precision.of(op)
        self.x_unsigned = op.x.type.get_element_type() == ta.ui8
        x = operand_buffers(b, op, PACKING if self.packed else None)
        self.requant = stage_requants(op)
        if isinstance(op, ta.FusedMHSAOp):
            qk = self._project("qk", x["x"], x["wqk"], x["bqk"])
            scores = self._l2("scores", (h, s, s))
            self._scores(scores, qk, x["x"], per_head=False)
        else:
            q = self._project("q", x["x"], x["wq"], x["bq"])
            key = self._project("k", x["x"], x["wk"], x["bk"])
            scores = self._l2("scores", (h, s, s))
            scale = None if op.scale is None else op.scale.value.data
            self._scores(scores, q, key, per_head=True, scale=scale)
        if op.normalization.data == ta.SOFTMAX:
            self._softmax(scores)
        v = self._project("v", x["x"], x["wv"], x["bv"], transposed=self.packed)
        context = self._context(scores, v)
        out = self._l2(op.result.name_hint, (s, e), op.result.type.get_element_type())
        self._output_projection(context, x["wo"], x["bo"], out)
        return out

    @property
    def steps(self) -> int:
        """How often a per-head, per-block statement runs."""
        s, _, _, h = self.op.dims()
        return h * (s // self.rows)

    def _l2(
        self, name: str | None, shape: tuple[int, ...], element: Attribute | None = None
    ) -> SSAValue:
        """An L2 buffer of `element`s (by default the attention's activations)."""
        return l2_buffer(self.b, name, shape, element or self.precision.data)

    def _copies(self, **tiles: Tile) -> dict[str, SSAValue | None]:
        return {name: self.staging.copy(self.b, name, tile) for name, tile in tiles.items()}

    def _per_head_blocks(
        self,
        per_head: Callable[[LoopBuilder, SSAValue], dict[str, SSAValue]],
        per_block: Callable[[LoopBuilder, SSAValue, SSAValue, dict[str, SSAValue]], None],
    ) -> None:
        """for h: state = per_head(h); for r: per_block(h, first row of r, state)."""

        def head(bh: LoopBuilder, hh: SSAValue, _):
            state = per_head(bh, hh)

            def block(br: LoopBuilder, r: SSAValue, _):
                per_block(br, hh, br.mul(r, br.index(self.rows)), state)
                return ()

            bh.for_range(self.op.dims()[0] // self.rows, block)
            return ()

        self.b.for_range(self.op.dims()[3], head)

    def _project(
        self, name: str, x: SSAValue, weight: SSAValue, bias: SSAValue, transposed: bool = False
    ) -> SSAValue:
        """[H, S, W] = X W[h] + b[h] (requantized by `{name}_requant`), per head and block of
        rows; `transposed`: stored as [H, W, S]."""
        s, e, _, h = self.op.dims()
        width = weight.type.get_shape()[1 if self.packed else 2]
        data, wide = self.precision.data, self.precision.wide
        result = self._l2(name, (h, width, s) if transposed else (h, s, width))
        t = self._copies(
            x=Tile((self.rows, e), data),
            w=Tile((width, e) if self.packed else (e, width), data),
            b=Tile((width,), wide),
            y=Tile((width, self.rows) if transposed else (self.rows, width), data),
        )
        stage = self.staging

        def per_head(bh: LoopBuilder, hh: SSAValue) -> dict[str, SSAValue]:
            pairs = [(head_slice(bh, weight, hh), t["w"]), (head_slice(bh, bias, hh), t["b"])]
            w, b = stage.fetch(bh, pairs, h)
            return {"w": w, "b": b}

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, w: dict[str, SSAValue]):
            (x_rows,) = stage.fetch(br, [(rows_of(br, x, row0, self.rows), t["x"])], self.steps)
            own = head_slice(br, result, hh)
            if transposed:
                dest = subview(br, own, [0, row0], [width, self.rows])
            else:
                dest = rows_of(br, own, row0, self.rows)
            y = computed_in(t["y"], dest)
            br.insert(kernel.MatmulOp(x_rows, w["w"], y, bias=w["b"], requant=self.requant[name],
                                      transpose_rhs=self.packed, transpose_out=transposed,
                                      unsigned=["lhs"] if self.x_unsigned else []))  # fmt: skip
            stage.store(br, [(t["y"], dest)], self.steps)

        self._per_head_blocks(per_head, per_block)
        return result

    def _scores(
        self,
        scores: SSAValue,
        left: SSAValue,
        right: SSAValue,
        per_head: bool,
        scale: float | None = None,
    ) -> None:
        """A[h, r] = scale * left[h, r] right^T (requantized), right being [H, S, W] (K) or
        [S, W] (X)."""
        s, _, _, h = self.op.dims()
        width = left.type.get_shape()[2]
        data = self.precision.data
        t = self._copies(
            right=Tile((s, width), data),
            left=Tile((self.rows, width), data),
            a=Tile((self.rows, s), data),
        )
        right_unsigned = self.x_unsigned and not per_head
        stage = self.staging
        if not per_head:
            (shared,) = stage.fetch(self.b, [(right, t["right"])], 1)

        def head_state(bh: LoopBuilder, hh: SSAValue) -> dict[str, SSAValue]:
            if not per_head:
                return {"right": shared}
            (own,) = stage.fetch(bh, [(head_slice(bh, right, hh), t["right"])], h)
            return {"right": own}

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, r: dict[str, SSAValue]):
            source = rows_of(br, head_slice(br, left, hh), row0, self.rows)
            (lhs,) = stage.fetch(br, [(source, t["left"])], self.steps)
            dest = rows_of(br, head_slice(br, scores, hh), row0, self.rows)
            a = computed_in(t["a"], dest)
            br.insert(kernel.MatmulOp(lhs, r["right"], a, transpose_rhs=True, scale=scale,
                                      requant=self.requant["score"],
                                      unsigned=["rhs"] if right_unsigned else []))  # fmt: skip
            stage.store(br, [(t["a"], dest)], self.steps)

        self._per_head_blocks(head_state, per_block)

    def _softmax(self, scores: SSAValue) -> None:
        """A[h, r] = softmax(A[h, r]), rows through L1 and back in place; the integer softmax
        rewrites i8 scores as ui8 probabilities."""
        s = self.op.dims()[0]
        isoftmax = self.op.isoftmax
        t = self._copies(a=Tile((self.rows, s), self.precision.data))
        row = None if isoftmax is None else self.staging.scratch(self.b, "row", Tile((s,), i32))
        stage = self.staging

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, _):
            dest = rows_of(br, head_slice(br, scores, hh), row0, self.rows)
            (a,) = stage.fetch(br, [(dest, t["a"])], self.steps)
            br.insert(kernel.SoftmaxOp(a, a, isoftmax=isoftmax, scratch=row,
                                       unsigned=[] if isoftmax is None else ["out"]))  # fmt: skip
            stage.store(br, [(t["a"], dest)], self.steps)

        self._per_head_blocks(lambda bh, hh: {}, per_block)

    def _context(self, scores: SSAValue, v: SSAValue) -> SSAValue:
        """C[r, h] = A[h, r] V[h] (requantized), written head-interleaved [S, H, P]."""
        s, _, p, h = self.op.dims()
        data = self.precision.data
        context = self._l2("context", (s, h, p))
        t = self._copies(
            v=Tile((p, s) if self.packed else (s, p), data),
            a=Tile((self.rows, s), data),
            c=Tile((self.rows, p), data),
        )
        probabilities = ["lhs"] if self.op.isoftmax is not None else []
        stage = self.staging

        def per_head(bh: LoopBuilder, hh: SSAValue) -> dict[str, SSAValue]:
            (own,) = stage.fetch(bh, [(head_slice(bh, v, hh), t["v"])], h)
            return {"v": own}

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, state: dict[str, SSAValue]):
            source = rows_of(br, head_slice(br, scores, hh), row0, self.rows)
            (a,) = stage.fetch(br, [(source, t["a"])], self.steps)
            dest = subview(br, context, [row0, hh, 0], [self.rows, 1, p], squeeze=(1,))
            c = computed_in(t["c"], dest)
            br.insert(kernel.MatmulOp(a, state["v"], c, requant=self.requant["context"],
                                      transpose_rhs=self.packed,
                                      unsigned=probabilities))  # fmt: skip
            stage.store(br, [(t["c"], dest)], self.steps)

        self._per_head_blocks(per_head, per_block)
        return context

    def _output_projection(
        self, context: SSAValue, wo: SSAValue, bo: SSAValue, out: SSAValue
    ) -> None:
        """out[r] = C[r] Wo + bo (requantized), C seen as [S, H P] and Wo as [H P, E]."""
        s, e, p, h = self.op.dims()
        data, wide = self.precision.data, self.precision.wide
        t = self._copies(
            wo=Tile((e, h * p) if self.packed else (h * p, e), data),
            bo=Tile((e,), wide),
            c=Tile((self.rows, h * p), data),
            y=Tile((self.rows, e), data),
        )
        stage = self.staging
        b = self.b
        out_unsigned = self.op.result.type.get_element_type() == ta.ui8
        matrix = wo if self.packed else reshaped(b, wo, (h * p, e))
        weights, bias = stage.fetch(b, [(matrix, t["wo"]), (bo, t["bo"])], 1)
        concatenated = reshaped(b, context, (s, h * p))

        def block(br: LoopBuilder, r: SSAValue, _):
            row0 = br.mul(r, br.index(self.rows))
            source = rows_of(br, concatenated, row0, self.rows)
            (c,) = stage.fetch(br, [(source, t["c"])], s // self.rows)
            dest = rows_of(br, out, row0, self.rows)
            y = computed_in(t["y"], dest)
            br.insert(kernel.MatmulOp(c, weights, y, bias=bias, requant=self.requant["out"],
                                      transpose_rhs=self.packed,
                                      unsigned=["out"] if out_unsigned else []))  # fmt: skip
            stage.store(br, [(t["y"], dest)], s // self.rows)
            return ()

        b.for_range(s // self.rows, block)


@dataclass(frozen=True)
class LayerwiseTile(AttentionTiling):
    """Layer-by-layer tiling of every attention (f32 or int8) through an L1 of `l1-bytes`;
    `dma=false` on a single-level target computes on the L2 data in place."""

    name = NAME

    PACKING = PACKING

    def working_set(self, attention: Attention, rows: int) -> int:
        s, e, p, h = attention.dims()
        fused = isinstance(attention, ta.FusedMHSAOp)
        return l1_bytes_needed(s, e, p, h, rows, fused, self.dma, Precision.of(attention))

    def rewrite(self, attention: Attention, rows: int, staging: Staging, packed: bool) -> None:
        _Tiler(attention, rows, staging, packed).rewrite()
