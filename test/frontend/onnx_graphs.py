"""Builders for the small ONNX graphs the importer tests use (`onnx.helper` only, no torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from tinyattn.dialects.dense import numpy_dtype
from tinyattn.frontend.onnx_import import import_model
from tinyattn.semantics.interpreter import evaluate


class GraphBuilder:
    """Nodes and constants around one float input `x`; every node is named `/<Op>_<n>`.
    Constants are initializers, or `Constant` nodes with `constant_nodes`."""

    def __init__(
        self,
        input_shape: Sequence[int],
        opset: int = 17,
        seed: int = 0,
        constant_nodes: bool = False,
    ):
        self.input_shape = list(input_shape)
        self.opset = opset
        self.constant_nodes = constant_nodes
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.extra_inputs: list[onnx.ValueInfoProto] = []

    def _name(self, kind: str) -> str:
        return f"/{kind}_{len(self.nodes) + len(self.initializers)}"

    def const(self, value, dtype=np.float32) -> str:
        tensor = numpy_helper.from_array(np.asarray(value, dtype))
        if self.constant_nodes:
            return self.op("Constant", value=tensor)
        tensor.name = self._name("Constant") + "_output_0"
        self.initializers.append(tensor)
        return tensor.name

    def weight(self, *shape: int) -> str:
        return self.const(self.rng.normal(0, 1 / math.sqrt(shape[0]), shape))

    def bias(self, width: int) -> str:
        return self.const(self.rng.uniform(-0.1, 0.1, width))

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attrs) -> str:
        name = self._name(op_type) if name is None else name
        output = f"{name or op_type}_output_0"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def input(self, name: str, shape: Sequence[int]) -> str:
        self.extra_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def model(self, *outputs: str) -> onnx.ModelProto:
        """The model computing `outputs`; their shapes are left to shape inference."""
        graph = helper.make_graph(
            self.nodes,
            "test",
            [
                helper.make_tensor_value_info("x", TensorProto.FLOAT, self.input_shape),
                *self.extra_inputs,
            ],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None) for out in outputs],
            self.initializers,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])


def linear(b: GraphBuilder, x: str, n_in: int, n_out: int, bias: bool = True) -> str:
    y = b.op("MatMul", x, b.weight(n_in, n_out))
    return b.op("Add", y, b.bias(n_out)) if bias else y


def attention(
    b: GraphBuilder,
    x: str,
    *,
    seq: int,
    embed: int,
    heads: int,
    head_dim: int,
    scalings: Sequence[tuple[str, str, float]],
    bias: bool = True,
    k_transposed_twice: bool = False,
    split_shape: Sequence[int] | None = None,
    key_first: bool = False,
) -> str:
    """Self-attention as PyTorch exports it; `scalings` are (where: q|k|scores, Mul|Div,
    constant) applied in order, `split_shape` overrides the head split's [1, S, H, P],
    `key_first` emits the K projection before the Q one."""
    split = b.const(split_shape or [1, seq, heads, head_dim], np.int64)

    def heads_of(t: str, perm: list[int]) -> str:
        return b.op("Transpose", b.op("Reshape", t, split), perm=perm)

    def scaled(t: str, where: str) -> str:
        for place, op_type, value in scalings:
            if place == where:
                t = b.op(op_type, t, b.const(value))
        return t

    width = heads * head_dim
    roles = ("k", "q", "v") if key_first else ("q", "k", "v")
    projections = {role: linear(b, x, embed, width, bias) for role in roles}
    q = heads_of(projections["q"], [0, 2, 1, 3])
    k = projections["k"]
    if k_transposed_twice:
        k_t = b.op("Transpose", heads_of(k, [0, 2, 1, 3]), perm=[0, 1, 3, 2])
    else:
        k_t = heads_of(k, [0, 2, 3, 1])
    v = heads_of(projections["v"], [0, 2, 1, 3])
    scores = scaled(b.op("MatMul", scaled(q, "q"), scaled(k_t, "k")), "scores")
    context = b.op("MatMul", b.op("Softmax", scores, axis=-1), v)
    merged = b.op(
        "Reshape",
        b.op("Transpose", context, perm=[0, 2, 1, 3]),
        b.const([1, seq, width], np.int64),
    )
    return linear(b, merged, width, embed, bias)


def tinyattn_ops(module) -> list[str]:
    """The tinyattn ops of an imported module, in order."""
    return [op.name for op in module.walk() if op.name.startswith("tinyattn.")]


def assert_matches_onnx(model: onnx.ModelProto | str | Path, seeds: Sequence[int] = (0, 1)):
    """Import `model` (as given, to exercise each accepted form), run it and the ONNX reference
    on random inputs, compare; returns the imported module."""
    module = import_model(model)
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(model)
    reference = ReferenceEvaluator(proto)
    shape = [dim.dim_value for dim in proto.graph.input[0].type.tensor_type.shape.dim]
    for seed in seeds:
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        (expected,) = reference.run(None, {"x": x})
        (actual,) = evaluate(module, [x])
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    return module


# ---------------------------------------------------------------------------------------------
# Integerised graphs as QuantLib exports them: float32 tensors holding integers, RequantShift
# and iSoftmax with one-element float tensor attributes. Their values stay below 2^24, so
# onnx.reference's float32 MatMul and Add are exact and, with the two ops below written from the
# integer spec, an independent oracle.
# ---------------------------------------------------------------------------------------------

TYPICAL_ISOFTMAX = {"coeffA": 1, "coeffB": 173, "coeffC": 15599, "log2": 127, "n_levels": 256}


def _float_attr(value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32))


def requant_shift(
    b: GraphBuilder, x: str, mul, add=0, *, div=2**8, signed=1, levels=256, name=None, domain=""
) -> str:
    attrs = {"div": _float_attr(div), "n_levels_out": _float_attr([levels])}
    if signed is not None:
        attrs["signed"] = _float_attr([signed])
    return b.op("RequantShift", x, b.const(mul), b.const(add), name=name, domain=domain, **attrs)


def isoftmax(b: GraphBuilder, x: str, **coeffs) -> str:
    attrs = {key: _float_attr([value]) for key, value in {**TYPICAL_ISOFTMAX, **coeffs}.items()}
    return b.op("iSoftmax", x, **attrs)


def int_weight(b: GraphBuilder, *shape: int, bound: int = 8) -> str:
    return b.const(b.rng.integers(-bound, bound + 1, shape))


def int_linear(b: GraphBuilder, x: str, n_in: int, n_out: int, bias: bool = True) -> str:
    y = b.op("MatMul", x, int_weight(b, n_in, n_out))
    return b.op("Add", b.const(b.rng.integers(-500, 501, n_out)), y) if bias else y


def integer_attention(
    b: GraphBuilder,
    x: str,
    *,
    seq: int,
    heads: int,
    head_dim: int,
    embed: int,
    normalization: str | None = "iSoftmax",
    signed: dict[str, int] | None = None,
    unrequantized: str | None = None,
) -> str:
    """Self-attention as QuantLib integerises it: every stage narrowed by a RequantShift, the
    scores through `normalization` (iSoftmax, Softmax, or None: straight into the context
    MatMul); `signed` overrides the signedness of a stage (q, k, v, score, context, out),
    `unrequantized` names a projection (q, k or v) left without its RequantShift."""
    signed = {"q": 1, "k": 1, "v": 1, "score": 1, "context": 1, "out": 1, **(signed or {})}
    split = b.const([1, seq, heads, head_dim], np.int64)
    width = heads * head_dim

    def heads_of(role: str, perm: list[int]) -> str:
        projected = int_linear(b, x, embed, width)
        if role != unrequantized:
            multiplier = {"q": 5, "k": 6, "v": 4}[role]
            projected = requant_shift(b, projected, multiplier, signed=signed[role])
        return b.op("Transpose", b.op("Reshape", projected, split), perm=perm)

    q = heads_of("q", [0, 2, 1, 3])
    k = heads_of("k", [0, 2, 3, 1])
    v = heads_of("v", [0, 2, 1, 3])
    scores = requant_shift(b, b.op("MatMul", q, k), 3, div=2**6, signed=signed["score"])
    if normalization == "iSoftmax":
        probabilities = isoftmax(b, scores)
    elif normalization == "Softmax":
        probabilities = b.op("Softmax", scores, axis=-1)
    else:
        probabilities = scores
    context = requant_shift(
        b, b.op("MatMul", probabilities, v), 1, div=2**5, signed=signed["context"]
    )
    merged = b.op(
        "Reshape",
        b.op("Transpose", context, perm=[0, 2, 1, 3]),
        b.const([1, seq, width], np.int64),
    )
    return requant_shift(b, int_linear(b, merged, width, embed), 7, signed=signed["out"])


# onnx.reference finds an op's implementation by its class name.
class RequantShift(OpRun):
    """The integer spec's RequantShift: mul and add per channel along axis 1."""

    op_domain = ""

    def _run(self, x, mul, add, div=None, n_levels_out=None, signed=None):
        def channels_first(value):
            """A vector lies along axis 1; any other shape broadcasts as NumPy's rules say."""
            value = np.asarray(value, np.int64)
            if value.ndim != 1 or value.size == 1:
                return value.reshape(()) if value.size == 1 else value
            return value.reshape(-1, *[1] * (x.ndim - 2))

        shift = int(div).bit_length() - 1
        t = x.astype(np.int64) * channels_first(mul) + channels_first(add) + (1 << shift >> 1)
        levels = int(n_levels_out.item())
        low, high = (-levels // 2, levels // 2 - 1) if signed.item() else (0, levels - 1)
        return (np.clip(t >> shift, low, high).astype(np.float32),)


class iSoftmax(OpRun):
    """The integer spec's iSoftmax over the last axis."""

    op_domain = ""

    def _run(self, x, coeffA=None, coeffB=None, coeffC=None, log2=None, n_levels=None):
        a, b, c, log, levels = (int(v.item()) for v in (coeffA, coeffB, coeffC, log2, n_levels))
        xt = x.astype(np.int64) - x.astype(np.int64).max(axis=-1, keepdims=True)
        z = np.clip(-xt // log, 0, 31)
        e = (a * (xt + z * log + b) ** 2 + c) >> z
        return ((e * (levels - 1) // e.sum(axis=-1, keepdims=True)).astype(np.float32),)


class iNoNorm(OpRun):
    """QuantLib's iNoNorm: ((x * weight + bias) * mul) >> log2(D), rounding down, clipped to
    the signed 8-bit range."""

    op_domain = ""

    def _run(self, x, weight, bias, D=None, mul=None, n_levels=None):  # noqa: N803
        shift = int(np.asarray(D).item()).bit_length() - 1
        t = (x.astype(np.int64) * weight.astype(np.int64) + bias.astype(np.int64)) * int(
            np.asarray(mul).item()
        )
        return (np.clip(t >> shift, -128, 127).astype(np.float32),)


class iRMSNorm(OpRun):
    """QuantLib's iRMSNorm as Deeploy computes it, row by row in Python integers: den =
    isqrt(floor(sum(x^2) / E) + 1), trunc(x * w / den) >> log2(D), clipped to 8 bits."""

    op_domain = ""

    def _run(self, x, weight, D=None, n_levels=None):  # noqa: N803
        shift = int(D).bit_length() - 1
        weight = np.broadcast_to(weight, x.shape)[(0,) * (x.ndim - 1)]  # a vector over E
        rows = x.astype(np.int64).reshape(-1, x.shape[-1])
        out = np.empty_like(rows)
        for r, row in enumerate(rows):
            den = math.isqrt(int((row * row).sum()) // row.size + 1)
            for c, value in enumerate(row):
                product = int(value) * int(weight[c])
                quotient = abs(product) // den * (1 if product >= 0 else -1)
                out[r, c] = min(max(quotient >> shift, -128), 127)
        return (out.reshape(x.shape).astype(np.float32),)


class iLayerNorm(OpRun):
    """QuantLib's iLayerNorm as Deeploy computes it (with QuantLib's clip), row by row in
    Python integers: d = x - trunc(mean), den = isqrt(floor(sum(d^2) / E) + 1),
    (trunc(d * w / den) + b) >> log2(D), clipped to 8 bits."""

    op_domain = ""

    def _run(self, x, weight, bias, D=None, n_levels=None):  # noqa: N803
        shift = int(D).bit_length() - 1

        def truncated(numerator: int, denominator: int) -> int:
            quotient = abs(numerator) // denominator
            return quotient if numerator >= 0 else -quotient

        weight, bias = (np.asarray(v).reshape(-1)[-x.shape[-1]:] for v in (weight, bias))
        rows = x.astype(np.int64).reshape(-1, x.shape[-1])
        out = np.empty_like(rows)
        for r, row in enumerate(rows):
            mean = truncated(int(row.sum()), row.size)
            centred = [int(v) - mean for v in row]
            den = math.isqrt(sum(d * d for d in centred) // row.size + 1)
            for c, d in enumerate(centred):
                value = (truncated(d * int(weight[c]), den) + int(bias[c])) >> shift
                out[r, c] = min(max(value, -128), 127)
        return (out.reshape(x.shape).astype(np.float32),)


class iGELU(OpRun):
    """I-BERT's integer GELU from its definition: q = min(|x|, -b), L = sgn(x)(one - (q+b)^2),
    y = x * floor((one + L) / 2)."""

    op_domain = ""

    def _run(self, x, b=None, one=None):
        values = x.astype(np.int64)
        q = np.minimum(np.abs(values), -b)
        erf = np.sign(values) * (one - (q + b) ** 2)
        return ((values * ((one + erf) // 2)).astype(np.float32),)


class ITAMax(OpRun):
    """ITA's integer softmax as Deeploy's ITAMax_s8 computes it, row by row in Python integers."""

    op_domain = ""

    def _run(self, x, n_levels=None, axis=-1):
        rows = x.astype(np.int64).reshape(-1, x.shape[-1])
        out = np.empty_like(rows)
        for r, row in enumerate(rows):
            peak = int(row.max())
            shifts = [(peak - int(v) + 16) >> 5 for v in row]
            inverse = 255 * 256 // sum(256 >> shift for shift in shifts)
            out[r] = [inverse >> shift for shift in shifts]
        return (out.reshape(x.shape).astype(np.float32),)


class IntegerMean(OpRun):
    """QuantLib's IntegerMean: the mean over `axes`, rounded half up."""

    op_domain = ""

    def _run(self, x, axes=None, keepdims=1):
        values = x.astype(np.int64)
        count = int(np.prod([values.shape[a] for a in axes]))
        total = values.sum(axis=tuple(axes), keepdims=bool(keepdims))
        return (np.floor(total / count + 0.5).astype(np.float32),)


class iHardswish(OpRun):
    """QuantLib's integer hardswish, from its definition: x * (clip(x + 3, 0, 6) * 1/6)."""

    op_domain = ""

    def _run(self, x, three=None, six=None, one_over_six=None):
        gate = np.clip(x.astype(np.int64) + three, 0, six) * one_over_six
        return ((x.astype(np.int64) * gate).astype(np.float32),)


class TrueIntegerDiv(OpRun):
    """QuantLib's TrueIntegerDiv by the constant y, truncating, in exact Python integers."""

    op_domain = ""

    def _run(self, x, Delta=None, eps=None, eta=None, y=None):  # noqa: N803 (QuantLib's names)
        def divide(value: int) -> int:
            numerator, denominator = value * Delta * eta, y * eta + eps
            quotient = abs(numerator) // abs(denominator)
            return quotient if (numerator >= 0) == (denominator > 0) else -quotient

        values = [divide(int(v)) for v in x.ravel()]
        return (np.asarray(values, np.float64).reshape(x.shape).astype(np.float32),)


def run_integer_onnx(model: onnx.ModelProto, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs by onnx.reference with QuantLib's ops, as int64."""
    reference = ReferenceEvaluator(
        model,
        new_ops=[
            RequantShift, iSoftmax, iHardswish, TrueIntegerDiv, iNoNorm, iRMSNorm, iLayerNorm,
            iGELU, IntegerMean, ITAMax,
        ],  # fmt: skip
    )
    names = [info.name for info in model.graph.input]
    feeds = {name: np.asarray(x, np.float32) for name, x in zip(names, inputs, strict=True)}
    return [np.asarray(y).astype(np.int64) for y in reference.run(None, feeds)]


def input_dtypes(module) -> list[np.dtype]:
    (main,) = module.ops
    return [numpy_dtype(t.get_element_type()) for t in main.function_type.inputs.data]


def assert_integer_matches_onnx(model: onnx.ModelProto, inputs: Sequence[np.ndarray]):
    """Import `model` with `inputs` as the samples, evaluate it, compare with the oracle bit
    for bit; returns the imported module."""
    module = import_model(model, list(inputs))
    typed = [x.astype(dtype) for x, dtype in zip(inputs, input_dtypes(module), strict=True)]
    for actual, expected in zip(
        evaluate(module, typed), run_integer_onnx(model, inputs), strict=True
    ):
        np.testing.assert_array_equal(actual.astype(np.int64), expected)
    return module
