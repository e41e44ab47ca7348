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

The fused form (FWSA) computes QK[h, r] = X[r] Wqk_h + bqk_h and A[h, r] = QK[h, r] X^T. Each
layer's L1 tiles are freed when it ends, so the L1 working set is the largest layer's. `rows=auto`
takes the largest block that fits `l1-bytes`; no fit is a diagnostic stating the minimum. With
`dma=false` (a single memory level) the layers compute on the L2 data in place.
"""

from __future__ import annotations

from collections.abc import Callable
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
from tinyattn.lowering.convert_to_loops import reshaped
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
    subview,
    tiles_bytes,
)

NAME = "layerwise-tile"


def layer_tiles(
    s: int, e: int, p: int, h: int, rows: int, fused: bool
) -> list[list[tuple[int, ...]]]:
    """The L1 tiles of each layer of one attention (f32 shapes), in schedule order."""
    width = e if fused else p
    projection = lambda w: [(rows, e), (e, w), (w,), (rows, w)]  # noqa: E731
    return [
        projection(width),
        [(s, width), (rows, width), (rows, s)],  # scores: K[h] (or X) whole, a block of Q
        [(rows, s)],  # softmax
        projection(p),  # V
        [(s, p), (rows, s), (rows, p)],  # context: V[h] whole, a block of A
        [(h * p, e), (e,), (rows, h * p), (rows, e)],  # output projection
    ]


def l1_bytes_needed(
    s: int, e: int, p: int, h: int, rows: int, fused: bool, copies: bool = True
) -> int:
    """The L1 working set: the largest layer's tiles, as plan-memory lays them out (none when
    the layers work in place)."""
    if not copies:
        return 0
    return max(tiles_bytes(tiles) for tiles in layer_tiles(s, e, p, h, rows, fused))


@dataclass
class _Tiler:
    op: Attention
    rows: int
    staging: Staging

    def rewrite(self) -> None:
        rewrite_attention(self.op, self.staging, self.emit)

    def emit(self, b: LoopBuilder) -> SSAValue:
        op = self.op
        s, e, p, h = op.dims()
        self.b = b
        x = operand_buffers(b, op)
        if isinstance(op, ta.FusedMHSAOp):
            qk = self._project("qk", x["x"], x["wqk"], x["bqk"])
            scores = self._l2("scores", (h, s, s))
            self._scores(scores, qk, x["x"], per_head=False)
        else:
            q = self._project("q", x["x"], x["wq"], x["bq"])
            key = self._project("k", x["x"], x["wk"], x["bk"])
            scores = self._l2("scores", (h, s, s))
            self._scores(scores, q, key, per_head=True, scale=op.scale.value.data)
        if op.normalization.data == ta.SOFTMAX:
            self._softmax(scores)
        v = self._project("v", x["x"], x["wv"], x["bv"])
        context = self._context(scores, v)
        out = self._l2(op.result.name_hint, (s, e))
        self._output_projection(context, x["wo"], x["bo"], out)
        return out

    @property
    def steps(self) -> int:
        """How often a per-head, per-block statement runs."""
        s, _, _, h = self.op.dims()
        return h * (s // self.rows)

    def _l2(self, name: str | None, shape: tuple[int, ...]) -> SSAValue:
        buffer = self.b.insert(memref.AllocOp.get(f32, ALIGNMENT, list(shape)))
        buffer.name_hint = name
        return buffer

    def _copies(self, **shapes: tuple[int, ...]) -> dict[str, SSAValue | None]:
        return {name: self.staging.copy(self.b, name, shape) for name, shape in shapes.items()}

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

    def _project(self, name: str, x: SSAValue, weight: SSAValue, bias: SSAValue) -> SSAValue:
        """[H, S, W] = X W[h] + b[h], per head and block of rows."""
        s, e, _, h = self.op.dims()
        width = weight.type.get_shape()[2]
        result = self._l2(name, (h, s, width))
        t = self._copies(x=(self.rows, e), w=(e, width), b=(width,), y=(self.rows, width))
        stage = self.staging

        def per_head(bh: LoopBuilder, hh: SSAValue) -> dict[str, SSAValue]:
            pairs = [(head_slice(bh, weight, hh), t["w"]), (head_slice(bh, bias, hh), t["b"])]
            w, b = stage.fetch(bh, pairs, h)
            return {"w": w, "b": b}

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, w: dict[str, SSAValue]):
            (x_rows,) = stage.fetch(br, [(rows_of(br, x, row0, self.rows), t["x"])], self.steps)
            dest = rows_of(br, head_slice(br, result, hh), row0, self.rows)
            y = computed_in(t["y"], dest)
            k.matmul(br, self.rows, width, e, k.Matrix(x_rows), k.Matrix(w["w"]), k.Matrix(y),
                     k.vector_init(w["b"]))  # fmt: skip
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
        """A[h, r] = scale * left[h, r] right^T, right being [H, S, W] (K) or [S, W] (X)."""
        s, _, _, h = self.op.dims()
        width = left.type.get_shape()[2]
        t = self._copies(right=(s, width), left=(self.rows, width), a=(self.rows, s))
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
            k.matmul(br, self.rows, s, width, k.Matrix(lhs), k.Matrix(r["right"]).T(),
                     k.Matrix(a), scale=scale)  # fmt: skip
            stage.store(br, [(t["a"], dest)], self.steps)

        self._per_head_blocks(head_state, per_block)

    def _softmax(self, scores: SSAValue) -> None:
        """A[h, r] = softmax(A[h, r]), rows through L1 and back in place."""
        s = self.op.dims()[0]
        t = self._copies(a=(self.rows, s))
        stage = self.staging

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, _):
            dest = rows_of(br, head_slice(br, scores, hh), row0, self.rows)
            (a,) = stage.fetch(br, [(dest, t["a"])], self.steps)
            k.softmax_rows(br, self.rows, s, k.Matrix(a), k.Matrix(a))
            stage.store(br, [(t["a"], dest)], self.steps)

        self._per_head_blocks(lambda bh, hh: {}, per_block)

    def _context(self, scores: SSAValue, v: SSAValue) -> SSAValue:
        """C[r, h] = A[h, r] V[h], written head-interleaved [S, H, P]."""
        s, _, p, h = self.op.dims()
        context = self._l2("context", (s, h, p))
        t = self._copies(v=(s, p), a=(self.rows, s), c=(self.rows, p))
        stage = self.staging

        def per_head(bh: LoopBuilder, hh: SSAValue) -> dict[str, SSAValue]:
            (own,) = stage.fetch(bh, [(head_slice(bh, v, hh), t["v"])], h)
            return {"v": own}

        def per_block(br: LoopBuilder, hh: SSAValue, row0: SSAValue, state: dict[str, SSAValue]):
            source = rows_of(br, head_slice(br, scores, hh), row0, self.rows)
            (a,) = stage.fetch(br, [(source, t["a"])], self.steps)
            dest = subview(br, context, [row0, hh, 0], [self.rows, 1, p], squeeze=(1,))
            c = computed_in(t["c"], dest)
            k.matmul(br, self.rows, p, s, k.Matrix(a), k.Matrix(state["v"]), k.Matrix(c))
            stage.store(br, [(t["c"], dest)], self.steps)

        self._per_head_blocks(per_head, per_block)
        return context

    def _output_projection(
        self, context: SSAValue, wo: SSAValue, bo: SSAValue, out: SSAValue
    ) -> None:
        """out[r] = C[r] Wo + bo, C seen as [S, H P] and Wo as [H P, E]."""
        s, e, p, h = self.op.dims()
        t = self._copies(wo=(h * p, e), bo=(e,), c=(self.rows, h * p), y=(self.rows, e))
        stage = self.staging
        b = self.b
        weights, bias = stage.fetch(b, [(reshaped(b, wo, (h * p, e)), t["wo"]), (bo, t["bo"])], 1)
        concatenated = reshaped(b, context, (s, h * p))

        def block(br: LoopBuilder, r: SSAValue, _):
            row0 = br.mul(r, br.index(self.rows))
            source = rows_of(br, concatenated, row0, self.rows)
            (c,) = stage.fetch(br, [(source, t["c"])], s // self.rows)
            dest = rows_of(br, out, row0, self.rows)
            y = computed_in(t["y"], dest)
            k.matmul(br, self.rows, e, h * p, k.Matrix(c), k.Matrix(weights), k.Matrix(y),
                     k.vector_init(bias))  # fmt: skip
            stage.store(br, [(t["y"], dest)], s // self.rows)
            return ()

        b.for_range(s // self.rows, block)


@dataclass(frozen=True)
class LayerwiseTile(ModulePass):
    """Layer-by-layer tiling of every f32 attention through an L1 of `l1-bytes`; `dma=false` on
    a single-level target computes on the L2 data in place."""

    name = NAME

    l1_bytes: int = 128 * 1024
    rows: int | str = "auto"
    dma: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for attention in [o for o in op.walk() if isinstance(o, Attention)]:
            if attention.is_integer():
                raise PassFailedException(f"{NAME}: cannot tile integer '{attention.name}' yet")
            s, e, p, h = attention.dims()
            fused = isinstance(attention, ta.FusedMHSAOp)
            rows = choose_rows(
                NAME,
                attention,
                self.l1_bytes,
                self.rows,
                partial(l1_bytes_needed, s, e, p, h, fused=fused, copies=self.dma),
            )
            _Tiler(attention, rows, Staging(copies=self.dma)).rewrite()
