"""Post-training quantisation: a float tinyattn module to its integer-only int8 form.

`quantize` runs the float function on calibration samples with the reference interpreter, gives
every activation a symmetric per-tensor scale (its largest |value| over the samples / 127) and
rebuilds the function with int8 activations, int8 weights (symmetric, per output channel by
default), int32 biases at scale `s_in * s_w`, and integer attention, softmax, layer norm, GELU
and mean (I-BERT, Kim et al. 2021). Each narrowing carries a `#tinyattn.requant<mul, add, shift>`
whose `mul / 2^shift` is the ratio of scales, with the largest shift for which no int32
intermediate can wrap for any 8-bit input (the accumulator is bounded from the integer weights).

Activations that must share a scale share one: both operands of an integer `add`, and a
`reshape` or `relu` with its operand. Such a group takes the scale of its widest member; a
softmax result has the fixed scale 1/(n_levels - 1).

The quantised function takes and returns 8-bit tensors. Its attributes `tinyattn.input_scales`
and `tinyattn.output_scales` (one f64 per argument and result) say what one unit is worth:

    x_int8 = clip(rint(x / input_scale), -128, 127)     (quantize_inputs)
    y      = y_int8 * output_scale                       (dequantize_outputs)
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    FunctionType,
    ModuleOp,
    TensorType,
    f32,
    f64,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import DiagnosticException, VerifyException

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import ONNX_NODE_ATTR, entry_function
from tinyattn.dialects.dense import from_numpy, numpy_dtype, to_numpy
from tinyattn.semantics import reference as ref
from tinyattn.semantics.interpreter import evaluate

INPUT_SCALES = "tinyattn.input_scales"
OUTPUT_SCALES = "tinyattn.output_scales"

QMAX = 127  # symmetric int8: [-127, 127] * scale covers [-max|x|, max|x|]
N_LEVELS = 256  # integer softmax output levels: probabilities in units of 1/255


class QuantizeError(Exception):
    """A module or calibration set that cannot be quantised; the message is one line."""


# ---------------------------------------------------------------------------------------------
# Integer parameters from real scales
# ---------------------------------------------------------------------------------------------


def symmetric_scale(max_abs: float) -> float:
    """The scale that maps [-max_abs, max_abs] onto [-127, 127] (any scale serves for 0)."""
    return max_abs / QMAX if max_abs > 0 else 1.0


def quantize_array(array: np.ndarray, scale: float | np.ndarray, dtype=np.int8) -> np.ndarray:
    """`clip(rint(array / scale))` to the range of `dtype`."""
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(array, np.float64) / scale)
    return np.clip(q, info.min, info.max).astype(dtype)


def _requant(ratio: float | np.ndarray, bound: int | np.ndarray) -> ref.Requant:
    """`reference.requant_for` with no offset, its failure a one-line QuantizeError."""
    try:
        return ref.requant_for(ratio, bound)
    except ValueError as error:
        raise QuantizeError(str(error)) from None


# I-BERT's erf polynomial: erf(x) ~ sign(x) (a (min(|x|, -b) + b)^2 + 1).
_ERF_A, _ERF_B = -0.2888, -1.769


def igelu_for(scale: float) -> ref.IGelu:
    """i-GELU for an input of `scale`: the erf polynomial at the scale `scale / sqrt(2)` of
    `x / sqrt(2)`, with `one` the integer 1. The int32 result has scale `scale / one`."""
    erf_scale = scale / math.sqrt(2.0)
    one = max(1, round(1.0 / (-_ERF_A * erf_scale**2)))
    return ref.IGelu(math.floor(_ERF_B / erf_scale), one)


def ilayernorm_for(scale: float, width: int, epsilon: float) -> ref.ILayerNorm:
    """i-LayerNorm for `width` inputs of `scale`: the smallest centring shift that keeps the
    sum of squares within int32, and `epsilon` in the units of `c^2` (c = (E x - sum x) >> shift
    is about E (x - mean) / 2^shift)."""
    for shift in range(32):
        eps = max(1, round(epsilon * width**3 / (4**shift * scale**2)))
        if ta.layernorm_square_bound(width, shift) + eps <= ta.INT32_MAX:
            return ref.ILayerNorm(shift, eps)
    raise QuantizeError(f"a layer norm over {width} values cannot be kept within int32")


def layernorm_affine(
    gamma: np.ndarray, beta: np.ndarray, norm: ref.ILayerNorm, out_scale: float
) -> tuple[np.ndarray, np.ndarray, ref.Requant]:
    """Integer gamma, beta and the output requant of an i-LayerNorm: the int32 result
    `trunc(c gamma / std) + beta` is the normalized value in units of `out_scale / 2^shift`,
    with the largest shift for which `c * gamma` and the result stay within int32."""
    width = len(gamma)
    # |c| <= (E - 1) 255 before the centring shift, +1 for its floor; |c| <= std bounds the rest.
    c_max = (((width - 1) * 255) >> norm.shift) + 1
    for shift in range(31, -1, -1):
        unit = 2.0**shift / out_scale
        gamma_int = np.rint(np.asarray(gamma, np.float64) * math.sqrt(width) * unit)
        beta_int = np.rint(np.asarray(beta, np.float64) * unit)
        g, b = np.abs(gamma_int).max(), np.abs(beta_int).max()
        half = 2.0 ** (shift - 1) if shift else 0.0
        if c_max * g <= ta.INT32_MAX and g + b + half <= ta.INT32_MAX:
            requant = ref.Requant((1,), (0,), shift)
            return gamma_int.astype(np.int32), beta_int.astype(np.int32), requant
    raise QuantizeError("layer norm parameters too large for int32")


# I-BERT's i-exp: exp(p) ~ 0.3585 (p + 1.353)^2 + 0.344 on (-ln 2, 0].
_EXP_A, _EXP_B, _EXP_C = 0.3585, 1.353, 0.344


def isoftmax_for(scale: float, n_levels: int = N_LEVELS) -> ref.ISoftmax:
    """i-Softmax for scores of `scale`: `log2 = floor(ln 2 / scale)`, the polynomial's integer
    coefficients `floor(b / scale)` and `floor(c / (a scale^2))` (a folds into the output
    normalisation)."""
    log2 = math.floor(math.log(2.0) / scale)
    if log2 < 1:
        raise QuantizeError(
            f"the scores the integer softmax reads reach ±{127 * scale:.3g} on the calibration "
            f"set, beyond the ±{127 * math.log(2.0):.3g} an 8-bit integer softmax resolves (a "
            "score scale of at most ln 2); normalize the attention's input (a LayerNorm before "
            "it) or keep the query and key weights smaller"
        )
    coeff_b = math.floor(_EXP_B / scale)
    coeff_c = math.floor(_EXP_C / (_EXP_A * scale**2))
    return ref.ISoftmax(1, coeff_b, coeff_c, log2, n_levels)


def _isoftmax_fits(isoftmax: ref.ISoftmax, row: int) -> bool:
    """Whether the exp values of a row of `row` scores, their sum and their product with
    `n_levels - 1` all fit 32 unsigned bits (the largest exp value is at p = 0)."""
    e_max = isoftmax.coeff_a * isoftmax.coeff_b**2 + isoftmax.coeff_c
    return e_max * max(row, isoftmax.n_levels - 1) < 2**32


def _isoftmax_fitting(scale: float, row: int) -> tuple[ref.ISoftmax, float]:
    """i-Softmax coefficients that fit 32 bits, for the finest scale from `scale` up."""
    while not _isoftmax_fits(isoftmax := isoftmax_for(scale), row):
        scale *= 1.05
    return isoftmax, scale


# ---------------------------------------------------------------------------------------------
# Calibration: every activation of the float function, measured with the interpreter
# ---------------------------------------------------------------------------------------------


def _entry(module: ModuleOp, name: str | None) -> func.FuncOp:
    """`annotations.entry_function`, its failure a QuantizeError."""
    try:
        return entry_function(module, name)
    except DiagnosticException as error:
        raise QuantizeError(str(error)) from None


def input_names(function: func.FuncOp) -> list[str]:
    """The names calibration data is keyed by: each argument's name, else `arg<i>`."""
    return [arg.name_hint or f"arg{i}" for i, arg in enumerate(function.args)]


def _activations(function: func.FuncOp) -> list[SSAValue]:
    """The values calibration measures: the arguments and every tinyattn result."""
    results = [r for op in function.walk() if op.dialect_name() == "tinyattn" for r in op.results]
    return [*function.args, *results]


def _trace(
    module: ModuleOp, function: func.FuncOp, samples: Sequence[Sequence[np.ndarray]]
) -> list[dict[SSAValue, np.ndarray]]:
    """Every activation of `function` on each sample: a copy of the module returns them all."""
    values = _activations(function)
    mapping: dict[SSAValue, SSAValue] = {}
    copy = module.clone(value_mapper=mapping)
    name = function.sym_name.data
    traced = _entry(copy, name)
    block = traced.body.block
    assert block.last_op is not None
    block.erase_op(block.last_op)
    block.add_op(func.ReturnOp(*(mapping[value] for value in values)))
    traced.function_type = FunctionType.from_lists(
        traced.function_type.inputs.data, [value.type for value in values]
    )
    return [dict(zip(values, evaluate(copy, sample, name), strict=True)) for sample in samples]


def _constant_array(value: SSAValue) -> np.ndarray | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, DenseIntOrFPElementsAttr):
        return to_numpy(owner.value)
    return None


def _attention_stages(op: ta.MHSAOp | ta.FusedMHSAOp, x: np.ndarray) -> dict[str, np.ndarray]:
    """The float values an int8 attention requantizes, from its input `x`: the per-head
    projections, the scaled scores and the context `probs V`."""
    x = np.asarray(x, np.float64)

    def project(weight: SSAValue, bias: SSAValue) -> np.ndarray:
        w, b = _constant_array(weight), _constant_array(bias)
        assert w is not None and b is not None
        return np.einsum("se,hep->hsp", x, w) + b[:, None, :]

    stages = {"v": project(op.wv, op.bv)}
    if isinstance(op, ta.MHSAOp):
        stages["q"], stages["k"] = project(op.wq, op.bq), project(op.wk, op.bk)
        assert op.scale is not None
        scores = np.einsum("hsp,htp->hst", stages["q"], stages["k"]) * op.scale.value.data
    else:
        stages["qk"] = project(op.wqk, op.bqk)
        scores = np.einsum("hsf,tf->hst", stages["qk"], x)
    stages["score"] = scores
    probs = ref.softmax_f32(scores) if op.normalization.data == ta.SOFTMAX else scores
    stages["context"] = np.einsum("hst,htp->hsp", probs, stages["v"])
    return stages


# ---------------------------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------------------------


class _ScaleGroups:
    """Activations that must share a scale, as a union-find forest."""

    def __init__(self) -> None:
        self._parent: dict[SSAValue, SSAValue] = {}

    def find(self, value: SSAValue) -> SSAValue:
        parent = self._parent.get(value, value)
        if parent is value:
            return value
        root = self.find(parent)
        self._parent[value] = root
        return root

    def union(self, a: SSAValue, b: SSAValue) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a is not root_b:
            self._parent[root_a] = root_b


def _activation_scales(
    function: func.FuncOp, max_abs: dict[SSAValue, float]
) -> dict[SSAValue, float]:
    """The scale of each activation: its group's widest member's, or a softmax result's fixed
    1/(n_levels - 1)."""
    groups = _ScaleGroups()
    fixed: dict[SSAValue, float] = {}
    for op in function.walk():
        if isinstance(op, ta.ReshapeOp | ta.ReluOp | ta.TransposeOp | ta.MaxPoolOp):
            groups.union(op.x, op.result)
        elif isinstance(op, ta.AddOp):
            groups.union(op.lhs, op.rhs)
        elif isinstance(op, ta.SoftmaxOp):
            fixed[op.result] = 1.0 / (N_LEVELS - 1)
    widest: dict[SSAValue, float] = {}
    for value, amplitude in max_abs.items():
        root = groups.find(value)
        widest[root] = max(widest.get(root, 0.0), amplitude)
    group_scale = {root: symmetric_scale(amplitude) for root, amplitude in widest.items()}
    for value, scale in fixed.items():
        group_scale[groups.find(value)] = scale
    return {value: group_scale[groups.find(value)] for value in max_abs}


# ---------------------------------------------------------------------------------------------
# Rebuilding the function in int8
# ---------------------------------------------------------------------------------------------


def _label(op: Operation) -> str:
    """How diagnostics name an op: its name and its result's SSA name, if it has one."""
    name = op.results[0].name_hint if op.results else None
    return f"'{op.name}'" + (f" (%{name})" if name else "")


def _requant_attr(requant: ref.Requant) -> ta.RequantAttr:
    return ta.RequantAttr(requant.mul, requant.add, requant.shift)


def _xmax(value: SSAValue) -> int:
    """The largest magnitude an 8-bit value of this type holds (128 signed, 255 unsigned)."""
    assert isinstance(value.type, TensorType)
    return 255 if value.type.get_element_type() == ta.ui8 else 128


def _keep_onnx_node(float_op: Operation, emitted: list[Operation]) -> None:
    """The ONNX node a float op came from names the int8 ops that replace it (reports)."""
    node = float_op.attributes.get(ONNX_NODE_ATTR)
    if node is not None:
        for op in emitted:
            if op.dialect_name() == "tinyattn":
                op.attributes[ONNX_NODE_ATTR] = node


class _Quantizer:
    """Rebuilds one float function op by op with int8 values and integer parameters."""

    def __init__(
        self, function: func.FuncOp, traces: list[dict[SSAValue, np.ndarray]], per_channel: bool
    ):
        self.function = function
        self.traces = traces
        max_abs = {v: max(float(np.abs(t[v]).max()) for t in traces) for v in traces[0]}
        self.scale = _activation_scales(function, max_abs)
        self.per_channel = per_channel
        self.values: dict[SSAValue, SSAValue] = {}
        self.block = Block(
            arg_types=[TensorType(ta.i8, arg.type.get_shape()) for arg in function.args]
        )
        self.builder = Builder(InsertPoint.at_end(self.block))

    def run(self) -> func.FuncOp:
        for old, new in zip(self.function.args, self.block.args, strict=True):
            new.name_hint = old.name_hint
            self.values[old] = new
        for op in self.function.body.block.ops:
            if isinstance(op, arith.ConstantOp):
                continue  # weights are quantised where they are used
            if isinstance(op, func.ReturnOp):
                results = [self._activation(op, v, f"#{i}") for i, v in enumerate(op.arguments)]
                self.builder.insert(func.ReturnOp(*results))
                continue
            emitted = len(self.block.ops)
            result = _HANDLERS[type(op)](self, op)
            result.name_hint = op.results[0].name_hint
            self.values[op.results[0]] = result
            _keep_onnx_node(op, list(self.block.ops)[emitted:])
        returned = self.function.body.block.last_op
        assert isinstance(returned, func.ReturnOp)
        outputs = [self.values[value] for value in returned.arguments]
        quantized = func.FuncOp(
            self.function.sym_name.data,
            (self.block.arg_types, [value.type for value in outputs]),
            Region(self.block),
            arg_attrs=self.function.arg_attrs,
            res_attrs=self.function.res_attrs,
        )
        quantized.attributes[INPUT_SCALES] = _scales_attr(
            self.scale[arg] for arg in self.function.args
        )
        quantized.attributes[OUTPUT_SCALES] = _scales_attr(
            self.scale[value] for value in returned.arguments
        )
        return quantized

    # Operands -------------------------------------------------------------------------------

    def _activation(self, op: Operation, value: SSAValue, what: str) -> SSAValue:
        if value not in self.values:
            raise QuantizeError(
                f"{_label(op)}: operand {what} is not an activation (a constant can only be "
                "a weight, a bias or a norm parameter)"
            )
        return self.values[value]

    def _constant(self, op: Operation, value: SSAValue, what: str) -> np.ndarray:
        array = _constant_array(value)
        if array is None:
            raise QuantizeError(f"{_label(op)}: operand '{what}' must be a constant")
        return array

    def _emit_constant(self, array: np.ndarray, element: Attribute, like: SSAValue) -> SSAValue:
        constant = self.builder.insert(arith.ConstantOp(from_numpy(array, element)))
        constant.result.name_hint = like.name_hint
        return constant.result

    def _weight(self, op: Operation, value: SSAValue, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric int8 weights and their scales, one per output channel (the last axis),
        equal when quantising per tensor."""
        w = self._constant(op, value, what)
        axes = tuple(range(w.ndim - 1)) if self.per_channel else None
        max_abs = np.broadcast_to(np.abs(w).max(axis=axes), w.shape[-1:])
        scales = np.where(max_abs > 0, max_abs / QMAX, 1.0)
        return quantize_array(w, scales), scales

    def _bias(self, op: Operation, value: SSAValue, what: str, scale: np.ndarray) -> np.ndarray:
        return quantize_array(self._constant(op, value, what), scale, np.int32)

    def _accumulator_bias(
        self, op: Operation, value: SSAValue | None, scale: np.ndarray, bound: np.ndarray
    ) -> tuple[SSAValue | None, np.ndarray]:
        """The int32 bias (at the accumulator's `scale`) emitted, if the op has one, and the
        accumulator's magnitude `bound` grown by it."""
        if value is None:
            return None, bound
        b = self._bias(op, value, "bias", scale)
        return self._emit_constant(b, i32, value), bound + np.abs(b.astype(np.int64))

    def _emit(self, op: Operation) -> SSAValue:
        self.builder.insert(op)
        return op.results[0]

    def _int8(self, value: SSAValue) -> TensorType:
        assert isinstance(value.type, TensorType)
        return TensorType(ta.i8, value.type.get_shape())

    # Ops ------------------------------------------------------------------------------------

    def linear(self, op: ta.LinearOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        w, w_scale = self._weight(op, op.weight, "weight")
        acc_scale = self.scale[op.x] * w_scale
        bound = _xmax(x) * np.abs(w.astype(np.int64)).sum(axis=0)
        bias, bound = self._accumulator_bias(op, op.bias, acc_scale, bound)
        requant = _requant(acc_scale / self.scale[op.result], bound)
        weight = self._emit_constant(w, ta.i8, op.weight)
        return self._emit(
            ta.LinearOp(
                x,
                weight,
                bias,
                result_type=self._int8(op.result),
                requant=_requant_attr(requant),
            )
        )

    def add(self, op: ta.AddOp) -> SSAValue:
        lhs, rhs = self._activation(op, op.lhs, "'lhs'"), self._activation(op, op.rhs, "'rhs'")
        ratio = self.scale[op.lhs] / self.scale[op.result]  # lhs and rhs share a scale
        requant = _requant(ratio, _xmax(lhs) + _xmax(rhs))
        return self._emit(
            ta.AddOp(lhs, rhs, result_type=self._int8(op.result), requant=_requant_attr(requant))
        )

    def relu(self, op: ta.ReluOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        if _xmax(x) != 128:
            raise QuantizeError(f"{_label(op)}: the integer relu needs a signed operand")
        return self._emit(ta.ReluOp(x))

    def reshape(self, op: ta.ReshapeOp) -> SSAValue:
        return self._emit(
            ta.ReshapeOp(self._activation(op, op.x, "'x'"), op.result.type.get_shape())
        )

    def transpose(self, op: ta.TransposeOp) -> SSAValue:
        return self._emit(ta.TransposeOp(self._activation(op, op.x, "'x'"), op.permutation()))

    def maxpool(self, op: ta.MaxPoolOp) -> SSAValue:
        kernel, strides, pads = op.window()
        x = self._activation(op, op.x, "'x'")
        return self._emit(ta.MaxPoolOp(x, kernel=kernel, strides=strides, pads=pads))

    def conv(self, op: ta.ConvOp) -> SSAValue:
        """Weights symmetric int8 per output channel (axis 0) or per tensor, the convolution
        narrowing its int32 sums per channel (or per tensor)."""
        x = self._activation(op, op.x, "'x'")
        w = self._constant(op, op.weight, "weight")
        axes = tuple(range(1, w.ndim))
        max_abs = np.abs(w).max(axis=axes) if self.per_channel else np.full(len(w), np.abs(w).max())
        w_scale = np.where(max_abs > 0, max_abs / QMAX, 1.0)
        spread = (-1, *[1] * (w.ndim - 1))
        w_q = quantize_array(w, w_scale.reshape(spread))
        acc_scale = self.scale[op.x] * w_scale
        bound = _xmax(x) * np.abs(w_q.astype(np.int64)).sum(axis=axes)
        bias, bound = self._accumulator_bias(op, op.bias, acc_scale, bound)
        requant = _requant(acc_scale / self.scale[op.result], bound)
        _, strides, pads = op.window()
        return self._emit(
            ta.ConvOp(
                x, self._emit_constant(w_q, ta.i8, op.weight), bias, strides=strides, pads=pads,
                groups=op.groups.value.data, result_type=self._int8(op.result),
                requant=_requant_attr(requant),
            )
        )  # fmt: skip

    def muladd(self, op: ta.MulAddOp) -> SSAValue:
        """`x * m + a` with constant m, a: m symmetric int8 per tensor, a int32 at the product's
        scale, then a requantization."""
        x = self._activation(op, op.x, "'x'")
        m, a = self._constant(op, op.m, "m"), self._constant(op, op.a, "a")
        m_scale = float(np.abs(m).max()) / QMAX or 1.0
        if np.all(m == 1.0):
            m_scale = 1.0  # a plain offset keeps x's scale: m_q = 1
        m_q = quantize_array(m, m_scale)
        acc_scale = self.scale[op.x] * m_scale
        a_q = quantize_array(a, acc_scale, np.int32)
        widest_m, widest_a = (int(np.abs(v.astype(np.int64)).max()) for v in (m_q, a_q))
        bound = _xmax(x) * widest_m + widest_a
        requant = _requant(acc_scale / self.scale[op.result], bound)
        return self._emit(
            ta.MulAddOp(
                x, self._emit_constant(m_q.astype(np.int32), i32, op.m),
                self._emit_constant(a_q, i32, op.a), result_type=self._int8(op.result),
                requant=_requant_attr(requant),
            )
        )  # fmt: skip

    def gelu(self, op: ta.GeluOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        igelu = igelu_for(self.scale[op.x])
        if _xmax(x) * igelu.one > ta.INT32_MAX:
            raise QuantizeError(f"{_label(op)}: the input range is too narrow for the integer gelu")
        levels = np.arange(256) - (0 if _xmax(x) == 255 else 128)
        bound = int(np.abs(igelu(levels)).max())
        ratio = self.scale[op.x] / igelu.one / self.scale[op.result]
        return self._emit(
            ta.GeluOp(
                x,
                igelu=ta.IGeluAttr(igelu.b, igelu.one),
                requant=_requant_attr(_requant(ratio, bound)),
                result_type=self._int8(op.result),
            )
        )

    def layernorm(self, op: ta.LayerNormOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        width = op.x.type.get_shape()[-1]
        epsilon = op.epsilon.value.data
        norm = ilayernorm_for(self.scale[op.x], width, epsilon)
        gamma, beta, requant = layernorm_affine(
            self._constant(op, op.gamma, "gamma"),
            self._constant(op, op.beta, "beta"),
            norm,
            self.scale[op.result],
        )
        return self._emit(
            ta.LayerNormOp(
                x,
                self._emit_constant(gamma, i32, op.gamma),
                self._emit_constant(beta, i32, op.beta),
                epsilon=epsilon,
                ilayernorm=ta.ILayerNormAttr(norm.shift, norm.eps),
                requant=_requant_attr(requant),
                result_type=self._int8(op.result),
            )
        )

    def mean(self, op: ta.MeanOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        axis = op.axis.value.data
        shape = op.x.type.get_shape()
        count = shape[axis]
        ratio = self.scale[op.x] / (count * self.scale[op.result])
        requant = _requant(ratio, count * _xmax(x))
        keepdims = len(op.result.type.get_shape()) == len(shape)
        return self._emit(
            ta.MeanOp(
                x,
                axis=axis,
                keepdims=keepdims,
                requant=_requant_attr(requant),
                element_type=ta.i8,
            )
        )

    def softmax(self, op: ta.SoftmaxOp) -> SSAValue:
        x = self._activation(op, op.x, "'x'")
        if _xmax(x) != 128:
            raise QuantizeError(f"{_label(op)}: the integer softmax needs a signed operand")
        isoftmax = isoftmax_for(self.scale[op.x])
        if not _isoftmax_fits(isoftmax, op.x.type.get_shape()[-1]):
            raise QuantizeError(f"{_label(op)}: the input scale is too fine for 32-bit sums")
        return self._emit(ta.SoftmaxOp(x, isoftmax=_isoftmax_attr(isoftmax)))

    def attention(self, op: ta.MHSAOp | ta.FusedMHSAOp) -> SSAValue:
        """Per-head projections, scores, integer softmax, context and output projection, each
        requantized to the scale calibration measured for it."""
        x = self._activation(op, op.x, "'x'")
        s_x, x_max = self.scale[op.x], _xmax(x)
        seq, embed, head_dim, _ = op.dims()
        operands: list[SSAValue] = [x]
        props: dict[str, Attribute] = {}

        stages = [_attention_stages(op, trace[op.x]) for trace in self.traces]

        def stage_scale(stage: str) -> float:
            return symmetric_scale(max(float(np.abs(values[stage]).max()) for values in stages))

        def projection(weight: SSAValue, bias: SSAValue, stage: str) -> float:
            w, w_scale = self._weight(op, weight, f"w{stage}")
            b = self._bias(op, bias, f"b{stage}", s_x * w_scale)
            bound = (x_max * np.abs(w.astype(np.int64)).sum(axis=1) + np.abs(b)).max(axis=0)
            scale = stage_scale(stage)
            props[f"{stage}_requant"] = _requant_attr(_requant(s_x * w_scale / scale, bound))
            operands.extend(
                [self._emit_constant(w, ta.i8, weight), self._emit_constant(b, i32, bias)]
            )
            return scale

        if isinstance(op, ta.MHSAOp):
            assert op.scale is not None
            s_q, s_k = projection(op.wq, op.bq, "q"), projection(op.wk, op.bk, "k")
            score_scale, score_bound = s_q * s_k * op.scale.value.data, head_dim * 128 * 128
        else:
            s_qk = projection(op.wqk, op.bqk, "qk")
            score_scale, score_bound = s_qk * s_x, embed * 128 * x_max
        s_v = projection(op.wv, op.bv, "v")
        s_score = stage_scale("score")
        if op.normalization.data == ta.SOFTMAX:
            isoftmax, s_score = _isoftmax_fitting(s_score, seq)
            props["isoftmax"] = _isoftmax_attr(isoftmax)
            s_probs = _probability_scale(isoftmax, s_score, stages)
            context_bound = (isoftmax.n_levels - 1) * 128  # a row of probabilities sums to <= it
        else:
            props["normalization"] = op.normalization
            s_probs, context_bound = s_score, seq * 128 * 128
        props["score_requant"] = _requant_attr(_requant(score_scale / s_score, score_bound))
        s_context = stage_scale("context")
        props["context_requant"] = _requant_attr(
            _requant(s_probs * s_v / s_context, context_bound)
        )
        wo, wo_scale = self._weight(op, op.wo, "wo")
        bo = self._bias(op, op.bo, "bo", s_context * wo_scale)
        bound = 128 * np.abs(wo.astype(np.int64)).sum(axis=(0, 1)) + np.abs(bo)
        props["out_requant"] = _requant_attr(
            _requant(s_context * wo_scale / self.scale[op.result], bound)
        )
        operands.extend(
            [self._emit_constant(wo, ta.i8, op.wo), self._emit_constant(bo, i32, op.bo)]
        )
        pairs = [tuple(operands[i : i + 2]) for i in range(1, len(operands), 2)]
        common = {"num_heads": op.heads, "result_type": self._int8(op.result), "properties": props}
        if isinstance(op, ta.MHSAOp):
            return self._emit(ta.MHSAOp(x, *pairs, **common))
        return self._emit(ta.FusedMHSAOp(x, *pairs, **common))


def _probability_scale(isoftmax: ref.ISoftmax, s_score: float, stages: list[dict]) -> float:
    """The scale of the integer softmax's probabilities: 1 over what a row sums to on average
    on the calibration set. The nominal 1/(n_levels - 1) would be right if the integer softmax
    did not floor each probability; flooring loses up to one unit per key."""
    row_sums = [
        isoftmax(quantize_array(values["score"], s_score)).sum(axis=-1, dtype=np.int64).mean()
        for values in stages
    ]
    return 1.0 / float(np.mean(row_sums))


def _scales_attr(scales) -> ArrayAttr:
    return ArrayAttr([FloatAttr(float(scale), f64) for scale in scales])


def _isoftmax_attr(isoftmax: ref.ISoftmax) -> ta.ISoftmaxAttr:
    return ta.ISoftmaxAttr(
        isoftmax.coeff_a, isoftmax.coeff_b, isoftmax.coeff_c, isoftmax.log2, isoftmax.n_levels
    )


_HANDLERS: dict[type[Operation], Callable[[_Quantizer, Operation], SSAValue]] = {
    ta.MHSAOp: _Quantizer.attention,
    ta.FusedMHSAOp: _Quantizer.attention,
    ta.LinearOp: _Quantizer.linear,
    ta.AddOp: _Quantizer.add,
    ta.ReluOp: _Quantizer.relu,
    ta.ReshapeOp: _Quantizer.reshape,
    ta.GeluOp: _Quantizer.gelu,
    ta.LayerNormOp: _Quantizer.layernorm,
    ta.MeanOp: _Quantizer.mean,
    ta.SoftmaxOp: _Quantizer.softmax,
    ta.TransposeOp: _Quantizer.transpose,
    ta.MaxPoolOp: _Quantizer.maxpool,
    ta.ConvOp: _Quantizer.conv,
    ta.MulAddOp: _Quantizer.muladd,
}


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------

Sample = Sequence[np.ndarray]


def _check_samples(function: func.FuncOp, samples: Sequence[Sample]) -> None:
    if not samples:
        raise QuantizeError("the calibration set is empty")
    names = input_names(function)
    for index, sample in enumerate(samples):
        if len(sample) != len(names):
            raise QuantizeError(
                f"calibration sample {index} has {len(sample)} inputs, @{function.sym_name.data} "
                f"takes {len(names)}"
            )
        for name, array, arg in zip(names, sample, function.args, strict=True):
            shape = tuple(arg.type.get_shape())
            if np.shape(array) != shape:
                raise QuantizeError(
                    f"calibration input '{name}' has shape {list(np.shape(array))}, "
                    f"expected {list(shape)}"
                )
            if not np.isfinite(array).all():
                raise QuantizeError(f"calibration input '{name}' holds non-finite values")


def _check_float(function: func.FuncOp) -> None:
    """Everything in the function is something the quantiser maps: f32 tinyattn ops, tensor
    constants and the return."""
    for name, arg in zip(input_names(function), function.args, strict=True):
        if not isinstance(arg.type, TensorType) or arg.type.get_element_type() != f32:
            raise QuantizeError(f"input '{name}' of type {arg.type} is not an f32 tensor")
    for op in function.body.block.ops:
        if isinstance(op, func.ReturnOp) or (
            isinstance(op, arith.ConstantOp) and _constant_array(op.result) is not None
        ):
            continue
        if type(op) not in _HANDLERS:
            raise QuantizeError(
                f"{_label(op)}: cannot quantise this op (only f32 tinyattn ops, tensor "
                "constants and func.return)"
            )
        element = op.results[0].type.get_element_type()
        if element != f32:
            raise QuantizeError(
                f"{_label(op)}: already integer ({element}); quantise a float module"
            )


def quantize(
    module: ModuleOp,
    samples: Sequence[Sample],
    *,
    per_channel: bool = True,
    entry: str | None = None,
) -> ModuleOp:
    """The int8 form of `module`'s function `entry` (else `main` or its only public function),
    calibrated on `samples` (each one array per argument, in the argument's shape). Weights are
    quantised per output channel, or per tensor with `per_channel=False`. Raises
    QuantizeError."""
    function = _entry(module, entry)
    _check_float(function)
    _check_samples(function, samples)
    quantized = _Quantizer(function, _trace(module, function, samples), per_channel).run()
    result = ModuleOp([quantized])
    try:
        result.verify()
    except VerifyException as error:
        message = " ".join(str(error).split())
        raise QuantizeError(
            f"internal error: the quantised module does not verify: {message}"
        ) from None
    return result


def recorded_scales(function: func.FuncOp, name: str) -> list[float]:
    """The scales a quantised function records in its attribute `name` (INPUT_SCALES or
    OUTPUT_SCALES), one per argument or result."""
    attr = function.attributes.get(name)
    if not isinstance(attr, ArrayAttr):
        raise QuantizeError(f"@{function.sym_name.data} has no {name}; it is not quantised")
    return [scale.value.data for scale in attr.data]


def quantize_inputs(function: func.FuncOp, inputs: Sample) -> list[np.ndarray]:
    """Float inputs as the 8-bit arguments of a quantised function: `clip(rint(x / scale))`."""
    return [
        quantize_array(x, scale, numpy_dtype(arg.type.get_element_type()))
        for x, scale, arg in zip(
            inputs, recorded_scales(function, INPUT_SCALES), function.args, strict=True
        )
    ]


def dequantize_outputs(function: func.FuncOp, outputs: Sample) -> list[np.ndarray]:
    """A quantised function's 8-bit results as float32: `y * scale`."""
    scales = recorded_scales(function, OUTPUT_SCALES)
    return [
        (np.asarray(y, np.float64) * scale).astype(np.float32)
        for y, scale in zip(outputs, scales, strict=True)
    ]


@dataclass(frozen=True)
class OutputError:
    """How far one dequantised int8 output is from the float model's over a calibration set."""

    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    float_max_abs: float  # the float output's largest |value|: what `relative` refers to
    argmax_agreement: float | None  # share of samples with the same top class (classifiers)

    @property
    def relative(self) -> float:
        return self.max_abs / self.float_max_abs if self.float_max_abs else self.max_abs


def accuracy_loss(
    float_module: ModuleOp, quantized: ModuleOp, samples: Sequence[Sample], entry: str | None = None
) -> list[OutputError]:
    """The accuracy loss of `quantized` against `float_module` on `samples`, per output. An
    output with a single row of at least two values per sample counts as classifier logits."""
    float_function = _entry(float_module, entry)
    int_function = _entry(quantized, entry)
    expected, got = [], []
    for sample in samples:
        expected.append(evaluate(float_module, sample, float_function.sym_name.data))
        outputs = evaluate(
            quantized, quantize_inputs(int_function, sample), int_function.sym_name.data
        )
        got.append(dequantize_outputs(int_function, outputs))
    errors = []
    for index in range(len(expected[0])):
        want = np.stack([np.asarray(e[index], np.float64) for e in expected])
        have = np.stack([np.asarray(g[index], np.float64) for g in got])
        diff = np.abs(have - want)
        shape = want.shape[1:]
        agreement = None
        if shape and shape[-1] >= 2 and math.prod(shape[:-1]) == 1:
            rows_want, rows_have = want.reshape(len(samples), -1), have.reshape(len(samples), -1)
            agreement = float(np.mean(rows_want.argmax(-1) == rows_have.argmax(-1)))
        errors.append(
            OutputError(
                shape, float(diff.max()), float(diff.mean()), float(np.abs(want).max()), agreement
            )
        )
    return errors


def load_calibration(path: str | os.PathLike, function: func.FuncOp) -> list[list[np.ndarray]]:
    """Calibration samples for `function` from an .npz archive holding, for each argument (by
    its name, see `input_names`), an array of shape [N, *argument shape]: N samples. Raises
    QuantizeError, or OSError if the file cannot be read."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise QuantizeError("not an .npz archive") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise QuantizeError("not an .npz archive but a single .npy array")
    with archive:
        arrays = []
        for name, arg in zip(input_names(function), function.args, strict=True):
            if name not in archive.files:
                have = ", ".join(archive.files) or "nothing"
                raise QuantizeError(
                    f"no calibration data for input '{name}' (the archive has {have})"
                )
            try:
                array = archive[name]
            except (ValueError, EOFError, zipfile.BadZipFile) as error:  # e.g. object arrays
                reason = f"calibration input '{name}' cannot be read ({error})"
                raise QuantizeError(reason) from None
            shape = list(arg.type.get_shape())
            if array.ndim != len(shape) + 1 or list(array.shape[1:]) != shape:
                raise QuantizeError(
                    f"calibration input '{name}' has shape {list(array.shape)}, expected "
                    f"[N, {', '.join(map(str, shape))}]"
                )
            if array.dtype.kind not in "fiu":
                raise QuantizeError(f"calibration input '{name}' is not numeric ({array.dtype})")
            if not np.isfinite(array).all():
                raise QuantizeError(f"calibration input '{name}' holds NaN or infinite values")
            arrays.append(array.astype(np.float32))
    counts = {len(array) for array in arrays}
    if len(counts) > 1:
        raise QuantizeError(f"calibration inputs have different sample counts {sorted(counts)}")
    return [list(sample) for sample in zip(*arrays, strict=True)]
