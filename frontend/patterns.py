"""Patterns that map ONNX nodes to tinyattn ops, and the pieces they share.

A pattern is a function `(graph, root) -> Match` that either recognises the subgraph ending at
`root` or raises `Mismatch` with the reason. A `Match` lists the nodes it replaces and knows
how to emit the replacement; the importer decides where in the body it is emitted.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects.builtin import TensorType, f32, i32
from xdsl.ir import Attribute, Operation, SSAValue

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import from_numpy, numpy_dtype
from tinyattn.frontend.onnx_graph import Mismatch, Node, OnnxGraph, normalize_axis

# ---------------------------------------------------------------------------------------------
# Matches and their emission
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    """A constant tensor to emit, with the ONNX name it came from (kept as its SSA name) and
    the element type it is emitted as (integer graphs store int8 weights in float32 tensors)."""

    array: np.ndarray
    name: str | None = None
    element_type: Attribute = f32


def ssa_name(onnx_name: str) -> str:
    """An ONNX tensor name as a valid SSA name hint (`/a/b:0` -> `_a_b_0`)."""
    name = re.sub(r"[^\w$.-]", "_", onnx_name)
    return name if re.match(r"[A-Za-z_$.-]", name) else f"_{name}"


class Emitter:
    """Appends ops to the function body; maps ONNX activation names to their SSA values."""

    def __init__(self, builder: Builder, values: dict[str, SSAValue]):
        self._builder = builder
        self._values = values

    def value(self, name: str) -> SSAValue:
        return self._values[name]

    def op(self, op: Operation) -> SSAValue:
        """Insert `op` and return its (single) result."""
        self._builder.insert(op)
        return op.results[0]

    def constant(self, constant: Constant) -> SSAValue:
        result = self.op(arith.ConstantOp(from_numpy(constant.array, constant.element_type)))
        if constant.name:
            result.name_hint = ssa_name(constant.name)
        return result


@dataclass(frozen=True)
class Match:
    """ONNX nodes replaced together; `emit` builds the value of `root`'s first output."""

    root: Node
    nodes: tuple[Node, ...]
    emit: Callable[[Emitter], SSAValue]


def single(node: Node, emit: Callable[[Emitter], SSAValue]) -> Match:
    return Match(node, (node,), emit)


Pattern = Callable[[OnnxGraph, Node], Match]


def summary(function: Callable) -> str:
    """The first sentence of a pattern's (or operation's) docstring: what it recognises and
    what it becomes, for `tinyattn-import --list-ops`."""
    paragraph = " ".join((function.__doc__ or "").strip().split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.;])\s", paragraph, maxsplit=1)[0]
    return sentence.rstrip(".;")

# ---------------------------------------------------------------------------------------------
# Shapes: activations are imported without ONNX's leading batch dimension of 1
# ---------------------------------------------------------------------------------------------


def squeeze_batch(shape: Sequence[int]) -> tuple[int, ...]:
    """The imported shape of an ONNX activation: the body works on [S, E], not [1, S, E]."""
    return tuple(shape[1:]) if len(shape) >= 2 and shape[0] == 1 else tuple(shape)


def fit_to_imported(array: np.ndarray, shape: Sequence[int]) -> np.ndarray | None:
    """A constant operand of an elementwise op on an activation of imported `shape` (batch
    dropped): `array` without the leading 1s beyond that rank, or None if it does not
    broadcast to `shape` by NumPy's rules."""
    while array.ndim > len(shape) and array.shape[0] == 1:
        array = array[0]
    try:
        fits = np.broadcast_shapes(array.shape, tuple(shape)) == tuple(shape)
    except ValueError:
        fits = False
    return array if fits else None


def imported_axis(shape: Sequence[int], axis: int) -> int:
    """The axis of the imported (batch-squeezed) tensor that ONNX `axis` of `shape` refers to."""
    axis = normalize_axis(axis, len(shape))
    if len(squeeze_batch(shape)) == len(shape):
        return axis
    if axis == 0:
        raise Mismatch("operating on the batch axis is not supported")
    return axis - 1


# ---------------------------------------------------------------------------------------------
# Operands
# ---------------------------------------------------------------------------------------------


def activation(graph: OnnxGraph, node: Node, index: int = 0) -> str:
    """Input `index` of `node`, which must be computed (not a constant)."""
    name = node.input(index)
    if graph.is_constant(name):
        raise Mismatch(f"input '{name}' is a constant where an activation is expected")
    return name


def float_constant(graph: OnnxGraph, name: str) -> Constant:
    """A float32 constant operand (a weight, bias or norm parameter)."""
    value = graph.constant(name)
    if value is None:
        raise Mismatch(f"'{name}' is not a constant")
    if value.dtype != np.float32:
        raise Mismatch(
            f"constant '{name}' has element type {value.dtype}; only float32 is supported"
        )
    return Constant(value, name)


def constant_operand(graph: OnnxGraph, node: Node) -> tuple[str, str]:
    """(activation, constant) input names of a commutative binary node, either order."""
    lhs, rhs = node.inputs
    for act, const in ((lhs, rhs), (rhs, lhs)):
        if graph.is_constant(const) and not graph.is_constant(act):
            return act, const
    raise Mismatch(f"{node.label()} does not combine an activation with a constant")


def scalar(value: np.ndarray | None) -> float | None:
    """The value of a single-element constant, None for anything else."""
    return float(value.reshape(())) if value is not None and value.size == 1 else None


def scale_factor(graph: OnnxGraph, node: Node) -> tuple[str, float] | None:
    """(activation, factor) if `node` multiplies by a scalar constant (`Mul` either way round,
    `Div` by the constant), None otherwise."""
    if node.op_type == "Mul":
        try:
            act, const = constant_operand(graph, node)
        except Mismatch:
            return None
        factor = scalar(graph.constant(const))
    elif node.op_type == "Div" and not graph.is_constant(node.inputs[0]):
        act, divisor = node.inputs[0], scalar(graph.constant(node.inputs[1]))
        factor = None if not divisor else 1.0 / divisor
    else:
        return None
    return None if factor is None else (act, factor)


def last_axis_vector(constant: Constant, length: int, what: str) -> Constant:
    """A constant that varies only along the last axis (a bias, gamma), as a [length] vector."""
    array = constant.array
    if array.size != 1 and not (array.size == length and array.shape[-1] == length):
        raise Mismatch(
            f"{what} '{constant.name}' of shape {list(array.shape)} is not a vector of {length}"
        )
    return Constant(np.broadcast_to(array.reshape(-1), (length,)), constant.name)


def is_close(value: float | None, expected: float) -> bool:
    """Whether a pattern constant is `expected` up to its float32 rounding."""
    return value is not None and math.isclose(value, expected, rel_tol=1e-6)


def softmax_is_over_last_axis(graph: OnnxGraph, node: Node) -> bool:
    """Before opset 13 Softmax flattens from `axis` on, which is the last axis only if `axis` is
    the last one; the default axis changed from 1 to -1 at the same time."""
    rank = len(graph.shape(node.inputs[0]))
    axis = node.attr("axis", -1 if graph.opset >= 13 else 1)
    return normalize_axis(axis, rank) == rank - 1


def reduce_axes(graph: OnnxGraph, node: Node) -> list[int]:
    """The normalized axes of a ReduceMean: an attribute before opset 18, an input after."""
    axes = node.attr("axes")
    if axes is None and node.input(1):
        value = graph.constant(node.input(1))
        if value is None:
            raise Mismatch(f"the axes input '{node.input(1)}' is not a constant")
        axes = np.atleast_1d(value).tolist()
    if not axes:
        raise Mismatch("a reduction over all axes is not supported")
    rank = len(graph.shape(node.inputs[0]))
    return [normalize_axis(axis, rank) for axis in axes]


# ---------------------------------------------------------------------------------------------
# Linear layers: MatMul (+ Add bias) and Gemm
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linear:
    """`alpha * (input @ weight) + bias` recognised in the graph: weight [K, N], bias an [N]
    vector or None, or instead `addend`, a constant that broadcasts to the output but varies
    along its rows (Gemm's full-matrix C, an Add of a matrix); both hold beta already."""

    input: str
    weight: Constant
    bias: Constant | None
    nodes: tuple[Node, ...]
    alpha: float = 1.0
    addend: Constant | None = None

    @property
    def is_plain(self) -> bool:
        """Just `input @ weight + bias`: what an attention's projections are."""
        return self.alpha == 1.0 and self.addend is None

    def emit(self, emitter: Emitter) -> SSAValue:
        """The f32 layer: alpha folded into the weight, the addend added after."""
        weight = self.weight
        if self.alpha != 1.0:
            weight = Constant((weight.array * self.alpha).astype(np.float32), weight.name)
        weight_value = emitter.constant(weight)
        bias = None if self.bias is None else emitter.constant(self.bias)
        y = emitter.op(ta.LinearOp(emitter.value(self.input), weight_value, bias))
        if self.addend is None:
            return y
        one = emitter.constant(Constant(np.ones(1, np.float32)))
        return emitter.op(ta.MulAddOp(y, one, emitter.constant(self.addend)))

    def zero_bias(self, shape: Sequence[int]) -> Constant:
        """Zeros in place of an absent bias, typed like a bias: f32, or the i32 accumulator of
        int8 weights."""
        element_type = f32 if self.weight.element_type == f32 else i32
        return Constant(np.zeros(shape, numpy_dtype(element_type)), element_type=element_type)


def _matmul_linear(graph: OnnxGraph, node: Node) -> Linear:
    lhs, rhs = node.inputs
    if not graph.is_constant(rhs):
        if graph.is_constant(lhs):
            raise Mismatch(
                "a constant left operand is not supported; the weight must be on the right"
            )
        raise Mismatch("MatMul of two activations is not a linear layer")
    weight = float_constant(graph, rhs)
    if weight.array.ndim != 2:
        raise Mismatch(f"weight '{rhs}' must have rank 2, got shape {list(weight.array.shape)}")
    return Linear(activation(graph, node), weight, None, (node,))


def _added(
    graph: OnnxGraph, linear: Linear, constant: Constant, beta: float, nodes: tuple[Node, ...]
) -> Linear:
    """`linear` with `beta * constant` added: as its bias if that is a vector over the output
    columns, else as its addend, fitted to the imported output (`fit_to_imported`)."""
    width = linear.weight.array.shape[1]
    array = (constant.array.astype(np.float64) * beta).astype(np.float32)
    if array.size == 1 or (array.size == width and array.shape[-1] == width):
        bias = last_axis_vector(Constant(array, constant.name), width, "bias")
        return Linear(linear.input, linear.weight, bias, nodes, linear.alpha)
    output = (*squeeze_batch(graph.shape(linear.input))[:-1], width)
    fitted = fit_to_imported(array, output)
    if fitted is None:
        raise Mismatch(
            f"'{constant.name}' of shape {list(array.shape)} does not broadcast to the output "
            f"{list(output)}"
        )
    addend = Constant(fitted, constant.name)
    return Linear(linear.input, linear.weight, None, nodes, linear.alpha, addend)


def _gemm_linear(graph: OnnxGraph, node: Node) -> Linear:
    if node.attr("transA", 0):
        raise Mismatch("transA=1 is not supported (the activation must not be transposed)")
    weight = float_constant(graph, node.inputs[1])
    if node.attr("transB", 0):
        weight = Constant(weight.array.T, weight.name)
    alpha = float(node.attr("alpha", 1.0))
    linear = Linear(activation(graph, node), weight, None, (node,), alpha)
    if not node.input(2):
        return linear
    beta = node.attr("beta", 1.0)
    return _added(graph, linear, float_constant(graph, node.input(2)), beta, (node,))


def match_linear(graph: OnnxGraph, root: Node) -> Linear:
    """A linear layer ending at `root`: `MatMul(x, W)`, `Add` of a constant (a bias, or a
    matrix) to it, or `Gemm` (alpha, beta, transB, a bias vector or matrix)."""
    if root.op_type == "MatMul":
        return _matmul_linear(graph, root)
    if root.op_type == "Gemm":
        return _gemm_linear(graph, root)
    if root.op_type != "Add":
        raise Mismatch(f"{root.label()} is not a linear layer")
    product, addend = constant_operand(graph, root)
    matmul = _matmul_linear(graph, graph.producer_of(product, "MatMul"))
    return _added(graph, matmul, float_constant(graph, addend), 1.0, (*matmul.nodes, root))


def matmul_operands(graph: OnnxGraph, node: Node) -> tuple[str, str, tuple[int, ...]]:
    """The two activations a MatMul multiplies and its imported result shape: [..., M, K] @
    [..., K, N], batch dimensions equal or one operand a matrix."""
    lhs, rhs = node.inputs
    shapes = f"MatMul of shapes {list(graph.shape(lhs))} and {list(graph.shape(rhs))}"
    a, b = (squeeze_batch(graph.shape(name)) for name in (lhs, rhs))
    if len(a) < 2 or len(b) < 2:
        raise Mismatch(f"{shapes}: both must be matrices")
    if len(a) > 2 and len(b) > 2 and a[:-2] != b[:-2]:
        raise Mismatch(
            f"{shapes} broadcasts its batch dimensions; they must be equal, or one operand a "
            "matrix"
        )
    return lhs, rhs, squeeze_batch(graph.shape(node.outputs[0]))


def matmul(graph: OnnxGraph, node: Node) -> Match:
    """MatMul of two activations (batched): `tinyattn.matmul`; with a constant operand, a
    linear layer."""
    if any(graph.is_constant(name) for name in node.inputs):
        return linear_pattern(graph, node)
    lhs, rhs, shape = matmul_operands(graph, node)

    def emit(emitter: Emitter) -> SSAValue:
        result_type = TensorType(f32, shape)
        return emitter.op(
            ta.MatMulOp(emitter.value(lhs), emitter.value(rhs), result_type=result_type)
        )

    return single(node, emit)


def linear_pattern(graph: OnnxGraph, root: Node) -> Match:
    """A linear layer: MatMul by a constant weight (+ Add of a bias vector or matrix), or Gemm
    (alpha, beta, transB): `tinyattn.linear` (+ `tinyattn.muladd`)."""
    linear = match_linear(graph, root)
    return Match(root, linear.nodes, linear.emit)


# ---------------------------------------------------------------------------------------------
# Layer normalization and GELU, as ops or decomposed
# ---------------------------------------------------------------------------------------------

DEFAULT_EPSILON = 1e-5


def _affine_parameter(graph: OnnxGraph, name: str, width: int, what: str, default: float):
    """A layer norm's gamma or beta: a [width] constant vector (`default` fills an absent one),
    or the name of the graph input that holds it (a model that takes its norm parameters)."""
    if not name:
        return Constant(np.full(width, default, np.float32))
    if not graph.is_constant(name) and name in graph.inputs:
        if squeeze_batch(graph.shape(name)) != (width,):
            raise Mismatch(f"{what} '{name}' of shape {list(graph.shape(name))} is not [{width}]")
        return name
    return last_axis_vector(float_constant(graph, name), width, what)


def _layernorm(graph: OnnxGraph, x: str, gamma: str, beta: str, epsilon: float):
    width = graph.shape(x)[-1]
    parameters = [
        _affine_parameter(graph, gamma, width, "scale", 1.0),
        _affine_parameter(graph, beta, width, "bias", 0.0),
    ]

    def emit(emitter: Emitter) -> SSAValue:
        gamma_value, beta_value = (
            emitter.value(p) if isinstance(p, str) else emitter.constant(p) for p in parameters
        )
        return emitter.op(
            ta.LayerNormOp(emitter.value(x), gamma_value, beta_value, epsilon=epsilon)
        )

    return emit


def layernorm_op(graph: OnnxGraph, node: Node) -> Match:
    """LayerNormalization over the last axis, scale and bias constants or graph inputs:
    `tinyattn.layernorm`."""
    x = activation(graph, node)
    rank = len(graph.shape(x))
    if normalize_axis(node.attr("axis", -1), rank) != rank - 1:
        raise Mismatch("only normalization over the last axis is supported")
    epsilon = node.attr("epsilon", DEFAULT_EPSILON)
    return single(node, _layernorm(graph, x, node.inputs[1], node.input(2), epsilon))


def _last_axis_mean(graph: OnnxGraph, name: str) -> Node:
    """The `ReduceMean(axes=[-1], keepdims=1)` computing `name`."""
    node = graph.producer_of(name, "ReduceMean")
    rank = len(graph.shape(node.inputs[0]))
    if reduce_axes(graph, node) != [rank - 1] or not node.attr("keepdims", 1):
        raise Mismatch(f"{node.label()} is not a mean over the last axis with keepdims")
    return node


def layernorm_decomposition(graph: OnnxGraph, root: Node) -> Match:
    """`ReduceMean, Sub, Pow(2), ReduceMean, Add(eps), Sqrt, Div`, then optionally `Mul(gamma)`
    and `Add(beta)`, as older exporters emit layer norm."""
    affine: list[Node] = []
    parameters = {"gamma": "", "beta": ""}
    name = root.outputs[0]
    for op_type, parameter in (("Add", "beta"), ("Mul", "gamma")):
        node = graph.producer(name)
        if node is not None and node.op_type == op_type:
            name, parameters[parameter] = constant_operand(graph, node)
            affine.insert(0, node)
    div = graph.producer_of(name, "Div")
    centered, deviation = div.inputs
    sqrt = graph.producer_of(deviation, "Sqrt")
    add_epsilon = graph.producer_of(sqrt.inputs[0], "Add")
    variance_name, epsilon_name = constant_operand(graph, add_epsilon)
    epsilon = scalar(graph.constant(epsilon_name))
    if epsilon is None:
        raise Mismatch(f"epsilon '{epsilon_name}' is not a scalar")
    variance = _last_axis_mean(graph, variance_name)
    power = graph.producer_of(variance.inputs[0], "Pow")
    if power.inputs[0] != centered or scalar(graph.constant(power.inputs[1])) != 2.0:
        raise Mismatch(f"{power.label()} is not the square of the centered input")
    sub = graph.producer_of(centered, "Sub")
    x, mean_name = sub.inputs
    input_mean = _last_axis_mean(graph, mean_name)
    if input_mean.inputs[0] != x:
        raise Mismatch(f"{sub.label()} does not center its input on its mean")
    nodes = (input_mean, sub, power, variance, add_epsilon, sqrt, div, *affine)
    emit = _layernorm(graph, x, parameters["gamma"], parameters["beta"], epsilon)
    return Match(root, nodes, emit)


def _gelu(x: str):
    return lambda emitter: emitter.op(ta.GeluOp(emitter.value(x)))


def gelu_op(graph: OnnxGraph, node: Node) -> Match:
    """Gelu with the exact erf (ONNX's, or onnxruntime's com.microsoft one): `tinyattn.gelu`."""
    if node.attr("approximate", "none") != "none":
        raise Mismatch(f"approximate='{node.attr('approximate')}' is not supported (only 'none')")
    return single(node, _gelu(activation(graph, node)))


def _erf_term(graph: OnnxGraph, name: str, x: str) -> tuple[Node, Node, Node]:
    """The nodes computing `name` as `1 + erf(x / sqrt 2)`; the division may be a `Div` by
    sqrt 2 or a `Mul` by 1/sqrt 2."""
    add = graph.producer_of(name, "Add")
    erf_name, one = constant_operand(graph, add)
    erf = graph.producer_of(erf_name, "Erf")
    scaled = graph.producer(erf.inputs[0])
    factor = None if scaled is None else scale_factor(graph, scaled)
    if (
        scalar(graph.constant(one)) != 1.0
        or factor is None
        or factor[0] != x
        or not is_close(factor[1], 1 / math.sqrt(2))
    ):
        raise Mismatch(f"'{name}' is not 1 + erf({x} / sqrt(2))")
    return scaled, erf, add


def gelu_decomposition(graph: OnnxGraph, root: Node) -> Match:
    """The exporter's erf GELU `x * (1 + erf(x / sqrt 2)) * 0.5`: two `Mul`s of the three
    factors in any order and association."""
    reason = Mismatch("not an erf GELU")
    for outer in (0, 1):
        inner = graph.producer(root.inputs[1 - outer])
        if inner is None or inner.op_type != "Mul":
            continue
        for half, x, term in itertools.permutations((root.inputs[outer], *inner.inputs)):
            if scalar(graph.constant(half)) != 0.5:
                continue
            try:
                return Match(root, (*_erf_term(graph, term, x), inner, root), _gelu(x))
            except Mismatch as mismatch:
                reason = mismatch
    raise reason


# ---------------------------------------------------------------------------------------------
# Single-node ops
# ---------------------------------------------------------------------------------------------


def residual_operands(graph: OnnxGraph, node: Node, constant_use: str) -> tuple[str, str]:
    """The two activations an `Add` of equal shapes sums (a residual connection);
    `constant_use` says where an Add of a constant is supported instead."""
    lhs, rhs = node.inputs
    if graph.is_constant(lhs) or graph.is_constant(rhs):
        raise Mismatch(f"Add of a constant is only supported {constant_use}")
    if graph.shape(lhs) != graph.shape(rhs):
        raise Mismatch(
            f"Add of shapes {list(graph.shape(lhs))} and {list(graph.shape(rhs))} broadcasts; "
            "only equal shapes are supported"
        )
    return lhs, rhs


def add(graph: OnnxGraph, node: Node) -> Match:
    """Add of two activations of equal shapes (a residual connection): `tinyattn.add`; of a
    constant that broadcasts to the activation: `tinyattn.muladd`; of activations that
    broadcast: `tinyattn.map`."""
    if any(graph.is_constant(name) for name in node.inputs):
        return constant_elementwise(graph, node)
    lhs, rhs = node.inputs
    if graph.shape(lhs) != graph.shape(rhs):
        return float_map(graph, node)
    return single(
        node, lambda emitter: emitter.op(ta.AddOp(emitter.value(lhs), emitter.value(rhs)))
    )


def arithmetic(graph: OnnxGraph, node: Node) -> Match:
    """Sub, Mul or Div: of an activation and a constant, `tinyattn.muladd`; of two
    activations (broadcasting), `tinyattn.map`."""
    if any(graph.is_constant(name) for name in node.inputs):
        return constant_elementwise(graph, node)
    return float_map(graph, node)


_MAP_FUNCTIONS = {
    "Sigmoid": "sigmoid",
    "Sqrt": "sqrt",
    "Round": "round",
    "Add": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Max": "max",
    "Min": "min",
}


def float_map(graph: OnnxGraph, node: Node) -> Match:
    """Sigmoid, Sqrt, Round, or Add, Sub, Mul, Div, Max, Min of two activations that
    broadcast: `tinyattn.map`."""
    names = [activation(graph, node, index) for index in range(len(node.inputs))]
    if node.op_type in ("Max", "Min") and len(names) != 2:
        raise Mismatch(f"{node.op_type} of {len(names)} operands is not supported (only 2)")
    shape = squeeze_batch(graph.shape(node.outputs[0]))
    fn = _MAP_FUNCTIONS[node.op_type]

    def emit(emitter: Emitter) -> SSAValue:
        values = [emitter.value(name) for name in names]
        return emitter.op(ta.MapOp(fn, values, TensorType(f32, shape)))

    return single(node, emit)


def clip(graph: OnnxGraph, node: Node) -> Match:
    """Clip by constant bounds (inputs since opset 11, attributes before): `tinyattn.map`
    max, then min, with one-element constants."""
    x = activation(graph, node)
    bounds = []
    for index, (attribute, fn) in enumerate((("min", "max"), ("max", "min")), start=1):
        name = node.input(index)
        value = node.attr(attribute) if graph.opset < 11 else None
        if name:
            constant = graph.constant(name)
            if constant is None:
                raise Mismatch(f"the {attribute} bound '{name}' is not a constant")
            value = scalar(constant)
        if value is not None:
            bounds.append((fn, Constant(np.array([value], np.float32), name or None)))
    shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        for fn, bound in bounds:
            value = emitter.op(
                ta.MapOp(fn, [value, emitter.constant(bound)], TensorType(f32, shape))
            )
        return value

    return single(node, emit)


def power(graph: OnnxGraph, node: Node) -> Match:
    """Pow by a constant exponent: 1 (nothing), 0.5 (`sqrt`), or a whole number up to 8
    (repeated `mul`s, by squaring)."""
    x = activation(graph, node)
    exponent = scalar(graph.constant(node.input(1)))
    if exponent is None:
        raise Mismatch("only a constant scalar exponent is supported")
    if exponent != 0.5 and not (float(exponent).is_integer() and 1 <= exponent <= 8):
        raise Mismatch(f"the exponent {exponent:g} is not supported (0.5 or 1 to 8)")
    shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        typ = TensorType(f32, shape)
        value = emitter.value(x)
        if exponent == 0.5:
            return emitter.op(ta.MapOp("sqrt", [value], typ))
        def times(a: SSAValue, b: SSAValue) -> SSAValue:
            return emitter.op(ta.MapOp("mul", [a, b], typ))

        result, square, n = None, value, int(exponent)
        while n:
            if n & 1:
                result = square if result is None else times(result, square)
            n >>= 1
            if n:
                square = times(square, square)
        assert result is not None
        return result

    return single(node, emit)


def _imported_constant(array: np.ndarray, shape: Sequence[int], what: str) -> np.ndarray:
    """`fit_to_imported`, refused with a Mismatch where it does not broadcast."""
    fitted = fit_to_imported(array, shape)
    if fitted is None:
        raise Mismatch(f"{what} of shape {list(array.shape)} does not broadcast to {list(shape)}")
    return fitted.reshape(fitted.shape or (1,))


def constant_elementwise(graph: OnnxGraph, node: Node) -> Match:
    """Add, Sub, Mul or Div of an activation and a constant that broadcasts to it (a positional
    embedding, a scaling, a shift): `x * m + a` (`tinyattn.muladd`); `c - x` is `x * -1 + c`,
    `x / c` is `x * (1/c)` (one f32 rounding more than the division, within the f32
    criterion)."""
    lhs, rhs = node.inputs
    constant_first = graph.is_constant(lhs)
    x, name = (rhs, lhs) if constant_first else (lhs, rhs)
    if graph.is_constant(x) or not graph.is_constant(name):
        raise Mismatch(f"{node.op_type} of two activations is not supported")
    if graph.shape(node.outputs[0]) != graph.shape(x):
        raise Mismatch(f"the constant '{name}' broadcasts the activation '{x}' to a larger shape")
    value = float_constant(graph, name).array.astype(np.float64)
    if node.op_type == "Div" and constant_first:
        raise Mismatch("dividing a constant by an activation is not supported")
    if node.op_type == "Div" and not np.all(value):
        raise Mismatch(f"'{name}' divides by zero")
    one, zero = np.ones(1), np.zeros(1)
    m, a = {
        "Add": (one, value),
        "Sub": (-one, value) if constant_first else (one, -value),
        "Mul": (value, zero),
        "Div": (1.0 / value, zero),
    }[node.op_type]
    shape = squeeze_batch(graph.shape(x))
    m, a = (
        Constant(_imported_constant(v, shape, f"'{name}'").astype(np.float32), name)
        for v in (m, a)
    )

    def emit(emitter: Emitter) -> SSAValue:
        return emitter.op(
            ta.MulAddOp(emitter.value(x), emitter.constant(m), emitter.constant(a))
        )

    return single(node, emit)


# ---------------------------------------------------------------------------------------------
# Convolutional front ends: Conv and MaxPool over [1, C, *spatial] (1-D or 2-D)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowAttrs:
    """The sliding window of a Conv or MaxPool node: kernel, strides, pads (begins, ends)."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]


def window_attrs(graph: OnnxGraph, node: Node, kernel: Sequence[int]) -> WindowAttrs:
    """The window of `node` over its input [1, C, *spatial], with explicit pads and dilation 1
    (what PyTorch exports); `kernel` is the kernel's spatial shape."""
    shape = graph.shape(node.inputs[0])
    rank = len(shape) - 2
    if rank not in (1, 2) or len(kernel) != rank:
        raise Mismatch(f"input of shape {list(shape)}: only 1-D and 2-D windows are supported")
    if shape[0] != 1:
        raise Mismatch(f"a batch of {shape[0]} is not supported here; export with batch 1")
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise Mismatch(f"auto_pad={node.attr('auto_pad')} is not supported (give pads)")
    if any(d != 1 for d in node.attr("dilations", [1] * rank)):
        raise Mismatch(f"dilations={node.attr('dilations')} are not supported (only 1)")
    if node.attr("ceil_mode", 0):
        raise Mismatch("ceil_mode=1 is not supported")
    strides = tuple(node.attr("strides", [1] * rank))
    pads = tuple(node.attr("pads", [0] * (2 * rank)))
    return WindowAttrs(tuple(kernel), strides, pads)


@dataclass(frozen=True)
class Convolution:
    """A Conv node: input, weight [C_out, C_in/group, *kernel], optional bias, window, group."""

    input: str
    weight: Constant
    bias: Constant | None
    window: WindowAttrs
    groups: int


def match_conv(graph: OnnxGraph, node: Node) -> Convolution:
    x = activation(graph, node)
    weight = float_constant(graph, node.inputs[1])
    if weight.array.ndim not in (3, 4):
        raise Mismatch(f"weight '{weight.name}' of shape {list(weight.array.shape)} is no kernel")
    window = window_attrs(graph, node, weight.array.shape[2:])
    bias = float_constant(graph, node.input(2)) if node.input(2) else None
    return Convolution(x, weight, bias, window, int(node.attr("group", 1)))


def conv(graph: OnnxGraph, node: Node) -> Match:
    """Conv, 1-D or 2-D (strides, pads, groups: 1, depthwise or any): `tinyattn.conv`."""
    layer = match_conv(graph, node)
    shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        weight = emitter.constant(layer.weight)
        bias = None if layer.bias is None else emitter.constant(layer.bias)
        window = layer.window
        return emitter.op(
            ta.ConvOp(
                emitter.value(layer.input), weight, bias, strides=window.strides,
                pads=window.pads, groups=layer.groups, result_type=TensorType(f32, shape),
            )
        )  # fmt: skip

    return single(node, emit)


def maxpool(graph: OnnxGraph, node: Node) -> Match:
    """MaxPool, 1-D or 2-D (strides, pads): `tinyattn.maxpool`."""
    x = activation(graph, node)
    if len([name for name in node.outputs if name]) > 1:
        raise Mismatch("the Indices output is not supported")
    if node.attr("storage_order", 0):
        raise Mismatch("storage_order=1 is not supported")
    window = window_attrs(graph, node, node.attr("kernel_shape", []))

    def emit(emitter: Emitter) -> SSAValue:
        return emitter.op(
            ta.MaxPoolOp(
                emitter.value(x), kernel=window.kernel, strides=window.strides, pads=window.pads
            )
        )

    return single(node, emit)


def relu(graph: OnnxGraph, node: Node) -> Match:
    """Relu: `tinyattn.relu`."""
    x = activation(graph, node)
    return single(node, lambda emitter: emitter.op(ta.ReluOp(emitter.value(x))))


def softmax(graph: OnnxGraph, node: Node) -> Match:
    """Softmax: over the last axis, `tinyattn.softmax`; over another (a pooling over the
    sequence), the same between two `tinyattn.transpose`s that bring that axis last."""
    x = activation(graph, node)
    shape = graph.shape(x)
    rank = len(shape)
    if softmax_is_over_last_axis(graph, node):
        return single(node, lambda emitter: emitter.op(ta.SoftmaxOp(emitter.value(x))))
    if graph.opset < 13:
        raise Mismatch("a softmax over several (flattened) axes is not supported")
    axis = normalize_axis(node.attr("axis", -1), rank)
    perm = [a for a in range(rank) if a != axis] + [axis]
    back = [perm.index(a) for a in range(rank)]
    out_shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        value = reshaped_to(emitter, emitter.value(x), shape)
        moved = emitter.op(ta.SoftmaxOp(emitter.op(ta.TransposeOp(value, perm))))
        return reshaped_to(emitter, emitter.op(ta.TransposeOp(moved, back)), out_shape)

    return single(node, emit)


def mean_of(graph: OnnxGraph, node: Node, element_type: Attribute | None = None) -> Match:
    """ReduceMean over one axis; its result has `element_type` (default: its input's)."""
    x = activation(graph, node)
    axes = reduce_axes(graph, node)
    if len(axes) != 1:
        raise Mismatch(f"a mean over several axes {axes} is not supported")
    axis = imported_axis(graph.shape(x), axes[0])
    keepdims = bool(node.attr("keepdims", 1))

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        return emitter.op(
            ta.MeanOp(value, axis=axis, keepdims=keepdims, element_type=element_type)
        )

    return single(node, emit)


def mean(graph: OnnxGraph, node: Node) -> Match:
    """ReduceMean over one axis: `tinyattn.mean`."""
    return mean_of(graph, node)


def reshape(graph: OnnxGraph, node: Node) -> Match:
    """Reshape, Flatten, Squeeze, Unsqueeze: row-major data is unchanged, only the shape."""
    x = activation(graph, node)
    shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        value = emitter.value(x)
        if value.type.get_shape() == shape:
            return value
        return emitter.op(ta.ReshapeOp(value, shape))

    return single(node, emit)


def transpose(graph: OnnxGraph, node: Node) -> Match:
    """Transpose: a reshape where it only moves axes of size 1 (the row-major order is kept),
    else `tinyattn.transpose` (at the ONNX rank: the batch axis may move)."""
    x = activation(graph, node)
    shape = graph.shape(x)
    perm = list(node.attr("perm", range(len(shape))[::-1]))
    moved = [axis for axis in perm if shape[axis] != 1]
    if moved == sorted(moved):
        return reshape(graph, node)
    out_shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        value = reshaped_to(emitter, emitter.value(x), shape)
        return reshaped_to(emitter, emitter.op(ta.TransposeOp(value, perm)), out_shape)

    return single(node, emit)


def reshaped_to(emitter: Emitter, value: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`value` with `shape` (same data): an activation at its ONNX shape, the batch axis back,
    for ops that index axes, or their result at its imported shape again."""
    if value.type.get_shape() == tuple(shape):
        return value
    return emitter.op(ta.ReshapeOp(value, shape))


def concat(graph: OnnxGraph, node: Node) -> Match:
    """Concat of activations (and, in a float graph, constants, such as a class token):
    `tinyattn.concat`."""
    shapes = [graph.shape(name) for name in node.inputs]
    axis = normalize_axis(node.attr("axis", 0), len(shapes[0]))
    parts = [
        float_constant(graph, name) if graph.is_constant(name) else name for name in node.inputs
    ]
    out_shape = squeeze_batch(graph.shape(node.outputs[0]))

    def emit(emitter: Emitter) -> SSAValue:
        values = [
            emitter.constant(part)
            if isinstance(part, Constant)
            else reshaped_to(emitter, emitter.value(part), shape)
            for part, shape in zip(parts, shapes, strict=True)
        ]
        return reshaped_to(emitter, emitter.op(ta.ConcatOp(values, axis)), out_shape)

    return single(node, emit)


def _slice_bounds(graph: OnnxGraph, node: Node) -> list[tuple[int, int, int]]:
    """Per axis (start, size, step) of a Slice node with constant bounds (inputs from opset
    10, attributes before), clamped as ONNX says."""
    shape = graph.shape(node.inputs[0])
    if graph.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        values = [graph.constant(node.input(i)) if node.input(i) else None for i in range(1, 5)]
        if values[0] is None or values[1] is None:
            raise Mismatch("only constant starts and ends are supported")
        starts, ends = values[0].tolist(), values[1].tolist()
        axes = values[2].tolist() if values[2] is not None else list(range(len(starts)))
        steps = values[3].tolist() if values[3] is not None else [1] * len(starts)
    bounds = [(0, dim, 1) for dim in shape]
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = normalize_axis(axis, len(shape))
        dim = shape[axis]
        if step < 1:
            raise Mismatch(f"step {step} is not supported (only positive steps)")
        start = min(max(start + dim if start < 0 else start, 0), dim)
        end = min(max(end + dim if end < 0 else end, 0), dim)
        size = max(0, (end - start + step - 1) // step)
        if size == 0:
            raise Mismatch(f"the slice of axis {axis} is empty")
        bounds[axis] = (start, size, step)
    return bounds


def _slice_match(node: Node, x: str, shape, bounds, out_shape) -> Match:
    def emit(emitter: Emitter) -> SSAValue:
        value = reshaped_to(emitter, emitter.value(x), shape)
        starts, sizes, steps = zip(*bounds, strict=True)
        return reshaped_to(emitter, emitter.op(ta.SliceOp(value, starts, sizes, steps)), out_shape)

    return single(node, emit)


def slice_(graph: OnnxGraph, node: Node) -> Match:
    """Slice by constant starts, ends, axes and positive steps: `tinyattn.slice`."""
    x = activation(graph, node)
    out_shape = squeeze_batch(graph.shape(node.outputs[0]))
    return _slice_match(node, x, graph.shape(x), _slice_bounds(graph, node), out_shape)


def gather(graph: OnnxGraph, node: Node) -> Match:
    """Gather of constant indices along an axis: one index, or indices in steps of one
    stride (a class token `x[:, 0]`, every other position): `tinyattn.slice`."""
    x = activation(graph, node)
    indices = graph.constant(node.input(1))
    if indices is None:
        raise Mismatch("only constant indices are supported")
    shape = graph.shape(x)
    axis = normalize_axis(node.attr("axis", 0), len(shape))
    flat = [int(i) + shape[axis] if i < 0 else int(i) for i in np.ravel(indices)]
    step = flat[1] - flat[0] if len(flat) > 1 else 1
    spaced = list(range(flat[0], flat[0] + step * len(flat), step))
    if indices.ndim > 1 or step < 1 or flat != spaced:
        shown = np.ravel(indices).tolist()
        raise Mismatch(f"indices {shown} are not one index or evenly spaced ones")
    bounds = [(0, dim, 1) for dim in shape]
    bounds[axis] = (flat[0], len(flat), step)
    return _slice_match(node, x, shape, bounds, squeeze_batch(graph.shape(node.outputs[0])))


def identity(graph: OnnxGraph, node: Node) -> Match:
    """Identity: no op."""
    x = activation(graph, node)
    return single(node, lambda emitter: emitter.value(x))


def dropout(graph: OnnxGraph, node: Node) -> Match:
    """Dropout is the identity at inference, which is all a deployed model does."""
    training = node.input(2)
    if training and scalar(graph.constant(training)) != 0:
        raise Mismatch(f"training_mode '{training}' is not a constant false")
    return identity(graph, node)


def unreadable_constant(graph: OnnxGraph, node: Node) -> Match:
    """Constant: a constant, not an op (sparse and string ones are refused)."""
    raise Mismatch("only numeric tensor constants are supported (not sparse or string ones)")


def only_inside(what: str) -> Pattern:
    """The pattern for an op that is only meaningful as part of `what`."""

    def pattern(graph: OnnxGraph, node: Node) -> Match:
        raise Mismatch(f"{node.op_type} is only supported inside {what}")

    pattern.__doc__ = f"Only inside {what}."
    return pattern
