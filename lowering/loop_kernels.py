"""The generic loop nests of the kernel ops: what `convert-kernels-to-loops` emits where a target
has no faster kernel for an op.

A kernel takes memref values and emits scf loops. Matrix operands are `Matrix` accessors, so the
same contraction reads a row-major operand, a transposed one, or one head of a [H, S, P] buffer
without copying. Accumulators are loop-carried values (registers), not memory.

The same kernels serve f32 and int8 data. A `Matrix` computes in f32 or i32 (`compute_type`):
8-bit elements are widened on load (zero-extended for an unsigned view) and truncated on store,
so an int8 x int8 product is an i32 product and sums are i32. A `Requant` epilogue narrows an
i32 result before it is stored; `isoftmax_rows`, `igelu` and `ilayernorm_rows` are I-BERT's
integer softmax, GELU and layer norm, `irmsnorm_rows` and `quantlib_layernorm_rows` QuantLib's
norms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerType, f32, i8, i32
from xdsl.ir import SSAValue
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.builder import (
    LoopBuilder,
    compute_type,
    element_type,
    is_integer,
    reshaped,
)
from tinyattn.semantics.reference import wrap_int32


@dataclass(frozen=True)
class Matrix:
    """A 2-D view of a memref. `fixed` pins the other axes to given indices (e.g. the head axis
    of a [H, S, P] or [S, H, P] buffer); `transposed` swaps row and column; `unsigned` says the
    stored integers are unsigned (memrefs hold ui8 data as i8)."""

    ref: SSAValue
    fixed: tuple[tuple[int, SSAValue], ...] = ()
    transposed: bool = False
    unsigned: bool = False

    def indices(self, row: SSAValue, col: SSAValue) -> list[SSAValue]:
        free = [col, row] if self.transposed else [row, col]
        fixed = dict(self.fixed)
        return [fixed[axis] if axis in fixed else free.pop(0) for axis in range(len(fixed) + 2)]

    def load(self, b: LoopBuilder, row: SSAValue, col: SSAValue) -> SSAValue:
        """The element at (row, col) in its compute type."""
        value = b.load(self.ref, self.indices(row, col))
        return b.convert(value, compute_type(value.type), self.unsigned)

    def store(self, b: LoopBuilder, value: SSAValue, row: SSAValue, col: SSAValue) -> None:
        """Store a compute-type value (truncated to the element type: narrow it first)."""
        b.store(b.convert(value, element_type(self.ref)), self.ref, self.indices(row, col))

    def T(self) -> Matrix:
        return Matrix(self.ref, self.fixed, not self.transposed, self.unsigned)

    @staticmethod
    def operand(op: kernel.KernelOp, index: int) -> Matrix:
        """Operand `index` of `op`, unsigned as the op says."""
        return Matrix(op.operands[index], unsigned=op.is_unsigned(index))

    @property
    def lowest(self) -> int:
        """The smallest value an integer element can hold."""
        typ = element_type(self.ref)
        assert isinstance(typ, IntegerType)
        return 0 if self.unsigned else -(1 << (typ.width.data - 1))


def i32_constant(b: LoopBuilder, value: int) -> SSAValue:
    """An i32 constant of `value` wrapped as the reference's int32 arithmetic wraps it."""
    return b.constant(int(wrap_int32(value)), i32)


@dataclass(frozen=True)
class Requant:
    """QuantLib's RequantShift as a store epilogue on an i32 value of output column `col`:
    `clip((x*mul + offset) >> shift, low, high)` in wrapping i32 arithmetic, where
    `offset = add + 2^(shift-1)` (the round-half-up term, folded into the addend: the same sum
    modulo 2^32) and the shift is arithmetic, so ties round toward +inf. `mul` and `offset` are
    per tensor (ints) or per channel of the last axis (i32 memrefs of `channels` values, indexed
    by `col`)."""

    mul: int | SSAValue
    offset: int | SSAValue
    shift: int
    low: int
    high: int
    channels: int = 1

    @staticmethod
    def of(
        attr: ta.RequantAttr,
        unsigned: bool,
        table: Callable[[str, Sequence[int]], SSAValue],
    ) -> Requant:
        """The epilogue of `attr` narrowing to 8 bits (`unsigned`: to ui8); `table` makes an
        i32 memref of per-channel values ("mul" or "offset")."""
        shift = attr.shift.data
        half = 1 << (shift - 1) if shift > 0 else 0
        muls = [int(wrap_int32(m)) for m in attr.mul.get_values()]
        offsets = [int(wrap_int32(a + half)) for a in attr.add.get_values()]
        low, high = (0, 255) if unsigned else (-128, 127)
        mul, offset = (
            values[0] if len(values) == 1 else table(what, values)
            for what, values in (("mul", muls), ("offset", offsets))
        )
        return Requant(mul, offset, shift, low, high, attr.channels())

    def __call__(self, b: LoopBuilder, x: SSAValue, col: SSAValue) -> SSAValue:
        def param(value: int | SSAValue) -> SSAValue:
            return b.constant(value, i32) if isinstance(value, int) else b.load(value, [col])

        t = b.add(b.mul(x, param(self.mul)), param(self.offset))
        return b.clip(b.shr(t, b.constant(self.shift, i32)), self.low, self.high)


# (builder, row, column) -> the initial accumulator of that output element, e.g. a bias
AccumulatorInit = Callable[[LoopBuilder, SSAValue, SSAValue], SSAValue]


def vector_init(bias: SSAValue, prefix: Sequence[SSAValue] = ()) -> AccumulatorInit:
    """The accumulator starts at `bias[*prefix, col]` (prefix: e.g. the head of a [H, P] bias)."""
    return lambda b, row, col: b.load(bias, [*prefix, col])


def accumulate_into(matrix: Matrix) -> AccumulatorInit:
    """The accumulator starts at the output's current value (a partial sum)."""
    return lambda b, row, col: matrix.load(b, row, col)


def matmul_init(op: kernel.MatmulOp) -> AccumulatorInit | None:
    """Where a `kernel.matmul`'s accumulator starts: its partial sums (in the layout of its
    out), its bias, or zero (None)."""
    if op.acc is not None:
        partial_sums = Matrix(op.acc)
        return accumulate_into(partial_sums.T() if op.transpose_out else partial_sums)
    if op.bias is not None:
        return vector_init(op.bias)
    return None


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
    requant: Requant | None = None,
) -> None:
    """`out[i, j] = scale * (init(i, j) + sum_k lhs[i, k] * rhs[k, j])` (f32), or
    `requant(init(i, j) + sum_k ...)` in i32 (integers; without `requant` out holds the i32
    accumulator)."""
    acc_type = compute_type(element_type(out.ref))
    assert requant is not None or element_type(out.ref) == acc_type, "narrowing needs a requant"

    def row(bi: LoopBuilder, i: SSAValue, _):
        def col(bj: LoopBuilder, j: SSAValue, _):
            start = init(bj, i, j) if init else bj.constant(0, acc_type)

            def mac(bk: LoopBuilder, k: SSAValue, acc: tuple[SSAValue, ...]):
                product = bk.mul(lhs.load(bk, i, k), rhs.load(bk, k, j))
                return (bk.add(acc[0], product),)

            (total,) = bj.for_range(depth, mac, init=(start,))
            if scale is not None:
                total = bj.mul(total, bj.constant(scale, acc_type))
            if requant is not None:
                total = requant(bj, total, j)
            out.store(bj, total, i, j)
            return ()

        bi.for_range(cols, col)
        return ()

    b.for_range(rows, row)


# 2^f for f in (-1, 0]: the degree-5 least-squares polynomial on 200 Chebyshev nodes (highest
# power first), rounded to f32; evaluated in f32 its relative error stays below 3e-7.
EXP2_COEFFICIENTS = (
    0.0009475536644458771,
    0.009210875257849693,
    0.055299606174230576,
    0.24017949402332306,
    0.6931431889533997,
    0.9999999403953552,
)
LOG2_E = 1.4426950408889634


def exp_nonpositive(b: LoopBuilder, t: SSAValue) -> SSAValue:
    """`exp(t)` in f32 for `t <= 0` (a softmax's `x - max`), in 13 operations instead of a
    general exp: `y = max(t log2 e, -126)`, `n = trunc(y)` (toward zero: `y - n` is in
    (-1, 0]), `2^(y - n)` by `EXP2_COEFFICIENTS` and `2^n` built in the exponent bits. Below
    2^-126 the result stays at the smallest normal's scale instead of vanishing: a softmax
    term of at most 1e-38."""
    y = b.max_number(b.mul(t, b.constant(LOG2_E, f32)), b.constant(-126.0, f32))
    n = b.insert(arith.FPToSIOp(y, i32))
    fraction = b.sub(y, b.insert(arith.SIToFPOp(n, f32)))
    power = b.constant(EXP2_COEFFICIENTS[0], f32)
    for coefficient in EXP2_COEFFICIENTS[1:]:
        power = b.fma(power, fraction, b.constant(coefficient, f32))
    bits = b.shl(b.add(n, b.constant(127, i32)), b.constant(23, i32))
    return b.mul(power, b.insert(arith.BitcastOp(bits, f32)))


def softmax_rows(b: LoopBuilder, rows: int, cols: int, x: Matrix, out: Matrix) -> None:
    """Row-wise softmax, max-subtracted (so every exponent is `exp_nonpositive`'s); `out` may
    be `x` (in place)."""

    def row(br: LoopBuilder, i: SSAValue, _):
        lowest = br.constant(-math.inf, f32)
        (peak,) = br.for_range(
            cols, lambda bj, j, acc: (bj.max_number(acc[0], x.load(bj, i, j)),), init=(lowest,)
        )

        def exponentiate(bj: LoopBuilder, j: SSAValue, acc: tuple[SSAValue, ...]):
            e = exp_nonpositive(bj, bj.sub(x.load(bj, i, j), peak))
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


def isoftmax_exponentials(params: ta.ISoftmaxAttr) -> list[int]:
    """I-BERT's `e = (a*(p + b)^2 + c) >> z` for every `-xt = max - x` in [0, 255] (8-bit
    rows: no other difference exists), with `z = min(floor(-xt / log2), 31)` and
    `p = xt + z*log2`: the exact values of the reference's unbounded integers."""
    a, coeff_b, c, log2, _ = (param.data for param in params.parameters)
    exponentials = []
    for neg in range(256):
        z = min(neg // log2, 31)
        exponentials.append((a * (z * log2 - neg + coeff_b) ** 2 + c) >> z)
    return exponentials


# (builder, row) -> the largest element of the row, in i32
RowMax = Callable[[LoopBuilder, SSAValue], SSAValue]


def scalar_row_max(cols: int, x: Matrix) -> RowMax:
    """The row maximum by one compare per element."""

    def row_max(b: LoopBuilder, i: SSAValue) -> SSAValue:
        (peak,) = b.for_range(
            cols,
            lambda bj, j, acc: (bj.max(acc[0], x.load(bj, i, j)),),
            init=(b.constant(x.lowest, i32),),
        )
        return peak

    return row_max


def isoftmax_rows(
    b: LoopBuilder,
    rows: int,
    cols: int,
    x: Matrix,
    out: Matrix,
    params: ta.ISoftmaxAttr,
    scratch: SSAValue,
    exponentials: SSAValue,
    row_max: RowMax,
) -> None:
    """I-BERT integer softmax of each row of 8-bit `x` into unsigned 8-bit `out` (may be `x`:
    a row is written only after it was read), as QuantLib's iSoftmax, in i32:
    `e = exponentials[max - x]` (the i32 table of `isoftmax_exponentials`: one load where the
    polynomial takes a division, a clamp, three multiplies and a shift), then
    `out = floor(e*(n_levels - 1) / sum(e))` (unsigned division). `scratch` (i32 [cols]) keeps
    a row's `e` between the sum and the division; `row_max` finds a row's maximum.
    `check_isoftmax_fits_i32` first."""
    assert element_type(x.ref) == i8, "isoftmax_rows reads 8-bit scores"
    levels = params.n_levels.data

    def row(br: LoopBuilder, i: SSAValue, _):
        peak = row_max(br, i)

        def exponentiate(bj: LoopBuilder, j: SSAValue, acc: tuple[SSAValue, ...]):
            neg = bj.sub(peak, x.load(bj, i, j))  # max - x in [0, 255]
            e = bj.load(exponentials, [bj.insert(arith.IndexCastOp(neg, IndexType()))])
            bj.store(e, scratch, [j])
            return (bj.add(acc[0], e),)

        (total,) = br.for_range(cols, exponentiate, init=(br.constant(0, i32),))

        def normalize(bj: LoopBuilder, j: SSAValue, _):
            scaled = bj.mul(bj.load(scratch, [j]), bj.constant(levels - 1, i32))
            out.store(bj, bj.udiv(scaled, total), i, j)
            return ()

        br.for_range(cols, normalize)
        return ()

    b.for_range(rows, row)


def isoftmax(
    b: LoopBuilder,
    op: kernel.SoftmaxOp,
    table: Callable[[str, Sequence[int]], SSAValue],
    row_max: Callable[[int, Matrix], RowMax] = scalar_row_max,
) -> None:
    """`op`'s integer softmax (`isoftmax_rows`), its exponentials in a constant i32 table that
    `table(name, values)` makes, its row maxima found by `row_max(cols, x)`."""
    assert op.isoftmax is not None and op.scratch is not None
    rows, cols = op.x.type.get_shape()  # type: ignore[attr-defined]
    check_isoftmax_fits_i32(op.isoftmax, cols)
    x = Matrix.operand(op, 0)
    exponentials = table("isoftmax_exp", isoftmax_exponentials(op.isoftmax))
    isoftmax_rows(
        b, rows, cols, x, Matrix.operand(op, -1), op.isoftmax, op.scratch, exponentials,
        row_max(cols, x),
    )  # fmt: skip


def itamax_rows(b: LoopBuilder, rows: int, cols: int, x: Matrix, out: Matrix) -> None:
    """ITA's integer softmax of each row of 8-bit `x` into unsigned 8-bit `out`
    (`reference.itamax`): `shift = (max - x + 16) >> 5` (at most 8), the row's
    `inv = 65280 / sum(256 >> shift)` (unsigned: the sum is at least 256, the maximum's
    own term, and at most 256 cols), then `out = inv >> shift`. The shifts are recomputed
    rather than stored."""
    assert element_type(x.ref) == i8, "itamax_rows reads 8-bit scores"
    row_max = scalar_row_max(cols, x)

    def row(br: LoopBuilder, i: SSAValue, _):
        peak = row_max(br, i)

        def shift(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            distance = bj.add(bj.sub(peak, x.load(bj, i, j)), bj.constant(16, i32))
            return bj.shr(distance, bj.constant(5, i32))

        def accumulate(bj: LoopBuilder, j: SSAValue, acc: tuple[SSAValue, ...]):
            return (bj.add(acc[0], bj.shr(bj.constant(256, i32), shift(bj, j))),)

        (total,) = br.for_range(cols, accumulate, init=(br.constant(0, i32),))
        inverse = br.udiv(br.constant(255 * 256, i32), total)

        def normalize(bj: LoopBuilder, j: SSAValue, _):
            out.store(bj, bj.shr(inverse, shift(bj, j)), i, j)
            return ()

        br.for_range(cols, normalize)
        return ()

    b.for_range(rows, row)


def check_isoftmax_fits_i32(params: ta.ISoftmaxAttr, cols: int) -> None:
    """Raise unless i32 arithmetic computes `params` on 8-bit rows of `cols` exactly as the
    reference's unbounded integers: for every `x - max` in [-255, 0], `a*(p + b)^2 + c` in
    [0, 2^31) (so each exponential fits the i32 table), and `e*(n_levels - 1)` and the row sum
    below 2^32 (unsigned), the sum nonzero."""
    a, coeff_b, c, log2, levels = (param.data for param in params.parameters)
    polys = [a * (min(neg // log2, 31) * log2 - neg + coeff_b) ** 2 + c for neg in range(256)]
    exps = isoftmax_exponentials(params)
    problems = [
        (min(polys) < 0 or max(polys) >= 2**31, "a*(p + b)^2 + c leaves [0, 2^31)"),
        (max(exps) * (levels - 1) >= 2**32, "e*(n_levels - 1) reaches 2^32"),
        (max(exps) * cols >= 2**32, f"the sum of {cols} exponentials reaches 2^32"),
        (exps[0] == 0, "the sum can be zero"),
    ]
    for problem, reason in problems:
        if problem:
            raise PassFailedException(
                f"integer softmax {params} needs more than 32-bit arithmetic: {reason}"
            )


def _row_sum(
    b: LoopBuilder, cols: int, term: Callable[[LoopBuilder, SSAValue], SSAValue], init: SSAValue
) -> SSAValue:
    """`init + sum_j term(j)` over a row's columns, the sum loop-carried."""
    (total,) = b.for_range(cols, lambda bj, j, acc: (bj.add(acc[0], term(bj, j)),), (init,))
    return total


def _row_squares(
    b: LoopBuilder, cols: int, term: Callable[[LoopBuilder, SSAValue], SSAValue], init: SSAValue
) -> SSAValue:
    """`init + sum_j term(j)^2` over a row's columns."""

    def square(bj: LoopBuilder, j: SSAValue) -> SSAValue:
        value = term(bj, j)
        return bj.mul(value, value)

    return _row_sum(b, cols, square, init)


def _store_row(
    b: LoopBuilder,
    cols: int,
    i: SSAValue,
    out: Matrix,
    value: Callable[[LoopBuilder, SSAValue], SSAValue],
    requant: Requant | None = None,
) -> None:
    """`out[i, j] = requant(value(j))` (or `value(j)`) for each column of row i."""

    def element(bj: LoopBuilder, j: SSAValue, _):
        result = value(bj, j)
        out.store(bj, requant(bj, result, j) if requant else result, i, j)
        return ()

    b.for_range(cols, element)


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
        total = _row_sum(br, cols, lambda bj, j: x.load(bj, i, j), zero)
        mean = br.div(total, br.constant(cols, f32))
        squares = _row_squares(br, cols, lambda bj, j: bj.sub(x.load(bj, i, j), mean), zero)
        variance = br.div(squares, br.constant(cols, f32))
        inv_std = br.div(
            br.constant(1.0, f32), br.sqrt(br.add(variance, br.constant(epsilon, f32)))
        )

        def normalize(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            scaled = bj.mul(bj.mul(bj.sub(x.load(bj, i, j), mean), inv_std), bj.load(gamma, [j]))
            return bj.add(scaled, bj.load(beta, [j]))

        _store_row(br, cols, i, out, normalize)
        return ()

    b.for_range(rows, row)


def ilayernorm_rows(
    b: LoopBuilder,
    rows: int,
    cols: int,
    x: Matrix,
    gamma: SSAValue,
    beta: SSAValue,
    params: ta.ILayerNormAttr,
    out: Matrix,
    requant: Requant | None = None,
) -> None:
    """I-BERT integer layer norm of each row of 8-bit `x` (`reference.ILayerNorm`) in i32:
    `c = (cols*x - sum(x)) >> shift` (recomputed in each pass rather than stored),
    `std = isqrt(sum(c^2) + eps)` and `out = requant(c*gamma / std + beta)` with C's division
    (`arith.divsi`); gamma and beta are i32 [cols]. `|sum(x)|` and `|cols*x - sum(x)|` are at
    most `255 cols`, exact for any row that fits in memory; the op verifier bounds
    `sum(c^2) + eps` within [1, 2^31), so it does not wrap and `std >= 1`: no division by zero,
    no INT32_MIN / -1. The rest (`c*gamma`, `+ beta`) may wrap, exactly as the reference's
    `wrap_int32` does."""
    shift, eps = params.shift.data, params.eps.data

    def row(br: LoopBuilder, i: SSAValue, _):
        total = _row_sum(br, cols, lambda bj, j: x.load(bj, i, j), br.constant(0, i32))

        def centred(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            spread = bj.sub(bj.mul(x.load(bj, i, j), bj.constant(cols, i32)), total)
            return bj.shr(spread, bj.constant(shift, i32))

        std = isqrt(br, _row_squares(br, cols, centred, br.constant(eps, i32)))

        def normalize(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            scaled = bj.mul(centred(bj, j), bj.load(gamma, [j]))
            return bj.add(bj.sdiv(scaled, std), bj.load(beta, [j]))

        _store_row(br, cols, i, out, normalize, requant)
        return ()

    b.for_range(rows, row)


def irmsnorm_rows(
    b: LoopBuilder,
    rows: int,
    cols: int,
    x: Matrix,
    weight: SSAValue,
    shift: int,
    out: Matrix,
    requant: Requant | None = None,
) -> None:
    """Integer RMS norm of each row of 8-bit `x` (`reference.irmsnorm`) in i32: `den =
    isqrt(sum(x^2) / cols + 1)` (the sum is non-negative and, by the op verifier, within
    int32: an unsigned division), then `out = requant((x * weight / den) >> shift)` with C's
    division; `x * weight` may wrap, as the reference's does."""

    def row(br: LoopBuilder, i: SSAValue, _):
        squares = _row_squares(br, cols, lambda bj, j: x.load(bj, i, j), br.constant(0, i32))
        den = _quantlib_deviation(br, squares, cols)

        def normalize(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            scaled = bj.mul(x.load(bj, i, j), bj.load(weight, [j]))
            return bj.shr(bj.sdiv(scaled, den), bj.constant(shift, i32))

        _store_row(br, cols, i, out, normalize, requant)
        return ()

    b.for_range(rows, row)


def quantlib_layernorm_rows(
    b: LoopBuilder,
    rows: int,
    cols: int,
    x: Matrix,
    gamma: SSAValue,
    beta: SSAValue,
    shift: int,
    out: Matrix,
    requant: Requant | None = None,
) -> None:
    """QuantLib's integer layer norm of each row of 8-bit `x` (`reference.QuantLibLayerNorm`):
    `d = x - sum(x) / cols` (C's division, recomputed in each pass), `den =
    isqrt(sum(d^2) / cols + 1)`, then `out = requant(sat32((d * gamma / den + beta) >> shift))`
    with `d * gamma` and what follows in i64. `|d| <= 255`, so `den` is in [1, 255] and
    `sum(d^2)` fits i32 (the op verifier bounds cols)."""
    i64 = IntegerType(64)

    def row(br: LoopBuilder, i: SSAValue, _):
        total = _row_sum(br, cols, lambda bj, j: x.load(bj, i, j), br.constant(0, i32))
        mean = br.sdiv(total, br.constant(cols, i32))

        def centred(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            return bj.sub(x.load(bj, i, j), mean)

        den = _quantlib_deviation(br, _row_squares(br, cols, centred, br.constant(0, i32)), cols)

        def normalize(bj: LoopBuilder, j: SSAValue) -> SSAValue:
            d = bj.convert(centred(bj, j), i64)
            scaled = divide_by_small(bj, bj.mul(d, bj.convert(bj.load(gamma, [j]), i64)), den)
            value = bj.shr(bj.add(scaled, bj.convert(bj.load(beta, [j]), i64)),
                           bj.constant(shift, i64))  # fmt: skip
            return bj.convert(bj.clip(value, -(2**31), 2**31 - 1), i32)

        _store_row(br, cols, i, out, normalize, requant)
        return ()

    b.for_range(rows, row)


def _quantlib_deviation(b: LoopBuilder, squares: SSAValue, cols: int) -> SSAValue:
    """QuantLib's norms' `isqrt(floor(squares / cols) + 1)`: `squares` is a non-negative i32
    (an unsigned division)."""
    return isqrt(b, b.add(b.udiv(squares, b.constant(cols, i32)), b.constant(1, i32)))


def divide_by_small(b: LoopBuilder, n: SSAValue, den: SSAValue) -> SSAValue:
    """C's `n / den` of an i64 `n` with `|n| < 2^40` by an i32 `den` in [1, 2^8], in i32
    divisions: the targets have no 64-bit divide instruction and link no `__divdi3`. The
    magnitude splits at bit 16: `hi = |n| >> 16 < 2^24`, and the remainder of `hi / den` before
    the low 16 bits stays below 2^24, so both unsigned divisions are exact in i32."""
    i64 = n.type
    negative = b.less(n, b.constant(0, i64))
    magnitude = b.select(negative, b.sub(b.constant(0, i64), n), n)
    sixteen = b.constant(16, i64)
    high64 = b.shr(magnitude, sixteen)
    low = b.convert(b.sub(magnitude, b.shl(high64, sixteen)), i32)
    high = b.convert(high64, i32)
    high_quotient = b.udiv(high, den)
    remainder = b.sub(high, b.mul(high_quotient, den))
    low_quotient = b.udiv(b.add(b.shl(remainder, b.constant(16, i32)), low), den)
    quotient = b.add(
        b.shl(b.convert(high_quotient, i64, unsigned=True), sixteen),
        b.convert(low_quotient, i64, unsigned=True),
    )
    return b.select(negative, b.sub(b.constant(0, i64), quotient), quotient)


def isqrt(b: LoopBuilder, n: SSAValue) -> SSAValue:
    """`floor(sqrt(n))` of an i32 `n` in [1, 2^31) by `reference.isqrt`'s Newton iteration: start
    at `2^ceil(bits/2)` with `bits = 32 - ctlz(n)`, step `x <- (x + n / x) >> 1` (unsigned
    division) while that decreases x. The start is at most 2^16 and at least sqrt(n), every
    step at least floor(sqrt(n)) >= 1 (AM-GM), so `x + n / x <= 2^17`: exact in i32."""
    one = b.constant(1, i32)
    half_bits = b.shr(b.sub(b.constant(33, i32), b.ctlz(n)), one)  # ceil((32 - ctlz) / 2)

    def step(bw: LoopBuilder, carried: tuple[SSAValue, ...]):
        (x,) = carried
        smaller = bw.shr(bw.add(x, bw.udiv(n, x)), one)
        return bw.less(smaller, x), (smaller, x)

    _, root = b.while_loop((b.shl(one, half_bits),), step, lambda bw, passed: (passed[0],))
    return root


def elementwise(
    b: LoopBuilder,
    inputs: Sequence[tuple[SSAValue, bool]],
    out: SSAValue,
    fn: Callable[[LoopBuilder, list[SSAValue]], SSAValue],
    requant: Requant | None = None,
) -> None:
    """`out[i...] = fn(inputs[0][i...], ...)` over `out`'s shape (inputs as (memref, holds
    unsigned data)), narrowed by `requant` (channel: the last index) if given."""

    def body(bi: LoopBuilder, idx: list[SSAValue]) -> None:
        values = []
        for ref, unsigned in inputs:
            value = bi.load(ref, idx)
            values.append(bi.convert(value, compute_type(value.type), unsigned))
        value = fn(bi, values)
        value = requant(bi, value, idx[-1]) if requant else value
        bi.store(bi.convert(value, element_type(out)), out, idx)

    b.for_nest(tuple(out.type.get_shape()), body)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Window:
    """A 2-D sliding window over x [C, H, W]: kernel (KH, KW), strides, pads (top, left,
    bottom, right)."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]

    def taps(
        self,
        b: LoopBuilder,
        x: SSAValue,
        channel: SSAValue,
        at: tuple[SSAValue, SSAValue],
        body: Callable[[LoopBuilder, SSAValue, SSAValue, list[SSAValue], SSAValue], SSAValue],
        init: SSAValue,
        unsigned: bool = False,
    ) -> SSAValue:
        """Fold `body(b, inside, value, (ky, kx), acc)` over the window of output position `at`
        of `channel`: `value` is x there in its compute type, read at the clamped position
        where the tap falls in the padding (`inside` false). With padding, a window wholly
        inside x (most of them) takes a copy of the fold without the per-tap checks."""
        extent = x.type.get_shape()[1:]  # type: ignore[attr-defined]
        corner = [
            b.sub(b.mul(at[axis], b.index(self.strides[axis])), b.index(self.pads[axis]))
            for axis in range(2)
        ]

        def fold(bf: LoopBuilder, checked: bool) -> SSAValue:
            def tap(bt: LoopBuilder, offsets: list[SSAValue], acc: SSAValue) -> SSAValue:
                inside, position = bt.constant(1, IntegerType(1)), []
                for axis in range(2):
                    coordinate = bt.add(corner[axis], offsets[axis])
                    if checked:
                        ok = bt.insert(
                            arith.AndIOp(
                                bt.less(coordinate, bt.index(extent[axis])),
                                bt.less(bt.index(-1), coordinate),
                            )
                        )
                        inside = bt.insert(arith.AndIOp(inside, ok))
                        coordinate = bt.clip(coordinate, 0, extent[axis] - 1)
                    position.append(coordinate)
                value = bt.load(x, [channel, *position])
                value = bt.convert(value, compute_type(value.type), unsigned)
                return body(bt, inside, value, offsets, acc)

            def rows(br: LoopBuilder, ky: SSAValue, carried: tuple[SSAValue, ...]):
                def cols(bc: LoopBuilder, kx: SSAValue, inner: tuple[SSAValue, ...]):
                    return (tap(bc, [ky, kx], inner[0]),)

                return br.for_range(self.kernel[1], cols, carried)

            (result,) = bf.for_range(self.kernel[0], rows, (init,))
            return result

        if not any(self.pads):  # the window-output formula keeps every window inside x
            return fold(b, checked=False)
        interior = b.constant(1, IntegerType(1))
        for axis in range(2):
            last = b.add(corner[axis], b.index(self.kernel[axis] - 1))
            within = arith.AndIOp(
                b.less(b.index(-1), corner[axis]), b.less(last, b.index(extent[axis]))
            )
            interior = b.insert(arith.AndIOp(interior, b.insert(within)))
        (result,) = b.if_else(
            interior, lambda bi: (fold(bi, checked=False),), lambda bp: (fold(bp, checked=True),)
        )
        return result


def conv(
    b: LoopBuilder,
    x: SSAValue,
    weight: SSAValue,
    bias: SSAValue | None,
    out: SSAValue,
    window: Window,
    groups: int,
    requant: Requant | None = None,
    unsigned: bool = False,
) -> None:
    """`out[co, oy, ox] = requant(bias[co] + sum_{ci, ky, kx} x[.., .., ..] w[co, ci, ky, kx])`
    over the input channels of co's group, a tap in the padding reading zero (a select of the
    clamped read); integers in wrapping i32."""
    c_out, per_group = weight.type.get_shape()[:2]  # type: ignore[attr-defined]
    acc_type = compute_type(element_type(x))
    zero = b.constant(0, acc_type)
    out_per_group = c_out // groups

    def body(bo: LoopBuilder, idx: list[SSAValue]) -> None:
        co, oy, ox = idx
        init = zero if bias is None else bo.convert(bo.load(bias, [co]), acc_type)
        first = bo.mul(bo.div(co, bo.index(out_per_group)), bo.index(per_group))

        def channel(bc: LoopBuilder, ci: SSAValue, acc: tuple[SSAValue, ...]):
            def tap(bt, inside, value, offsets, total):
                w = bt.load(weight, [co, ci, *offsets])
                product = bt.mul(bt.select(inside, value, zero), bt.convert(w, acc_type))
                return bt.add(total, product)

            source = bc.add(first, ci)
            return (window.taps(bc, x, source, (oy, ox), tap, acc[0], unsigned),)

        (total,) = bo.for_range(per_group, channel, (init,))
        value = requant(bo, total, co) if requant else total
        bo.store(bo.convert(value, element_type(out)), out, idx)

    b.for_nest(tuple(out.type.get_shape()), body)  # type: ignore[attr-defined]


def im2col(b: LoopBuilder, x: SSAValue, out: SSAValue, window: Window) -> None:
    """`out[oy*OW + ox, (c*KH + ky)*KW + kx]` = the tap of x, zero in the padding: the stored
    bytes are copied (their signedness does not matter), the padding selected to zero."""
    channels = x.type.get_shape()[0]  # type: ignore[attr-defined]
    rows, _ = out.type.get_shape()  # type: ignore[attr-defined]
    kh, kw = window.kernel
    storage = element_type(x)
    width = (
        x.type.get_shape()[2] + window.pads[1] + window.pads[3] - kw  # type: ignore[attr-defined]
    ) // window.strides[1] + 1
    patch = reshaped(b, out, (rows // width, width, channels, kh, kw))

    def body(bo: LoopBuilder, idx: list[SSAValue]) -> None:
        oy, ox, c = idx
        zero = bo.constant(0, compute_type(storage))

        def tap(bt, inside, value, offsets, _):
            bt.store(
                bt.convert(bt.select(inside, value, zero), storage), patch, [oy, ox, c, *offsets]
            )
            return zero

        window.taps(bo, x, c, (oy, ox), tap, zero)

    b.for_nest((rows // width, width, channels), body)


def maxpool(
    b: LoopBuilder, x: SSAValue, out: SSAValue, window: Window, unsigned: bool = False
) -> None:
    """`out[c, oy, ox] = max` of the window's taps inside x (the padding never wins: the max
    starts at the lowest value the type holds, -inf for f32; a NaN propagates)."""
    storage = element_type(x)
    acc_type = compute_type(storage)
    if is_integer(acc_type):
        lowest = 0 if unsigned else -(1 << (storage.width.data - 1))  # type: ignore[attr-defined]
    else:
        lowest = -math.inf

    def body(bo: LoopBuilder, idx: list[SSAValue]) -> None:
        c, oy, ox = idx

        def tap(bt, inside, value, offsets, best):
            return bt.select(inside, bt.max(best, value), best)  # NaN wins, as in ONNX

        best = window.taps(bo, x, c, (oy, ox), tap, bo.constant(lowest, acc_type), unsigned)
        bo.store(bo.convert(best, element_type(out)), out, idx)

    b.for_nest(tuple(out.type.get_shape()), body)  # type: ignore[attr-defined]


def lookup(b: LoopBuilder, rows: int, cols: int, x: Matrix, table: SSAValue, out: Matrix) -> None:
    """`out[i, j] = table[x[i, j] - lowest]`: one load of the 8-bit value, one of the table."""

    def body(bi: LoopBuilder, idx: list[SSAValue]) -> None:
        i, j = idx
        offset = bi.sub(x.load(bi, i, j), bi.constant(x.lowest, i32))
        entry = bi.load(table, [bi.insert(arith.IndexCastOp(offset, IndexType()))])
        bi.store(entry, out.ref, out.indices(i, j))

    b.for_nest((rows, cols), body)


def sigmoid(b: LoopBuilder, x: SSAValue) -> SSAValue:
    """`1 / (1 + exp(-x))` from `e = exp(-|x|)` (`exp_nonpositive`, no overflow either way):
    `1 / (1 + e)` for x >= 0, `e / (1 + e)` below."""
    zero, one = b.constant(0.0, f32), b.constant(1.0, f32)
    negative = b.insert(arith.CmpfOp(x, zero, "olt"))
    e = exp_nonpositive(b, b.select(negative, x, b.sub(zero, x)))
    return b.div(b.select(negative, e, one), b.add(one, e))


def round_half_even(b: LoopBuilder, x: SSAValue) -> SSAValue:
    """ONNX's Round: to the nearest integer, ties to even, by the FPU's own rounding: below
    2^23, `(|x| + 2^23) - 2^23` has no fraction bits left (IEEE rounding is to nearest even,
    and nothing reassociates it); from 2^23 on every f32 is an integer. The sign is put back."""
    zero, big = b.constant(0.0, f32), b.constant(float(2**23), f32)
    negative = b.insert(arith.CmpfOp(x, zero, "olt"))
    magnitude = b.select(negative, b.sub(zero, x), x)
    small = b.insert(arith.CmpfOp(magnitude, big, "olt"))
    rounded = b.select(small, b.sub(b.add(magnitude, big), big), magnitude)
    return b.select(negative, b.sub(zero, rounded), rounded)


# Abramowitz and Stegun 7.1.26: erfc(a) = t (a1 + t (a2 + ...)) exp(-a^2), t = 1 / (1 + p a), for
# a >= 0, within 1.5e-7 of erf(a) = 1 - erfc(a).
ERFC_P = 0.3275911
ERFC_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def gelu(b: LoopBuilder, x: SSAValue) -> SSAValue:
    """`0.5 x (1 + erf(z))`, `z = x / sqrt(2)`, with `q = erfc(|z|)` by `ERFC_COEFFICIENTS`:
    `1 + erf(z)` is `q` below zero (no cancellation where GELU vanishes) and `2 - q` above.
    One division and `exp_nonpositive`, about 30 operations where MLIR's erf approximation
    takes about 90 instructions (Cortex-M4)."""
    zero, one = b.constant(0.0, f32), b.constant(1.0, f32)
    z = b.mul(x, b.constant(1 / math.sqrt(2.0), f32))
    negative = b.insert(arith.CmpfOp(z, zero, "olt"))
    a = b.select(negative, b.sub(zero, z), z)
    t = b.div(one, b.fma(a, b.constant(ERFC_P, f32), one))
    poly = b.constant(ERFC_COEFFICIENTS[0], f32)
    for coefficient in ERFC_COEFFICIENTS[1:]:
        poly = b.fma(poly, t, b.constant(coefficient, f32))
    q = b.mul(b.mul(poly, t), exp_nonpositive(b, b.sub(zero, b.mul(a, a))))
    one_plus_erf = b.select(negative, q, b.sub(b.constant(2.0, f32), q))
    return b.mul(b.mul(x, b.constant(0.5, f32)), one_plus_erf)


def igelu(b: LoopBuilder, x: SSAValue, params: ta.IGeluAttr) -> SSAValue:
    """I-BERT integer GELU of an 8-bit value `x` widened to i32 (`reference.IGelu`):
    `d = min(|x|, -b) + b`, `L = one - d^2`, `erf = sign(x) L` and `x ((one + erf) >> 1)`.
    `|x| <= 255`, so `min(|x|, -b) = min(|x|, min(-b, 256))` needs no wider constant; the rest
    is ring arithmetic modulo 2^32 (b and one taken modulo 2^32) up to the shift, which sees
    the same wrapped i32 as in the reference. The sign is a select: at x = 0 erf does not
    matter, the product is 0."""
    coeff_b, one = params.b.data, params.one.data
    zero = b.constant(0, i32)
    negative = b.less(x, zero)
    magnitude = b.select(negative, b.sub(zero, x), x)
    clamped = b.min(magnitude, b.constant(min(-coeff_b, 256), i32))
    d = b.add(clamped, i32_constant(b, coeff_b))
    poly = b.sub(i32_constant(b, one), b.mul(d, d))
    erf = b.select(negative, b.sub(zero, poly), poly)
    half = b.shr(b.add(i32_constant(b, one), erf), b.constant(1, i32))
    return b.mul(x, half)


def relu(b: LoopBuilder, x: SSAValue) -> SSAValue:
    return b.max(x, b.constant(0, x.type))


def mean_axis(
    b: LoopBuilder,
    outer: int,
    axis: int,
    inner: int,
    x: SSAValue,
    out: SSAValue,
    requant: Requant | None = None,
    unsigned: bool = False,
) -> None:
    """`out[o, i] = mean_a x[o, a, i]` (x viewed as [outer, axis, inner], out as [outer, inner]).
    Integers (`unsigned`: x holds unsigned data) sum in i32; the mean is `requant(sum)` per
    channel of the result's last axis, or without one the sum divided by `axis` rounding half
    up: `floor((sum + axis // 2) / axis)`."""
    acc_type = compute_type(element_type(x))

    def channel(bo: LoopBuilder, o: SSAValue, i: SSAValue) -> SSAValue:
        """The index along the result's last axis, whose length divides `inner`, or `outer`
        when the mean is over the last axis (inner = 1); per-tensor values ignore it."""
        assert requant is not None
        index, extent = (i, inner) if inner > 1 else (o, outer)
        if requant.channels in (1, extent):
            return index
        return bo.rem(index, bo.index(requant.channels))

    def body(bo: LoopBuilder, idx: list[SSAValue]) -> None:
        o, i = idx
        (total,) = bo.for_range(
            axis,
            lambda ba, a, acc: (
                ba.add(acc[0], Matrix(x, ((1, a),), unsigned=unsigned).load(ba, o, i)),
            ),
            (bo.constant(0, acc_type),),
        )
        if requant is not None:
            mean = requant(bo, total, channel(bo, o, i))
        elif is_integer(acc_type):
            mean = bo.div(
                bo.add(total, bo.constant(axis // 2, acc_type)), bo.constant(axis, acc_type)
            )
        else:
            mean = bo.mul(total, bo.constant(1.0 / axis, acc_type))
        Matrix(out).store(bo, mean, o, i)

    b.for_nest((outer, inner), body)
