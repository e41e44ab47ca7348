"""Import QuantLib/Deeploy integerised graphs into the int8 form of the tinyattn ops.

Such a graph types every tensor float32 but holds exact integers in it, and computes with
MatMul, Gemm, Add, RequantShift, iSoftmax and QuantLib's other integer ops (iHardswish,
TrueIntegerDiv, iNoNorm, iRMSNorm, iLayerNorm, iGELU, IntegerMean, ITAMax), convolutions and data
movement, with QuantLib's integer semantics (int32 accumulators, RequantShift rounding half up,
I-BERT's softmax; docs/integer-semantics.md). `is_integer_model` says which graphs are imported
this way.

Element types follow the producers: RequantShift's `signed` attribute gives i8 or ui8, iSoftmax
and ITAMax ui8, MatMul, Gemm, Add, Conv and the elementwise QuantLib ops i32, the QuantLib norms
i8, data movement its input's. The graph does not store the
signedness of its inputs; like Deeploy, `IntegerGraph` takes the smallest type holding sample
values, unsigned first: ui8, i8, else i32 (tinyattn has no 16-bit type). Without samples every
input is i8, the type of a signed RequantShift's result.

A QuantLib node that is malformed in itself (a `div` that is no power of two, non-integer
weights, ...) fits no pattern wherever it is, so it is reported at once as an OnnxImportError
rather than as one pattern's mismatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.dialects.builtin import TensorType, i32
from xdsl.ir import Attribute, SSAValue

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import numpy_dtype
from tinyattn.frontend.arrays import Arrays, in_order
from tinyattn.frontend.onnx_graph import (
    Mismatch,
    Node,
    OnnxGraph,
    OnnxImportError,
    normalize_axis,
)
from tinyattn.frontend.patterns import (
    Constant,
    Emitter,
    Linear,
    Match,
    Pattern,
    activation,
    fit_to_imported,
    match_conv,
    match_linear,
    matmul_operands,
    mean_of,
    residual_operands,
    single,
    squeeze_batch,
    summary,
)
from tinyattn.semantics import reference as ref

DEFAULT_INPUT_TYPE = ta.i8

# Ops whose result is int32 (an accumulator, or QuantLib's elementwise ops), and ops whose result
# keeps their input's element type (data movement, max pooling, relu).
_INT32_RESULTS = (
    "MatMul",
    "Gemm",
    "Add",
    "ReduceMean",
    "IntegerMean",
    "iHardswish",
    "TrueIntegerDiv",
    "Conv",
    "iGELU",
)
# QuantLib's norms, which narrow to signed 8 bits themselves.
_INT8_RESULTS = ("iNoNorm", "iRMSNorm", "iLayerNorm")
_DATA_MOVEMENT = (
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "MaxPool",
    "Relu",
    "Concat",
    "Slice",
    "Gather",
)


# Graph input and output element types an integer graph may declare, and what they are in the IR.
DECLARED_INTEGER_TYPES = {
    onnx.TensorProto.INT8: ta.i8,
    onnx.TensorProto.UINT8: ta.ui8,
    onnx.TensorProto.INT32: i32,
}


def is_integer_model(model: onnx.ModelProto, sample_inputs: Arrays | None = None) -> bool:
    """Whether `model` is imported as an integer graph: it has QuantLib's RequantShift or
    iSoftmax, or declares an int8, uint8 or int32 graph input or output, or its sample inputs
    are integer arrays and its weights whole numbers (how Deeploy's test vectors of integer
    graphs come, float32 tensors in the graph notwithstanding)."""
    if any(Node(node, index).is_quantlib for index, node in enumerate(model.graph.node)):
        return True
    if any(
        info.type.tensor_type.elem_type in DECLARED_INTEGER_TYPES
        for info in (*model.graph.input, *model.graph.output)
    ):
        return True
    if sample_inputs is None:
        return False
    samples = sample_inputs.values() if isinstance(sample_inputs, Mapping) else sample_inputs
    arrays = [np.asarray(sample) for sample in samples]
    if not arrays or any(array.dtype.kind not in "iu" for array in arrays):
        return False
    # Integer samples of a float model (8-bit pixels, say) leave it float: its weights tell.
    weights = (numpy_helper.to_array(init) for init in model.graph.initializer)
    return all(
        w.dtype.kind != "f" or np.array_equal(w, np.round(w)) for w in weights
    )


def malformed(node: Node, reason: str) -> OnnxImportError:
    return OnnxImportError(f"{node.label()}: {reason}")


# ---------------------------------------------------------------------------------------------
# Graph inputs and element types
# ---------------------------------------------------------------------------------------------


def _sample_type(graph: OnnxGraph, name: str, sample: np.ndarray) -> Attribute:
    """Deeploy's choice for an input holding `sample`: the smallest type, unsigned first."""
    try:
        shape = graph.shape(name)
    except Mismatch as mismatch:
        raise OnnxImportError(f"input '{name}': {mismatch.reason}") from None
    if sample.shape != shape:
        raise OnnxImportError(
            f"input '{name}': the sample has shape {list(sample.shape)}; the model says "
            f"{list(shape)}"
        )
    integral = sample.dtype.kind in "iu" or (
        sample.dtype.kind == "f" and np.all(np.isfinite(sample) & (sample == np.round(sample)))
    )
    if not integral:
        raise OnnxImportError(
            f"input '{name}': the sample holds non-integer values; an integer graph's inputs "
            "hold exact integers"
        )
    low, high = int(sample.min(initial=0)), int(sample.max(initial=0))
    for element_type, (least, most) in ((ta.ui8, (0, 255)), (ta.i8, (-128, 127))):
        if least <= low and high <= most:
            return element_type
    if -(2**31) <= low and high < 2**31:
        return i32
    raise OnnxImportError(f"input '{name}': sample values in [{low}, {high}] exceed 32 bits")


class IntegerGraph(OnnxGraph):
    """An integerised graph, with the element type of each graph input (`input_types`): the
    declared one if it is int8, uint8 or int32, else (float32) the samples' choice."""

    def __init__(self, model: onnx.ModelProto, sample_inputs: Arrays | None = None):
        super().__init__(model)
        samples: list[np.ndarray | None] = [None] * len(self.inputs)
        if sample_inputs is not None:
            try:
                samples = list(in_order(self.inputs, sample_inputs, "takes"))
            except ValueError as error:
                raise OnnxImportError(f"sample inputs: {error}") from None
        self.input_types = {
            name: self._input_type(name, sample)
            for name, sample in zip(self.inputs, samples, strict=True)
        }

    def _input_type(self, name: str, sample: np.ndarray | None) -> Attribute:
        declared = DECLARED_INTEGER_TYPES.get(self.element_type(name))
        if declared is not None:
            return declared
        return DEFAULT_INPUT_TYPE if sample is None else _sample_type(self, name, sample)

    def activation_type(self, name: str) -> Attribute:
        """The element type of activation `name`: i8 or ui8, or the i32 accumulator."""
        while name not in self.input_types:
            node = self.producer_of(name)
            if node.op_type == "RequantShift":
                return _result_type(node)
            if node.op_type in ("iSoftmax", "ITAMax"):
                return ta.ui8
            if node.op_type in _INT8_RESULTS:
                return ta.i8
            if node.op_type in _INT32_RESULTS:
                return i32
            if node.op_type not in _DATA_MOVEMENT:
                raise Mismatch(f"the element type of '{name}' ({node.label()}) is unknown")
            name = node.inputs[0]
        return self.input_types[name]


# ---------------------------------------------------------------------------------------------
# QuantLib attributes and constants
# ---------------------------------------------------------------------------------------------


def _number(node: Node, *names: str) -> float:
    """The value of a QuantLib attribute (a one-element float tensor); `names` are the
    spellings it goes by."""
    name = next((name for name in names if node.attr(name) is not None), None)
    if name is None:
        raise malformed(node, f"attribute '{names[0]}' is missing")
    value = node.attr(name)
    array = numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value
    array = np.asarray(array)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise malformed(node, f"attribute '{name}' is not a number")
    return float(array.reshape(()))


def _integer(node: Node, *names: str) -> int:
    """The integer value of a QuantLib attribute; `names` are the spellings it goes by."""
    value = _number(node, *names)
    if not value.is_integer():
        raise malformed(node, f"attribute '{names[0]}'={value:g} is not an integer")
    return int(value)


def _power_of_two(node: Node, name: str) -> int:
    """log2 of attribute `name`, which must be a power of two up to 2^31 (a divisor)."""
    value = _number(node, name)
    shift = int(value).bit_length() - 1 if value.is_integer() and value >= 1 else -1
    if not (0 <= shift <= 31 and value == 1 << shift):
        raise malformed(node, f"{name}={value:g} is not a power of two (up to 2^31)")
    return shift


def _result_type(requant_shift: Node) -> Attribute:
    """i8 or ui8, from a RequantShift's `signed` attribute."""
    signed = _integer(requant_shift, "signed")
    if signed not in (0, 1):
        raise malformed(requant_shift, f"attribute 'signed'={signed} is neither 0 nor 1")
    return ta.i8 if signed else ta.ui8


def integer_array(node: Node, array: np.ndarray, what: str, dtype: type[np.integer]):
    """The exact integers a float constant used by `node` holds, as `dtype`."""
    values = np.asarray(array, np.float64)
    if not np.array_equal(values, np.round(values)):
        raise malformed(node, f"{what} holds non-integer values")
    info = np.iinfo(dtype)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise malformed(
            node,
            f"{what} holds values in [{values.min():.0f}, {values.max():.0f}], outside "
            f"{np.dtype(dtype).name} [{info.min}, {info.max}]",
        )
    return values.astype(dtype)


def _broadcast_values(
    graph: OnnxGraph, node: Node, index: int, what: str, channels_first: bool = False
) -> np.ndarray:
    """Constant input `index` of `node` as int32 values that broadcast to its input's imported
    shape (batch dropped) by NumPy's rules; with `channels_first`, a vector of one value per
    channel of axis 1 of a tensor of rank > 2 lies along axis 1 (RequantShift in Deeploy)."""
    what = f"{what} '{node.input(index)}'"
    value = graph.constant(node.input(index))
    if value is None:
        raise malformed(node, f"{what} is not a constant")
    values = integer_array(node, value, what, np.int32)
    if values.size == 1:
        return values.reshape(())
    full = graph.shape(node.inputs[0])
    shape = squeeze_batch(full)
    if channels_first and values.ndim == 1 and len(full) > 2 and values.size == full[1]:
        values = values.reshape(-1, *[1] * (len(full) - 2))
    fitted = fit_to_imported(values, shape)
    if fitted is None:
        shown, target = list(value.shape), list(full)
        raise malformed(node, f"{what} of shape {shown} does not broadcast to the input {target}")
    return fitted


def _last_axis_channels(values: np.ndarray, shape: Sequence[int]) -> list[int] | None:
    """`values` as one per channel of the last axis (or one), if they vary along no other."""
    full = np.broadcast_to(values, shape).reshape(-1, shape[-1] if shape else 1)
    if not (full == full[:1]).all():
        return None
    channels = full[0].tolist()
    return channels[:1] if channels.count(channels[0]) == len(channels) else channels


@dataclass(frozen=True)
class Requantization:
    """What a RequantShift does, as tinyattn states it: a requant attribute and the 8-bit
    result type; `scaling`, where its multipliers or addends vary along another axis than the
    last (per row, per head), is the (mul, add) a `tinyattn.muladd` applies first, the
    attribute then only rounding, shifting and clipping."""

    attr: ta.RequantAttr
    element_type: Attribute
    scaling: tuple[Constant, Constant] | None = None
    # Where the multipliers and addends vary along the first axis only (the channels of a
    # convolution's [C, H, W]): the requantization per channel of that axis.
    first_axis: ta.RequantAttr | None = None

    def apply(self, emitter: Emitter, value: SSAValue) -> SSAValue:
        """`value` narrowed by a `tinyattn.requant` of the attribute (channels: the last axis)."""
        return emitter.op(ta.RequantOp(value, self.attr, self.element_type))

    def narrow(self, emitter: Emitter, value: SSAValue) -> SSAValue:
        """`value` (i32 or 8-bit) requantized by a muladd with the scaling and the attribute."""
        assert self.scaling is not None
        m, a = (emitter.constant(constant) for constant in self.scaling)
        result_type = TensorType(self.element_type, value.type.get_shape())
        return emitter.op(ta.MulAddOp(value, m, a, result_type=result_type, requant=self.attr))


def requant_shift(graph: OnnxGraph, node: Node) -> Requantization:
    """The requantization of a RequantShift node: `div` a power of two, 256 levels."""
    if len(node.inputs) != 3:
        raise malformed(node, f"expected 3 inputs (x, mul, add), got {len(node.inputs)}")
    shift = _power_of_two(node, "div")
    levels = _number(node, "n_levels_out", "n_levels")
    if levels != 256:
        raise malformed(
            node, f"{levels:g} output levels are not supported; tinyattn's 8-bit results have 256"
        )
    element_type = _result_type(node)
    try:
        shape = squeeze_batch(graph.shape(node.inputs[0]))
    except Mismatch as mismatch:
        raise malformed(node, mismatch.reason) from None
    mul, add = (
        _broadcast_values(graph, node, index, what, channels_first=True)
        for index, what in ((1, "mul"), (2, "add"))
    )
    mul_channels, add_channels = (_last_axis_channels(v, shape) for v in (mul, add))
    if mul_channels is not None and add_channels is not None:
        return Requantization(ta.RequantAttr(mul_channels, add_channels, shift), element_type)
    scaling = tuple(Constant(v.reshape(v.shape or (1,)), element_type=i32) for v in (mul, add))
    firsts = [_first_axis_channels(v, shape) for v in (mul, add)]
    first_axis = None if None in firsts else ta.RequantAttr(*firsts, shift)
    return Requantization(ta.RequantAttr([1], [0], shift), element_type, scaling, first_axis)


def _first_axis_channels(values: np.ndarray, shape: Sequence[int]) -> list[int] | None:
    """`values` as one per channel of the first axis (or one), if they vary along no other."""
    if len(shape) < 2:
        return None
    moved = np.moveaxis(np.broadcast_to(values, shape), 0, -1)
    return _last_axis_channels(moved, moved.shape)


def isoftmax_attr(node: Node) -> ta.ISoftmaxAttr:
    """The parameters of an iSoftmax node (I-BERT's integer softmax over the last axis)."""
    coeff_a, coeff_b, coeff_c, log2, levels = (
        _integer(node, name) for name in ("coeffA", "coeffB", "coeffC", "log2", "n_levels")
    )
    if log2 <= 0:
        raise malformed(node, f"log2={log2} must be positive")
    if not 2 <= levels <= 256:
        raise malformed(node, f"n_levels={levels} is not supported; tinyattn's is 2 to 256")
    return ta.ISoftmaxAttr(coeff_a, coeff_b, coeff_c, log2, levels)


def integer_linear(graph: IntegerGraph, linear: Linear) -> Linear:
    """`linear` with int8 weights and an int32 bias; its input must be an 8-bit activation."""
    element_type = graph.activation_type(linear.input)
    if not ta.is_int8(element_type):
        raise Mismatch(
            f"its input '{linear.input}' is an int32 accumulator; only 8-bit activations are "
            "multiplied (a RequantShift narrows it)"
        )
    weight, bias, addend = linear.weight, linear.bias, linear.addend
    first, last = linear.nodes[0], linear.nodes[-1]
    weight = Constant(
        integer_array(first, weight.array, f"weight '{weight.name}'", np.int8), weight.name, ta.i8
    )
    if bias is not None:
        bias = Constant(
            integer_array(last, bias.array, f"bias '{bias.name}'", np.int32), bias.name, i32
        )
    if addend is not None:
        values = integer_array(last, addend.array, f"'{addend.name}' (times beta)", np.int32)
        addend = Constant(values, addend.name, i32)
    if not float(linear.alpha).is_integer():
        raise malformed(last, f"alpha={linear.alpha:g} is not an integer")
    return Linear(linear.input, weight, bias, linear.nodes, linear.alpha, addend)


# ---------------------------------------------------------------------------------------------
# Patterns. An integer op's result is its int32 accumulator, or 8 bits when the RequantShift
# that follows it is folded in; `accumulating` and `requantized` make both patterns of one op.
# ---------------------------------------------------------------------------------------------

Build = Callable[[Emitter, Requantization | None], SSAValue]
Operation = Callable[[IntegerGraph, Node], tuple[tuple[Node, ...], Build]]


def _typed(shape: Sequence[int], requant: Requantization | None) -> dict:
    """The result type and requant keywords of an integer op's constructor."""
    if requant is None:
        return {"result_type": TensorType(i32, shape), "requant": None}
    return {"result_type": TensorType(requant.element_type, shape), "requant": requant.attr}


def linear(graph: IntegerGraph, root: Node) -> tuple[tuple[Node, ...], Build]:
    """MatMul (+ bias Add), or Gemm: an int8 `tinyattn.linear`; Gemm's alpha and a matrix
    addend follow as a `tinyattn.muladd` of its accumulator, which the requant narrows."""
    layer = integer_linear(graph, match_linear(graph, root))

    def build(emitter: Emitter, requant: Requantization | None) -> SSAValue:
        x = emitter.value(layer.input)
        weight = emitter.constant(layer.weight)
        bias = None if layer.bias is None else emitter.constant(layer.bias)
        shape = (*x.type.get_shape()[:-1], layer.weight.array.shape[1])
        if layer.is_plain:
            return emitter.op(ta.LinearOp(x, weight, bias, **_typed(shape, requant)))
        # alpha scales the product only: beta·C (a bias vector or a matrix) is added after it.
        y = emitter.op(ta.LinearOp(x, weight, None, **_typed(shape, None)))
        alpha = emitter.constant(Constant(np.array([layer.alpha], np.int32), element_type=i32))
        if layer.addend is not None:
            addend = emitter.constant(layer.addend)
        else:
            addend = bias if bias is not None else emitter.constant(layer.zero_bias((1,)))
        return emitter.op(ta.MulAddOp(y, alpha, addend, **_typed(shape, requant)))

    return layer.nodes, build


def eight_bit(graph: IntegerGraph, name: str) -> Callable[[Emitter], SSAValue]:
    """Activation `name` as an operand that must be 8-bit: an 8-bit one as it is, a graph input
    declared int32 narrowed by a saturating requant (the identity on its 8-bit values: Deeploy
    types an input by its values, so such an input holds 8-bit ones); an int32 accumulator is
    refused (a RequantShift narrows it)."""
    element_type = graph.activation_type(name)
    if ta.is_int8(element_type):
        return lambda emitter: emitter.value(name)
    if name not in graph.inputs:
        raise Mismatch(
            f"its input '{name}' is an int32 accumulator; only 8-bit activations are "
            "multiplied (a RequantShift narrows it)"
        )
    saturate = ta.RequantAttr([1], [0], 0)
    return lambda emitter: emitter.op(ta.RequantOp(emitter.value(name), saturate, ta.i8))


def matmul(graph: IntegerGraph, root: Node) -> tuple[tuple[Node, ...], Build]:
    """MatMul of two 8-bit activations (batched): an integer `tinyattn.matmul`; with a
    constant operand, a linear layer."""
    if root.op_type != "MatMul":
        raise Mismatch(f"{root.label()} is not a MatMul")
    if any(graph.is_constant(name) for name in root.inputs):
        return linear(graph, root)
    lhs, rhs, shape = matmul_operands(graph, root)
    operands = eight_bit(graph, lhs), eight_bit(graph, rhs)

    def build(emitter: Emitter, requant: Requantization | None) -> SSAValue:
        a, b = (operand(emitter) for operand in operands)
        return emitter.op(ta.MatMulOp(a, b, **_typed(shape, requant)))

    return (root,), build


def add(graph: IntegerGraph, root: Node) -> tuple[tuple[Node, ...], Build]:
    """Add of two activations (a residual connection), summed in int32."""
    if root.op_type != "Add":
        raise Mismatch(f"{root.label()} is not an Add")
    lhs, rhs = residual_operands(graph, root, "as a linear bias")

    def build(emitter: Emitter, requant: Requantization | None) -> SSAValue:
        a, b = emitter.value(lhs), emitter.value(rhs)
        return emitter.op(ta.AddOp(a, b, **_typed(a.type.get_shape(), requant)))

    return (root,), build


def accumulating(operation: Operation) -> Pattern:
    """`operation` with its int32 accumulator as the result."""

    def pattern(graph: IntegerGraph, root: Node) -> Match:
        nodes, build = operation(graph, root)
        return Match(root, nodes, lambda emitter: build(emitter, None))

    pattern.__doc__ = f"{summary(operation)}, its int32 result."
    return pattern


def requantized(operation: Operation, channels_first: bool = False) -> Pattern:
    """A RequantShift of what `operation` computes: one op that narrows its accumulator (or,
    for a per-row or per-head RequantShift, a muladd after it). With `channels_first` the op's
    channels are its result's first axis (a convolution's): it narrows per channel of that
    axis, and a per-column requantization (along the last) is a requant after it."""

    def pattern(graph: IntegerGraph, root: Node) -> Match:
        requant = requant_shift(graph, root)
        nodes, build = operation(graph, graph.producer_of(activation(graph, root)))
        if channels_first and requant.first_axis is not None:
            folded = Requantization(requant.first_axis, requant.element_type)
            return Match(root, (*nodes, root), lambda emitter: build(emitter, folded))
        if requant.scaling is not None:
            return Match(root, (*nodes, root), lambda e: requant.narrow(e, build(e, None)))
        if channels_first and requant.attr.channels() > 1:
            return Match(root, (*nodes, root), lambda e: requant.apply(e, build(e, None)))
        return Match(root, (*nodes, root), lambda emitter: build(emitter, requant))

    pattern.__doc__ = f"RequantShift of {summary(operation)}: the same op, narrowing."
    return pattern


def requant(graph: IntegerGraph, node: Node) -> Match:
    """A RequantShift on its own: `tinyattn.requant` of an int32 tensor or of a widened 8-bit
    one (per tensor, a `table` instead), or per row or head a `tinyattn.muladd`."""
    requantization = requant_shift(graph, node)
    x = activation(graph, node)
    graph.activation_type(x)  # an integer it can narrow, or a Mismatch naming what it is

    def emit(emitter: Emitter) -> SSAValue:
        if requantization.scaling is not None:
            return requantization.narrow(emitter, emitter.value(x))
        return emitter.op(
            ta.RequantOp(emitter.value(x), requantization.attr, requantization.element_type)
        )

    return single(node, emit)


def isoftmax(graph: IntegerGraph, node: Node) -> Match:
    """iSoftmax: the integer form of `tinyattn.softmax`, i8 scores to ui8 probabilities."""
    attr = isoftmax_attr(node)
    x = activation(graph, node)
    element_type = graph.activation_type(x)
    if element_type != ta.i8:
        raise Mismatch(f"its input '{x}' is {element_type}; the integer softmax takes i8 scores")
    return single(node, lambda emitter: emitter.op(ta.SoftmaxOp(emitter.value(x), isoftmax=attr)))


def mean(graph: IntegerGraph, node: Node) -> Match:
    """ReduceMean (or QuantLib's IntegerMean) of 8-bit activations: the int32 mean, rounded
    half up (`tinyattn.mean`)."""
    x = activation(graph, node)
    element_type = graph.activation_type(x)
    if not ta.is_int8(element_type):
        raise Mismatch(f"its input '{x}' is {element_type}; the integer mean takes 8-bit values")
    return mean_of(graph, node, i32)


# ---------------------------------------------------------------------------------------------
# Functions of an 8-bit tensor: tables
# ---------------------------------------------------------------------------------------------

_TABLE_OPS = ("RequantShift", "iHardswish", "TrueIntegerDiv")
Step = Callable[[np.ndarray], np.ndarray]


def _table_step(graph: IntegerGraph, node: Node) -> tuple[Step, Attribute]:
    """What one elementwise op does to its operand's values, and its result's element type."""
    if node.op_type == "RequantShift":
        requantization = requant_shift(graph, node)
        attr = requantization.attr
        if attr.channels() > 1 or requantization.scaling is not None:
            raise Mismatch("a per-channel RequantShift is no function of the value alone")
        requant = ref.Requant(
            tuple(attr.mul.get_values()), tuple(attr.add.get_values()), attr.shift.data
        )
        dtype = numpy_dtype(requantization.element_type)
        return (lambda values: requant(values, dtype).astype(np.int64)), requantization.element_type
    if node.op_type == "iHardswish":
        three, six, one_over_six = (_integer(node, n) for n in ("three", "six", "one_over_six"))
        return (lambda values: ref.ihardswish(values, three, six, one_over_six)), i32
    delta, eta, eps, divisor = (_integer(node, n) for n in ("Delta", "eta", "eps", "y"))
    if divisor * eta + eps == 0:
        raise malformed(node, "y*eta + eps is 0: it divides by zero")
    return (lambda values: ref.true_integer_div(values, delta, eta, eps, divisor)), i32


def _elementwise(graph: IntegerGraph, node: Node) -> bool:
    """Whether `node` computes each element from that element alone (a per-channel, per-row
    RequantShift does not)."""
    if node.op_type != "RequantShift":
        return True
    requantization = requant_shift(graph, node)
    return requantization.attr.channels() == 1 and requantization.scaling is None


def table(graph: IntegerGraph, root: Node) -> Match:
    """QuantLib's elementwise ops of one operand (RequantShift, iHardswish, TrueIntegerDiv) in
    a chain on an 8-bit tensor: their composition is a function of 256 values, imported as one
    `tinyattn.lookup` of the table their exact semantics give (a RequantShift after them folds
    in, so the table is 8-bit)."""
    chain = [root]
    while (producer := graph.producer(activation(graph, chain[0]))) is not None and (
        producer.op_type in _TABLE_OPS
        and not graph.is_output(producer.outputs[0])
        and len(graph.consumers(producer.outputs[0])) == 1
        and _elementwise(graph, producer)
    ):
        chain.insert(0, producer)
    # The longest tail of the chain that starts on an 8-bit tensor.
    while not ta.is_int8(element_type := graph.activation_type(source := chain[0].inputs[0])):
        if len(chain) == 1:
            raise Mismatch(
                f"its input '{source}' is {element_type}; {root.op_type} is supported on 8-bit "
                "tensors (as a table) or right after one"
            )
        chain.pop(0)
    lowest = 0 if element_type == ta.ui8 else -128
    values = np.arange(lowest, lowest + ta.TABLE_LENGTH, dtype=np.int64)
    for node in chain:
        step, result_type = _table_step(graph, node)
        values = step(values)
        if result_type == i32 and (values.min() < -(2**31) or values.max() >= 2**31):
            raise malformed(node, "its results exceed int32")
    constant = Constant(
        values.astype(numpy_dtype(result_type)), f"{root.proto.name or root.outputs[0]}_table",
        result_type,
    )  # fmt: skip

    def emit(emitter: Emitter) -> SSAValue:
        return emitter.op(ta.LookupOp(emitter.value(source), emitter.constant(constant)))

    return Match(root, tuple(chain), emit)


def _int8_activation(graph: IntegerGraph, node: Node) -> str:
    """The activation a QuantLib op of 8-bit activations reads; Mismatch for any other."""
    x = activation(graph, node)
    element_type = graph.activation_type(x)
    if not ta.is_int8(element_type):
        raise Mismatch(
            f"its input '{x}' is {element_type}; {node.op_type} takes 8-bit activations"
        )
    return x


def _norm_shift(node: Node, inputs: Sequence[str]) -> int:
    """log2(D) of a QuantLib norm with these inputs and 256 output levels."""
    if len(node.inputs) != len(inputs):
        names = ", ".join(inputs)
        raise malformed(node, f"expected {len(inputs)} inputs ({names}), got {len(node.inputs)}")
    shift = _power_of_two(node, "D")
    if _number(node, "n_levels") != 256:
        raise malformed(node, "only 256 output levels are supported")
    return shift


def inonorm(graph: IntegerGraph, node: Node) -> Match:
    """QuantLib's iNoNorm (MobileBERT's NoNorm, integerised) of an 8-bit tensor:
    `clip(((x * weight + bias) * mul) >> log2(D))`, weight and bias broadcast to x, the shift
    rounding down: a `tinyattn.muladd` narrowed by `requant<mul, -2^(s-1), s>` (whose
    rounding half cancels)."""
    x = _int8_activation(graph, node)
    shift = _norm_shift(node, ("x", "weight", "bias"))
    multiplier = _integer(node, "mul")
    weight, bias = (_broadcast_values(graph, node, i, w) for i, w in ((1, "weight"), (2, "bias")))
    narrow = weight.min(initial=0) >= -128 and weight.max(initial=0) <= 127
    constants = (
        Constant(weight.reshape(weight.shape or (1,)).astype(np.int8 if narrow else np.int32),
                 node.input(1), ta.i8 if narrow else i32),
        Constant(bias.reshape(bias.shape or (1,)), node.input(2), i32),
    )  # fmt: skip
    half = 1 << (shift - 1) if shift else 0
    attr = ta.RequantAttr([multiplier], [-half], shift)

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        m, a = (emitter.constant(constant) for constant in constants)
        result_type = TensorType(ta.i8, value.type.get_shape())
        return emitter.op(ta.MulAddOp(value, m, a, result_type=result_type, requant=attr))

    return single(node, emit)


# QuantLib's norms clip their result to signed 8 bits: a requant that only clips.
_CLIP_TO_INT8 = ta.RequantAttr([1], [0], 0)


def _norm_vector(graph: IntegerGraph, node: Node, index: int, what: str, width: int) -> Constant:
    """Constant input `index` of a QuantLib norm: int32 values over the last axis, [width]."""
    values = _broadcast_values(graph, node, index, what)
    if any(dim != 1 for dim in values.shape[:-1]):
        raise malformed(node, f"{what} '{node.input(index)}' is not a vector over the last axis")
    vector = _last_axis_channels(values.reshape(-1), (width,))
    assert vector is not None  # a vector varies along no other axis
    values = np.broadcast_to(np.asarray(vector, np.int32), (width,))
    return Constant(values, node.input(index), i32)


def irmsnorm(graph: IntegerGraph, node: Node) -> Match:
    """QuantLib's iRMSNorm of an 8-bit tensor over its last axis, with a weight vector:
    `tinyattn.rmsnorm` (Deeploy's kernel), clipped to 8 bits."""
    x = _int8_activation(graph, node)
    shift = _norm_shift(node, ("x", "weight"))
    weight = _norm_vector(graph, node, 1, "weight", graph.shape(x)[-1])

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        result_type = TensorType(ta.i8, value.type.get_shape())
        return emitter.op(
            ta.RMSNormOp(
                value, emitter.constant(weight), shift=shift, result_type=result_type,
                requant=_CLIP_TO_INT8,
            )
        )  # fmt: skip

    return single(node, emit)


def ilayernorm(graph: IntegerGraph, node: Node) -> Match:
    """QuantLib's iLayerNorm of an 8-bit tensor over its last axis, with weight and bias
    vectors: `tinyattn.layernorm` with `#tinyattn.quantlib_layernorm` (Deeploy's kernel, the
    product in 64 bits), clipped to 8 bits."""
    x = _int8_activation(graph, node)
    shift = _norm_shift(node, ("x", "weight", "bias"))
    width = graph.shape(x)[-1]
    weight, bias = (_norm_vector(graph, node, i, w, width) for i, w in ((1, "weight"), (2, "bias")))
    norm = ta.QuantLibLayerNormAttr(shift)

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        result_type = TensorType(ta.i8, value.type.get_shape())
        return emitter.op(
            ta.LayerNormOp(
                value, emitter.constant(weight), emitter.constant(bias), epsilon=0.0,
                ilayernorm=norm, requant=_CLIP_TO_INT8, result_type=result_type,
            )
        )  # fmt: skip

    return single(node, emit)


def conv(graph: IntegerGraph, root: Node) -> tuple[tuple[Node, ...], Build]:
    """Conv of an 8-bit activation with int8 weights and an int32 bias: an integer
    `tinyattn.conv`, narrowed per tensor or per output channel by a RequantShift after it."""
    if root.op_type != "Conv":
        raise Mismatch(f"{root.label()} is not a Conv")
    layer = match_conv(graph, root)
    operand = eight_bit(graph, layer.input)
    name = layer.weight.name
    values = integer_array(root, layer.weight.array, f"weight '{name}'", np.int8)
    weight = Constant(values, name, ta.i8)
    bias = None
    if layer.bias is not None:
        values = integer_array(root, layer.bias.array, f"bias '{layer.bias.name}'", np.int32)
        bias = Constant(values, layer.bias.name, i32)
    shape = squeeze_batch(graph.shape(root.outputs[0]))

    def build(emitter: Emitter, requant: Requantization | None) -> SSAValue:
        window = layer.window
        return emitter.op(
            ta.ConvOp(
                operand(emitter), emitter.constant(weight),
                None if bias is None else emitter.constant(bias),
                strides=window.strides, pads=window.pads, groups=layer.groups,
                **_typed(shape, requant),
            )
        )  # fmt: skip

    return (root,), build


def igelu(graph: IntegerGraph, root: Node) -> tuple[tuple[Node, ...], Build]:
    """QuantLib's iGELU (I-BERT's integer GELU, attributes `b` and `one`) of an 8-bit tensor:
    an integer `tinyattn.gelu`."""
    if root.op_type != "iGELU":
        raise Mismatch(f"{root.label()} is not an iGELU")
    x = _int8_activation(graph, root)
    b, one = _integer(root, "b", "b_i"), _integer(root, "one", "one_i")
    if b >= 0 or one <= 0:
        raise malformed(root, f"b={b} must be negative and one={one} positive")
    params = ta.IGeluAttr(b, one)

    def build(emitter: Emitter, requant: Requantization | None) -> SSAValue:
        value = emitter.value(x)
        return emitter.op(ta.GeluOp(value, igelu=params, **_typed(value.type.get_shape(), requant)))

    return (root,), build


def itamax(graph: IntegerGraph, node: Node) -> Match:
    """QuantLib's ITAMax (ITA's integer softmax, 256 levels) of i8 scores over the last axis:
    the integer form of `tinyattn.softmax` with `itamax`."""
    x = activation(graph, node)
    element_type = graph.activation_type(x)
    if element_type != ta.i8:
        raise Mismatch(f"its input '{x}' is {element_type}; ITAMax takes i8 scores")
    levels = _number(node, "n_levels", "n_levels_t")
    if levels != 256:
        raise malformed(node, f"n_levels={levels:g} is not supported; ITAMax's is 256")
    rank = len(graph.shape(x))
    if normalize_axis(node.attr("axis", -1), rank) != rank - 1:
        raise Mismatch("only an ITAMax over the last axis is supported")
    return single(node, lambda emitter: emitter.op(ta.SoftmaxOp(emitter.value(x), itamax=True)))
