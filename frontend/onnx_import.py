"""Import a float32 ONNX transformer encoder (as PyTorch exports it) into the tinyattn dialect.

The result is `func.func @main` taking and returning the graph's tensors with their exact
shapes; inside, activations drop the batch dimension of 1 (the ops work on [S, E]), weights are
`arith.constant`s and every computation is a tinyattn op.

Import runs in two steps. Planning walks the nodes from the last to the first and, at each node
not yet claimed, tries the patterns registered for its op type (`PATTERNS`), largest first; a
pattern claims the whole subgraph it recognises (e.g. the ~20 nodes of an attention). Walking
backwards lets a pattern be recognised from its last node before its inner nodes are seen.
Emission then builds each match's ops in graph order.
"""

from __future__ import annotations

import os

import onnx
from google.protobuf.message import DecodeError
from xdsl.builder import Builder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import VerifyException

from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend import patterns as p
from tinyattn.frontend.attention import attention_pattern
from tinyattn.frontend.onnx_graph import (
    Mismatch,
    Node,
    OnnxGraph,
    OnnxImportError,
    element_type_name,
)

__all__ = ["OnnxImportError", "PATTERNS", "import_model"]

_IN_LAYERNORM = p.only_inside("a layer-norm pattern")
_IN_ELEMENTWISE_PATTERNS = p.only_inside("an attention, layer-norm or GELU pattern")

# The patterns tried at a node of each op type, most specific first. When none applies, the
# last one's reason is reported; op types not listed are unsupported.
PATTERNS: dict[str, tuple[p.Pattern, ...]] = {
    "Add": (attention_pattern, p.layernorm_decomposition, p.linear_pattern, p.residual_add),
    "MatMul": (attention_pattern, p.linear_pattern),
    "Gemm": (p.linear_pattern,),
    "Mul": (p.layernorm_decomposition, p.gelu_decomposition, _IN_ELEMENTWISE_PATTERNS),
    "Div": (p.layernorm_decomposition, _IN_ELEMENTWISE_PATTERNS),
    "Relu": (p.relu,),
    "Gelu": (p.gelu_op,),
    "Softmax": (p.softmax,),
    "LayerNormalization": (p.layernorm_op,),
    "ReduceMean": (p.mean,),
    "Reshape": (p.reshape,),
    "Flatten": (p.reshape,),
    "Squeeze": (p.reshape,),
    "Unsqueeze": (p.reshape,),
    "Identity": (p.identity,),
    "Dropout": (p.dropout,),
    "Transpose": (p.only_inside("an attention pattern"),),
    "Sub": (_IN_LAYERNORM,),
    "Pow": (_IN_LAYERNORM,),
    "Sqrt": (_IN_LAYERNORM,),
    "Erf": (p.only_inside("a GELU pattern"),),
    # Readable Constant nodes are constants and never matched; this explains the others.
    "Constant": (p.unreadable_constant,),
}


def _check_self_contained(graph: OnnxGraph, match: p.Match, claimed: set[Node]) -> None:
    """A match replaces its nodes, so nothing else may use the values computed inside it, and
    another match must not have claimed them already."""
    inside = set(match.nodes)
    for node in match.nodes:
        if node in claimed:
            raise Mismatch(f"{node.label()} already belongs to another pattern")
        for index, name in enumerate(node.outputs):
            if not name or (node is match.root and index == 0):
                continue
            if graph.is_output(name) or any(user not in inside for user in graph.consumers(name)):
                raise Mismatch(f"'{name}' is used outside the pattern")


def _match(graph: OnnxGraph, node: Node, claimed: set[Node]) -> p.Match:
    patterns = PATTERNS.get(node.op_type) if node.proto.domain in ("", "ai.onnx") else None
    if not patterns:
        raise Mismatch("unsupported op type")
    for pattern in patterns:
        try:
            match = pattern(graph, node)
            _check_self_contained(graph, match, claimed)
            graph.shape(node.outputs[0])  # the emitted op's type needs a static shape
            return match
        except Mismatch as mismatch:
            reason = mismatch
    raise reason


def _plan(graph: OnnxGraph) -> list[p.Match]:
    """The matches covering every node, in graph order; the first node no pattern applies to
    is reported."""
    claimed: set[Node] = set()
    matches: list[p.Match] = []
    failures: list[tuple[Node, str]] = []
    for node in reversed(graph.nodes):
        if node in claimed or graph.is_constant(node.outputs[0]):
            continue
        try:
            match = _match(graph, node, claimed)
        except Mismatch as mismatch:
            failures.append((node, mismatch.reason))
            continue
        claimed.update(match.nodes)
        matches.append(match)
    if failures:
        node, reason = failures[-1]
        raise OnnxImportError(f"{node.label()}: {reason}")
    return matches[::-1]


def _tensor_type(graph: OnnxGraph, name: str, what: str) -> TensorType:
    """The f32 tensor type of a graph input or output, which must be static."""
    element = graph.element_type(name)
    if element != onnx.TensorProto.FLOAT:
        raise OnnxImportError(
            f"{what} '{name}': element type {element_type_name(element)} is not supported; "
            "only float32"
        )
    try:
        return TensorType(f32, graph.shape(name))
    except Mismatch as mismatch:
        raise OnnxImportError(f"{what} '{name}': {mismatch.reason}") from None


def _input_types(graph: OnnxGraph) -> list[TensorType]:
    """The function's argument types: the graph's inputs, which must have batch 1."""
    input_types = [_tensor_type(graph, name, "input") for name in graph.inputs]
    for name, typ in zip(graph.inputs, input_types, strict=True):
        shape = typ.get_shape()
        if not shape:
            raise OnnxImportError(f"input '{name}': scalar inputs are not supported")
        if shape[0] != 1:
            raise OnnxImportError(
                f"input '{name}': batch size {shape[0]} is not supported; export with batch 1"
            )
    return input_types


def _reshaped(builder: Builder, value: SSAValue, shape: tuple[int, ...]) -> SSAValue:
    if value.type.get_shape() == shape:
        return value
    return builder.insert(ta.ReshapeOp(value, shape)).result


def _build(graph: OnnxGraph, matches: list[p.Match], input_types: list[TensorType]) -> ModuleOp:
    output_types = [_tensor_type(graph, name, "output") for name in graph.outputs]
    block = Block(arg_types=input_types)
    builder = Builder(InsertPoint.at_end(block))
    values: dict[str, SSAValue] = {}
    for name, arg in zip(graph.inputs, block.args, strict=True):
        arg.name_hint = p.ssa_name(name)
        values[name] = _reshaped(builder, arg, p.squeeze_batch(arg.type.get_shape()))
    emitter = p.Emitter(builder, values)
    for match in matches:
        name = match.root.outputs[0]
        result = match.emit(emitter)
        expected = p.squeeze_batch(graph.shape(name))
        if result.type.get_shape() != expected:
            raise OnnxImportError(
                f"{match.root.label()}: imported as shape {list(result.type.get_shape())}, "
                f"but the model says {list(expected)}"
            )
        values[name] = result
    for name in graph.outputs:
        if graph.is_constant(name):
            values[name] = emitter.constant(p.Constant(graph.constant(name), name))
    results = [
        _reshaped(builder, values[name], typ.get_shape())
        for name, typ in zip(graph.outputs, output_types, strict=True)
    ]
    builder.insert(func.ReturnOp(*results))
    main = func.FuncOp("main", (input_types, output_types), Region(block))
    return ModuleOp([main])


def _load(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file; OSError if it cannot be read, OnnxImportError if it is no model."""
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError as error:
        raise OnnxImportError(f"not an ONNX model ({error})") from None
    if not model.HasField("graph"):
        raise OnnxImportError("not an ONNX model (no graph)")
    return model


def import_model(model: onnx.ModelProto | str | os.PathLike) -> ModuleOp:
    """Import a float32 ONNX model (or the file at that path) as a verified tinyattn module.

    Raises OnnxImportError with a one-line message naming the node it cannot map."""
    if not isinstance(model, onnx.ModelProto):
        model = _load(model)
    graph = OnnxGraph(model)
    input_types = _input_types(graph)
    module = _build(graph, _plan(graph), input_types)
    try:
        module.verify()
    except VerifyException as error:
        message = " ".join(str(error).split())
        raise OnnxImportError(
            f"internal error: the imported module does not verify: {message}"
        ) from None
    return module
