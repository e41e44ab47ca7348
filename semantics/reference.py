"""Reference semantics of every tinyattn op in numpy: the golden model of all tests.

f32 ops compute in float64 and round their result to float32 once, so the reference is at least
as accurate as any f32 schedule the compiler emits. Integer ops follow the integer-only
deployment semantics (QuantLib/Deeploy): operands take part with their true values (ui8 as
0..255), products and sums are int32 and wrap on overflow, and 8-bit results come from a
requantization (`requant`) that rounds half up and clips to the result's range. The integer
softmax, GELU and layer norm are I-BERT's (Kim et al. 2021): second-order polynomials with
integer coefficients and, for the layer norm, an integer Newton square root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# Integer building blocks
# ---------------------------------------------------------------------------------------------


def wrap_int32(values: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32, as the deployed kernels' int32 arithmetic does."""
    return ((np.asarray(values, dtype=np.int64) + 2**31) % 2**32 - 2**31).astype(np.int64)


@dataclass(frozen=True)
class Requant:
    """`clip((x*mul + add + 2^(shift-1)) >> shift)` with per-tensor or last-axis `mul`/`add`."""

    mul: tuple[int, ...]
    add: tuple[int, ...]
    shift: int

    def __call__(self, acc: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
        mul = np.asarray(self.mul, dtype=np.int64)
        add = np.asarray(self.add, dtype=np.int64)
        half = (1 << (self.shift - 1)) if self.shift > 0 else 0
        t = wrap_int32(wrap_int32(wrap_int32(acc) * mul) + add + half)
        info = np.iinfo(out_dtype)
        return np.clip(t >> self.shift, info.min, info.max).astype(out_dtype)


def requant_for(
    ratio: float | np.ndarray, bound: float | np.ndarray, offset: float | np.ndarray = 0.0
) -> Requant:
    """The requantization closest to the real `x * ratio + offset` (per tensor, or per channel
    of the last axis): `mul / 2^shift ~ ratio`, `add / 2^shift ~ offset` with the largest shift
    (the finest step) for which `bound * |mul| + |add| + 2^(shift-1)` stays within int32, so an
    accumulator of magnitude at most `bound` never wraps. ValueError if none exists."""
    ratio = np.atleast_1d(np.asarray(ratio, np.float64))
    offset = np.atleast_1d(np.asarray(offset, np.float64))
    bound = np.broadcast_to(np.asarray(bound, np.float64), np.broadcast(ratio, offset).shape)
    for shift in range(31, -1, -1):
        mul, add = np.rint(ratio * 2.0**shift), np.rint(offset * 2.0**shift)
        half = 2.0 ** (shift - 1) if shift else 0.0
        if (bound * np.abs(mul) + np.abs(add) + half <= 2**31 - 1).all() and np.abs(mul).max() >= 1:
            muls, adds = tuple(int(m) for m in mul), tuple(int(a) for a in add)
            return Requant(_per_tensor(muls), _per_tensor(adds), shift)
    raise ValueError(
        f"an accumulator of up to {int(bound.max())} cannot be requantised by {ratio.max():g}"
    )


def _per_tensor(values: tuple[int, ...]) -> tuple[int, ...]:
    """One value where all channels share it."""
    return values[:1] if len(set(values)) == 1 else values


@dataclass(frozen=True)
class ISoftmax:
    """I-BERT integer softmax over the last axis (QuantLib's iSoftmax); unsigned output."""

    coeff_a: int
    coeff_b: int
    coeff_c: int
    log2: int
    n_levels: int = 256

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        xt = x - x.max(axis=-1, keepdims=True)
        z = np.clip((-xt) // self.log2, 0, 31)
        p = xt + z * self.log2
        e = (self.coeff_a * (p + self.coeff_b) ** 2 + self.coeff_c) >> z
        total = e.sum(axis=-1, keepdims=True) & 0xFFFFFFFF
        return (e * (self.n_levels - 1) // total).astype(np.uint8)


def itamax(x: np.ndarray) -> np.ndarray:
    """ITA's integer softmax over the last axis (QuantLib's ITAMax, Deeploy's ITAMax_s8) of
    8-bit scores: each score's distance to the row maximum in units of 32 (rounded half up)
    is a power-of-two exponent, `shift = (max - x + 16) >> 5`; the row's
    `inv = 255·256 // sum(256 >> shift)`, and `out = inv >> shift`, unsigned 8-bit."""
    x = np.asarray(x, dtype=np.int64)
    shift = (x.max(axis=-1, keepdims=True) - x + 16) >> 5
    inverse = (255 * 256) // (256 >> shift).sum(axis=-1, keepdims=True)
    return (inverse >> shift).astype(np.uint8)


def isqrt(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) of non-negative integers by I-BERT's integer Newton iteration: start at
    `2^ceil(bits(n)/2)`, which is at least sqrt(n), and step `x <- (x + n // x) >> 1` while that
    decreases x; 0 for n = 0. Only integer operations, so a kernel can do exactly the same."""
    n = np.asarray(n, dtype=np.int64)
    if (n < 0).any():
        raise ValueError("isqrt of a negative number")
    bits = np.zeros_like(n)
    rest = n.copy()
    while rest.any():
        bits += rest > 0
        rest >>= 1
    x = np.left_shift(1, (bits + 1) >> 1)
    positive = np.maximum(n, 1)
    while True:
        step = (x + positive // x) >> 1
        shrinking = step < x
        if not shrinking.any():
            break
        x = np.where(shrinking, step, x)
    return np.where(n == 0, 0, x)


def _divide_toward_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """C's integer `/` (`arith.divsi`): the quotient rounded toward zero."""
    quotient = np.abs(numerator) // np.abs(denominator)
    return np.where((numerator < 0) != (denominator < 0), -quotient, quotient)


@dataclass(frozen=True)
class IGelu:
    """I-BERT integer GELU (Deeploy's GELU_s8_s32); see `#tinyattn.igelu`. The int32 result is
    GELU at the input scale divided by `one`."""

    b: int
    one: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        sign = np.sign(x)
        d = np.minimum(np.abs(x), -self.b) + self.b
        erf = wrap_int32(sign * wrap_int32(self.one - d * d))
        return wrap_int32(x * (wrap_int32(self.one + erf) >> 1))


@dataclass(frozen=True)
class ILayerNorm:
    """I-BERT integer layer normalization over the last axis; see `#tinyattn.ilayernorm`. The
    int32 result is `gamma (x - mean) / (sqrt(E) sigma) + beta`."""

    shift: int
    eps: int

    def __call__(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        width = x.shape[-1]
        total = wrap_int32(x.sum(axis=-1, keepdims=True))
        centred = wrap_int32(width * x - total) >> self.shift
        squares = wrap_int32((centred * centred).sum(axis=-1, keepdims=True) + self.eps)
        std = isqrt(squares)
        scaled = wrap_int32(centred * np.asarray(gamma, np.int64))
        return wrap_int32(_divide_toward_zero(scaled, std) + np.asarray(beta, np.int64))


@dataclass(frozen=True)
class QuantLibLayerNorm:
    """QuantLib's integer layer norm (iLayerNorm) over the last axis as Deeploy's kernel
    computes it; see `#tinyattn.quantlib_layernorm`. `d * gamma` is exact (int64: |d| <= 255),
    the result saturated to int32."""

    shift: int

    def __call__(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        width = x.shape[-1]
        mean = _divide_toward_zero(x.sum(axis=-1, keepdims=True), width)
        centred = x - mean
        squares = (centred * centred).sum(axis=-1, keepdims=True)
        den = isqrt(squares // width + 1)
        scaled = _divide_toward_zero(centred * np.asarray(gamma, np.int64), den)
        value = (scaled + np.asarray(beta, np.int64)) >> self.shift
        return np.clip(value, -(2**31), 2**31 - 1)


def ihardswish(x: np.ndarray, three: int, six: int, one_over_six: int) -> np.ndarray:
    """QuantLib's integer hardswish (iHardswish, Deeploy's iHardswish_s8_s32):
    `x * (clip(x + three, 0, six) * one_over_six)` in wrapping int32; the result is hardswish
    at the input scale times `one_over_six / (six / 6)`, for a RequantShift to narrow."""
    x = np.asarray(x, np.int64)
    gate = wrap_int32(np.clip(x + three, 0, six) * one_over_six)
    return wrap_int32(x * gate)


def true_integer_div(x: np.ndarray, delta: int, eta: int, eps: int, y: int) -> np.ndarray:
    """QuantLib's TrueIntegerDiv of `x` by the constant `y`:
    `trunc(x * Delta * eta / (y * eta + eps))`, exact (the numerator exceeds 32 bits: Python
    integers); truncation toward zero is what Deeploy's test vectors pin."""
    numerator = np.asarray(x, np.int64).astype(object) * (delta * eta)
    denominator = y * eta + eps
    quotient = [
        (abs(n) // abs(denominator)) * (1 if (n >= 0) == (denominator > 0) else -1)
        for n in numerator.ravel()
    ]
    return np.asarray(quotient, np.int64).reshape(np.shape(x))


def lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`table[x - lowest]` of 8-bit `x` (int8: lowest -128; uint8: 0)."""
    x = np.asarray(x)
    lowest = np.iinfo(x.dtype).min
    return np.asarray(table)[x.astype(np.int64) - lowest]


def irmsnorm(x: np.ndarray, weight: np.ndarray, shift: int) -> np.ndarray:
    """QuantLib's integer RMS norm over the last axis as Deeploy's kernel computes it:
    `den = isqrt(floor(sum(x^2) / E) + 1)`, `trunc(x * weight / den) >> shift` (int32)."""
    x = np.asarray(x, np.int64)
    squares = wrap_int32((x * x).sum(axis=-1, keepdims=True))
    den = isqrt(squares // x.shape[-1] + 1)
    scaled = wrap_int32(x * np.asarray(weight, np.int64))
    return _divide_toward_zero(scaled, den) >> shift


def _matmul_i32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return wrap_int32(np.matmul(np.asarray(a, np.int64), np.asarray(b, np.int64)))


# ---------------------------------------------------------------------------------------------
# Ops
# ---------------------------------------------------------------------------------------------


def _f64(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def softmax_f32(x: np.ndarray) -> np.ndarray:
    return _softmax(np.asarray(x, np.float64)).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def linear(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """`x W + b` over the last axis; integer: an i32 accumulator, narrowed by `requant`."""
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        x64, w64 = _f64(x, weight)
        y = x64 @ w64 + (0.0 if bias is None else np.asarray(bias, np.float64))
        return y.astype(np.float32)
    acc = _matmul_i32(x, weight)
    if bias is not None:
        acc = wrap_int32(acc + np.asarray(bias, np.int64))
    return _narrow(acc, requant, out_dtype)


def add(
    lhs: np.ndarray,
    rhs: np.ndarray,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    if np.issubdtype(np.asarray(lhs).dtype, np.floating):
        a, b = _f64(lhs, rhs)
        return (a + b).astype(np.float32)
    return _narrow(
        wrap_int32(np.asarray(lhs, np.int64) + np.asarray(rhs, np.int64)), requant, out_dtype
    )


def matmul(
    lhs: np.ndarray,
    rhs: np.ndarray,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """`lhs @ rhs` (batched); integer: an i32 product, narrowed by `requant`."""
    if np.issubdtype(np.asarray(lhs).dtype, np.floating):
        a, b = _f64(lhs, rhs)
        return np.matmul(a, b).astype(np.float32)
    return _narrow(_matmul_i32(lhs, rhs), requant, out_dtype)


def _windows(x: np.ndarray, kernel, strides, pads, fill) -> np.ndarray:
    """The sliding windows of `x` [C, *spatial] padded with `fill` (pads: begins then ends):
    [C, *out, *kernel]."""
    rank = len(kernel)
    widths = [(0, 0)] + [(pads[d], pads[rank + d]) for d in range(rank)]
    padded = np.pad(x, widths, constant_values=fill)
    axes = tuple(range(1, rank + 1))
    windows = np.lib.stride_tricks.sliding_window_view(padded, tuple(kernel), axis=axes)
    return windows[(slice(None), *(slice(None, None, s) for s in strides))]


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    strides,
    pads,
    groups: int,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """ONNX Conv of `x` [C_in, *spatial] (1-D or 2-D, dilation 1) with `weight`
    [C_out, C_in/groups, *kernel] and `bias` [C_out]; integer: zero padding, the i32 sum (wrapping),
    narrowed by `requant` (per tensor or per output channel: the first axis)."""
    integer = not np.issubdtype(np.asarray(x).dtype, np.floating)
    dtype = np.int64 if integer else np.float64
    rank = weight.ndim - 2
    windows = _windows(np.asarray(x, dtype), weight.shape[2:], strides, pads, 0)
    c_out, per_group = weight.shape[0], weight.shape[1]
    spatial, taps = "xyz"[:rank], "abc"[:rank]
    product = f"mc{taps},c{spatial}{taps}->m{spatial}"  # sum over channels and kernel taps
    outs = [
        np.einsum(
            product,
            np.asarray(weight[g * (c_out // groups) : (g + 1) * (c_out // groups)], dtype),
            windows[g * per_group : (g + 1) * per_group],
        )
        for g in range(groups)
    ]
    total = np.concatenate(outs)
    if bias is not None:
        total = total + np.asarray(bias, dtype).reshape(-1, *[1] * rank)
    if integer:
        channels_last = np.moveaxis(wrap_int32(total), 0, -1)
        return np.moveaxis(_narrow(channels_last, requant, out_dtype), -1, 0)
    return total.astype(np.float32)


def im2col(x: np.ndarray, kernel, strides, pads) -> np.ndarray:
    """The zero-padded patches of a 2-D window over x [C, H, W]: [OH*OW, C*KH*KW]."""
    windows = _windows(np.asarray(x), kernel, strides, pads, 0)  # [C, OH, OW, KH, KW]
    c, oh, ow = windows.shape[:3]
    return np.ascontiguousarray(windows.transpose(1, 2, 0, 3, 4)).reshape(oh * ow, -1)


def maxpool(x: np.ndarray, kernel, strides, pads) -> np.ndarray:
    """ONNX MaxPool of `x` [C, *spatial]: padding never wins."""
    x = np.asarray(x)
    lowest = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    windows = _windows(x, kernel, strides, pads, lowest)
    return windows.max(axis=tuple(range(-len(kernel), 0))).astype(x.dtype)


def muladd(
    x: np.ndarray,
    m: np.ndarray,
    a: np.ndarray,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """`x * m + a` with NumPy broadcasting; integer: wrapping int32, narrowed by `requant`."""
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        x64, m64, a64 = _f64(x, m, a)
        return np.broadcast_to(x64 * m64 + a64, np.shape(x)).astype(np.float32)
    product = wrap_int32(np.asarray(x, np.int64) * np.asarray(m, np.int64))
    total = wrap_int32(product + np.asarray(a, np.int64))
    return _narrow(np.broadcast_to(total, np.shape(x)), requant, out_dtype)


_FLOAT_FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "sqrt": np.sqrt,
    "round": np.round,  # half to even, like ONNX's Round
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
}


def float_map(fn: str, *inputs: np.ndarray) -> np.ndarray:
    """`tinyattn.map`'s f32 functions, in f64 rounded once to f32 (`round` on the f32 value)."""
    values = [np.asarray(x, np.float32 if fn == "round" else np.float64) for x in inputs]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(_FLOAT_FUNCTIONS[fn](*values)).astype(np.float32)


def _narrow(acc: np.ndarray, requant: Requant | None, out_dtype: np.dtype) -> np.ndarray:
    if requant is None:
        return acc.astype(np.int32)
    return requant(acc, out_dtype)


def layernorm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    epsilon: float,
    ilayernorm: ILayerNorm | QuantLibLayerNorm | None = None,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """Layer norm over the last axis; integer: `ilayernorm`'s int32 result, narrowed by
    `requant`."""
    if ilayernorm is not None:
        return _narrow(ilayernorm(x, gamma, beta), requant, out_dtype)
    x, gamma, beta = _f64(x, gamma, beta)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + epsilon) * gamma + beta).astype(np.float32)


def rmsnorm(
    x: np.ndarray,
    weight: np.ndarray,
    shift: int,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.int32,
) -> np.ndarray:
    return _narrow(irmsnorm(x, weight, shift), requant, out_dtype)


def gelu(
    x: np.ndarray,
    igelu: IGelu | None = None,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """Exact (erf) GELU; integer: `igelu`'s int32 result, narrowed by `requant`."""
    if igelu is not None:
        return _narrow(igelu(x), requant, out_dtype)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    (x,) = _f64(x)
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.zeros((), dtype=np.asarray(x).dtype))


def softmax(x: np.ndarray, isoftmax: ISoftmax | None = None, ita: bool = False) -> np.ndarray:
    if ita:
        return itamax(x)
    return softmax_f32(x) if isoftmax is None else isoftmax(x)


def mean(
    x: np.ndarray,
    axis: int,
    keepdims: bool,
    requant: Requant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """Mean over `axis`. Integer: the int32 sum, narrowed by `requant` (which folds in the
    division), or without one divided by the count rounding half up (floor division of
    `sum + count // 2`)."""
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        (x64,) = _f64(x)
        return x64.mean(axis=axis, keepdims=keepdims).astype(np.float32)
    total = wrap_int32(np.asarray(x, np.int64).sum(axis=axis, keepdims=keepdims))
    if requant is not None:
        return requant(total, out_dtype)
    count = np.asarray(x).shape[axis]
    return ((total + count // 2) // count).astype(np.int32)


@dataclass(frozen=True)
class AttentionQuant:
    """The integer stages of an attention op; `qk` is the fused (FWSA) score operand."""

    v: Requant
    score: Requant
    context: Requant
    out: Requant
    q: Requant | None = None
    k: Requant | None = None
    qk: Requant | None = None
    isoftmax: ISoftmax | None = None


def mhsa(
    x: np.ndarray,
    wq: np.ndarray,
    bq: np.ndarray,
    wk: np.ndarray,
    bk: np.ndarray,
    wv: np.ndarray,
    bv: np.ndarray,
    wo: np.ndarray,
    bo: np.ndarray,
    *,
    scale: float | None,
    softmax_scores: bool = True,
    quant: AttentionQuant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """Multi-head self-attention; weights per head: W* [H, E, P], b* [H, P], Wo [H, P, E]."""
    if quant is None:
        x64, wq, bq, wk, bk = _f64(x, wq, bq, wk, bk)
        q = np.einsum("se,hep->hsp", x64, wq) + bq[:, None, :]
        k = np.einsum("se,hep->hsp", x64, wk) + bk[:, None, :]
        scores = np.einsum("hsp,htp->hst", q, k) * scale
        return _attend_f32(x, scores, wv, bv, wo, bo, softmax_scores)
    q = _project_i8(x, wq, bq, quant.q)
    k = _project_i8(x, wk, bk, quant.k)
    scores = _matmul_i32(q, np.swapaxes(k, 1, 2))
    return _attend_int(x, scores, wv, bv, wo, bo, quant, out_dtype)


def fused_mhsa(
    x: np.ndarray,
    wqk: np.ndarray,
    bqk: np.ndarray,
    wv: np.ndarray,
    bv: np.ndarray,
    wo: np.ndarray,
    bo: np.ndarray,
    *,
    softmax_scores: bool = True,
    quant: AttentionQuant | None = None,
    out_dtype: np.dtype = np.float32,
) -> np.ndarray:
    """FWSA: scores `(X Wqk[h] + bqk[h]) X^T`; Wqk [H, E, E] and bqk [H, E] carry the scale."""
    if quant is None:
        x64, wqk, bqk = _f64(x, wqk, bqk)
        qk = np.einsum("se,hef->hsf", x64, wqk) + bqk[:, None, :]
        scores = np.einsum("hsf,tf->hst", qk, x64)
        return _attend_f32(x, scores, wv, bv, wo, bo, softmax_scores)
    qk = _project_i8(x, wqk, bqk, quant.qk)
    scores = _matmul_i32(qk, np.asarray(x, np.int64).T[None])
    return _attend_int(x, scores, wv, bv, wo, bo, quant, out_dtype)


def _attend_f32(x, scores, wv, bv, wo, bo, softmax_scores: bool) -> np.ndarray:
    x, wv, bv, wo, bo = _f64(x, wv, bv, wo, bo)
    v = np.einsum("se,hep->hsp", x, wv) + bv[:, None, :]
    probs = _softmax(scores) if softmax_scores else scores
    context = np.einsum("hst,htp->hsp", probs, v)
    return (np.einsum("hsp,hpe->se", context, wo) + bo).astype(np.float32)


def _project_i8(x: np.ndarray, w: np.ndarray, b: np.ndarray, requant: Requant) -> np.ndarray:
    """Per-head projection `requant(X W[h] + b[h])` -> int8 [H, S, P]."""
    acc = wrap_int32(_matmul_i32(x[None], w) + np.asarray(b, np.int64)[:, None, :])
    return requant(acc, np.int8)


def _attend_int(x, scores, wv, bv, wo, bo, quant: AttentionQuant, out_dtype) -> np.ndarray:
    v = _project_i8(x, wv, bv, quant.v)
    scores = quant.score(scores, np.int8)
    probs = scores if quant.isoftmax is None else quant.isoftmax(scores)
    context = quant.context(_matmul_i32(probs, v), np.int8)
    acc = wrap_int32(_matmul_i32(context, wo).sum(axis=0) + np.asarray(bo, np.int64))
    return quant.out(acc, out_dtype)
