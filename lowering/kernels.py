"""Loop-nest kernels on memrefs: the compute of every tinyattn op, for whole tensors or tiles.

A kernel takes memref values and emits scf loops. Matrix operands are `Matrix` accessors, so the
same contraction reads a row-major operand, a transposed one, or one head of a [H, S, P] buffer
without copying. Accumulators are loop-carried values (registers), not memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from tinyattn.lowering.loops import LoopBuilder, element_type


@dataclass(frozen=True)
class Matrix:
    """A 2-D view of a memref. `fixed` pins the other axes to given indices (e.g. the head axis
    of a [H, S, P] or [S, H, P] buffer); `transposed` swaps row and column."""

    ref: SSAValue
    fixed: tuple[tuple[int, SSAValue], ...] = ()
    transposed: bool = False

    def indices(self, row: SSAValue, col: SSAValue) -> list[SSAValue]:
        free = [col, row] if self.transposed else [row, col]
        fixed = dict(self.fixed)
        return [fixed[axis] if axis in fixed else free.pop(0) for axis in range(len(fixed) + 2)]

    def load(self, b: LoopBuilder, row: SSAValue, col: SSAValue) -> SSAValue:
        return b.load(self.ref, self.indices(row, col))

    def store(self, b: LoopBuilder, value: SSAValue, row: SSAValue, col: SSAValue) -> None:
        b.store(value, self.ref, self.indices(row, col))

    def T(self) -> Matrix:
        return Matrix(self.ref, self.fixed, not self.transposed)


# (builder, row, column) -> the initial accumulator of that output element, e.g. a bias
AccumulatorInit = Callable[[LoopBuilder, SSAValue, SSAValue], SSAValue]


def vector_init(bias: SSAValue, prefix: Sequence[SSAValue] = ()) -> AccumulatorInit:
    """The accumulator starts at `bias[*prefix, col]` (prefix: e.g. the head of a [H, P] bias)."""
    return lambda b, row, col: b.load(bias, [*prefix, col])


def accumulate_into(matrix: Matrix) -> AccumulatorInit:
    """The accumulator starts at the output's current value (a partial sum)."""
    return lambda b, row, col: matrix.load(b, row, col)


def matmul(
    b: LoopBuilder,
    rows: int,
    cols: int,
    depth: int,
    lhs: Matrix,
    rhs: Matrix,
    out: Matrix,
    init: AccumulatorInit | None = None,
    scale: float | None = None,
) -> None:
    """`out[i, j] = scale * (init(i, j) + sum_k lhs[i, k] * rhs[k, j])`."""
    acc_type = element_type(out.ref)

    def row(bi: LoopBuilder, i: SSAValue, _):
        def col(bj: LoopBuilder, j: SSAValue, _):
            start = init(bj, i, j) if init else bj.constant(0, acc_type)

            def mac(bk: LoopBuilder, k: SSAValue, acc: tuple[SSAValue, ...]):
                product = bk.mul(lhs.load(bk, i, k), rhs.load(bk, k, j))
                return (bk.add(acc[0], product),)

            (total,) = bj.for_range(depth, mac, init=(start,))
            if scale is not None:
                total = bj.mul(total, bj.constant(scale, acc_type))
            out.store(bj, total, i, j)
            return ()

        bi.for_range(cols, col)
        return ()

    b.for_range(rows, row)


def softmax_rows(b: LoopBuilder, rows: int, cols: int, x: Matrix, out: Matrix) -> None:
    """Row-wise softmax, max-subtracted; `out` may be `x` (in place)."""

    def row(br: LoopBuilder, i: SSAValue, _):
        lowest = br.constant(-math.inf, f32)
        (peak,) = br.for_range(
            cols, lambda bj, j, acc: (bj.max(acc[0], x.load(bj, i, j)),), init=(lowest,)
        )

        def exponentiate(bj: LoopBuilder, j: SSAValue, acc: tuple[SSAValue, ...]):
            e = bj.exp(bj.sub(x.load(bj, i, j), peak))
            out.store(bj, e, i, j)
            return (bj.add(acc[0], e),)

        (total,) = br.for_range(cols, exponentiate, init=(br.constant(0.0, f32),))
        inverse = br.div(br.constant(1.0, f32), total)

        def normalize(bj: LoopBuilder, j: SSAValue, _):
            out.store(bj, bj.mul(out.load(bj, i, j), inverse), i, j)
            return ()

        br.for_range(cols, normalize)
        return ()

    b.for_range(rows, row)


def layernorm_rows(
    b: LoopBuilder,
    rows: int,
    cols: int,
    x: Matrix,
    gamma: SSAValue,
    beta: SSAValue,
    epsilon: float,
    out: Matrix,
) -> None:
    """`(x - mean) / sqrt(var + eps) * gamma + beta` over each row (two-pass variance)."""

    def row(br: LoopBuilder, i: SSAValue, _):
        zero = br.constant(0.0, f32)
        (total,) = br.for_range(cols, lambda bj, j, a: (bj.add(a[0], x.load(bj, i, j)),), (zero,))
        mean = br.div(total, br.constant(cols, f32))

        def square(bj: LoopBuilder, j: SSAValue, acc: tuple[SSAValue, ...]):
            centered = bj.sub(x.load(bj, i, j), mean)
            return (bj.add(acc[0], bj.mul(centered, centered)),)

        (squares,) = br.for_range(cols, square, (zero,))
        variance = br.div(squares, br.constant(cols, f32))
        inv_std = br.div(
            br.constant(1.0, f32), br.sqrt(br.add(variance, br.constant(epsilon, f32)))
        )

        def normalize(bj: LoopBuilder, j: SSAValue, _):
            scaled = bj.mul(bj.mul(bj.sub(x.load(bj, i, j), mean), inv_std), bj.load(gamma, [j]))
            out.store(bj, bj.add(scaled, bj.load(beta, [j])), i, j)
            return ()

        br.for_range(cols, normalize)
        return ()

    b.for_range(rows, row)


def elementwise(
    b: LoopBuilder,
    count: int,
    inputs: Sequence[SSAValue],
    out: SSAValue,
    fn: Callable[[LoopBuilder, list[SSAValue]], SSAValue],
) -> None:
    """`out[i] = fn(inputs[0][i], ...)` over flat 1-D memrefs."""

    def body(bi: LoopBuilder, i: SSAValue, _):
        bi.store(fn(bi, [bi.load(ref, [i]) for ref in inputs]), out, [i])
        return ()

    b.for_range(count, body)


def gelu(b: LoopBuilder, x: SSAValue) -> SSAValue:
    """`0.5 x (1 + erf(x / sqrt(2)))`."""
    half_x = b.mul(x, b.constant(0.5, f32))
    erf = b.erf(b.mul(x, b.constant(1 / math.sqrt(2.0), f32)))
    return b.mul(half_x, b.add(erf, b.constant(1.0, f32)))


def relu(b: LoopBuilder, x: SSAValue) -> SSAValue:
    return b.max(x, b.constant(0, x.type))


def mean_axis(
    b: LoopBuilder, outer: int, axis: int, inner: int, x: SSAValue, out: SSAValue
) -> None:
    """`out[o, i] = mean_a x[o, a, i]` (x viewed as [outer, axis, inner], out as [outer, inner])."""
    scale = 1.0 / axis

    def body(bo: LoopBuilder, idx: list[SSAValue]) -> None:
        o, i = idx
        zero = bo.constant(0.0, f32)
        (total,) = bo.for_range(
            axis, lambda ba, a, acc: (ba.add(acc[0], ba.load(x, [o, a, i])),), (zero,)
        )
        bo.store(bo.mul(total, bo.constant(scale, f32)), out, [o, i])

    b.for_nest((outer, inner), body)
