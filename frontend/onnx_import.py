"""Import an ONNX transformer encoder into the tinyattn dialect: a float32 one as PyTorch
exports it, or an integerised one as QuantLib/Deeploy export it (frontend/integer.py), into the
int8 form of the ops.

The result is `func.func @main` taking and returning the graph's tensors with their exact
shapes; inside, activations drop the batch dimension of 1 (the ops work on [S, E]), weights are
`arith.constant`s and every computation is a tinyattn op.

Import runs in two steps. Planning walks the nodes from the last to the first and, at each node
not yet claimed, tries the patterns registered for its op type (`PATTERNS`, or
`INTEGER_PATTERNS` for an integerised graph), largest first; a pattern claims the whole
subgraph it recognises (e.g. the ~20 nodes of an attention). Walking backwards lets a pattern be
recognised from its last node before its inner nodes are seen. The first node no pattern
applies to is reported, unless a pattern finds something no pattern could import (a malformed
QuantLib node), which it reports at once. Emission then builds each match's ops in graph order.
"""

from __future__ import annotations

import os

import onnx
from google.protobuf.message import DecodeError
from xdsl.builder import Builder
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import VerifyException

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import ONNX_NAME_ATTR, ONNX_NODE_ATTR
from tinyattn.frontend import integer as q
from tinyattn.frontend import patterns as p
from tinyattn.frontend.arrays import Arrays
from tinyattn.frontend.attention import attention_pattern, integer_attention_pattern
from tinyattn.frontend.onnx_graph import (
    OTHER_DOMAINS,
    Mismatch,
    Node,
    OnnxGraph,
    OnnxImportError,
    element_type_name,
)

__all__ = [
    "INTEGER_PATTERNS",
    "OnnxImportError",
    "PATTERNS",
    "import_model",
    "model_from_bytes",
    "supported_ops",
]


# The patterns tried at a node of each op type, most specific first. When none applies, the
# last one's reason is reported; op types not listed are unsupported.
PATTERNS: dict[str, tuple[p.Pattern, ...]] = {
    "Add": (
        attention_pattern,
        p.layernorm_decomposition,
        p.linear_pattern,
        p.add,
    ),
    "MatMul": (attention_pattern, p.matmul),
    "Gemm": (p.linear_pattern,),
    "Mul": (p.layernorm_decomposition, p.gelu_decomposition, p.arithmetic),
    "Div": (p.layernorm_decomposition, p.arithmetic),
    "Relu": (p.relu,),
    "Conv": (p.conv,),
    "MaxPool": (p.maxpool,),
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
    "Transpose": (p.transpose,),
    "Concat": (p.concat,),
    "Slice": (p.slice_,),
    "Gather": (p.gather,),
    "Sub": (p.arithmetic,),
    "Pow": (p.power,),
    "Sqrt": (p.float_map,),
    "Sigmoid": (p.float_map,),
    "Round": (p.float_map,),
    "Max": (p.float_map,),
    "Min": (p.float_map,),
    "Clip": (p.clip,),
    "Erf": (p.only_inside("a GELU pattern"),),
    # Readable Constant nodes are constants and never matched; this explains the others.
    "Constant": (p.unreadable_constant,),
}

# The patterns of an integerised (QuantLib/Deeploy) graph. A RequantShift folds into the op
# computing its int32 input where that op can narrow its result; else it stays a requant.
INTEGER_PATTERNS: dict[str, tuple[p.Pattern, ...]] = {
    "RequantShift": (
        integer_attention_pattern,
        q.requantized(q.linear),
        q.requantized(q.matmul),
        q.requantized(q.conv, channels_first=True),
        q.requantized(q.igelu),
        q.requantized(q.add),
        q.table,
        q.requant,
    ),
    "iHardswish": (q.table,),
    "TrueIntegerDiv": (q.table,),
    "iNoNorm": (q.inonorm,),
    "iRMSNorm": (q.irmsnorm,),
    "iLayerNorm": (q.ilayernorm,),
    "iGELU": (q.accumulating(q.igelu),),
    "ITAMax": (q.itamax,),
    "IntegerMean": (q.mean,),
    "MatMul": (q.accumulating(q.matmul),),
    "Gemm": (q.accumulating(q.linear),),
    "Add": (q.accumulating(q.linear), q.accumulating(q.add)),
    "iSoftmax": (q.isoftmax,),
    "Conv": (q.accumulating(q.conv),),
    "MaxPool": (p.maxpool,),
    "Relu": (p.relu,),
    "ReduceMean": (q.mean,),
    "Reshape": (p.reshape,),
    "Flatten": (p.reshape,),
    "Squeeze": (p.reshape,),
    "Unsqueeze": (p.reshape,),
    "Identity": (p.identity,),
    "Transpose": (p.transpose,),
    "Concat": (p.concat,),
    "Slice": (p.slice_,),
    "Gather": (p.gather,),
    "Constant": (p.unreadable_constant,),
}


def supported_ops() -> str:
    """Every ONNX op the importer reads and what each pattern makes of it, float and integer
    graphs, for `tinyattn-import --list-ops`."""
    lines = []
    for title, table in (
        ("Float graphs (PyTorch exports)", PATTERNS),
        ("Integer graphs (QuantLib/Deeploy integerised ONNX)", INTEGER_PATTERNS),
    ):
        lines += ["", f"{title}:"]
        for op_type, patterns in sorted(table.items(), key=lambda item: item[0].lower()):
            domains = [d for d, ops in OTHER_DOMAINS.items() if op_type in ops]
            shown = op_type + "".join(f", {domain}::{op_type}" for domain in domains)
            lines.append(f"  {shown}")
            lines += [f"    - {p.summary(pattern)}" for pattern in patterns]
    header = (
        "ONNX ops tinyattn-import reads; at each node the patterns are tried in this order, "
        "the first that applies claims the subgraph it recognises."
    )
    return "\n".join([header, *lines]) + "\n"


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
    integer = isinstance(graph, q.IntegerGraph)
    table = INTEGER_PATTERNS if integer else PATTERNS
    patterns = table.get(node.op_type) if node.in_known_domain else None
    if not patterns:
        raise Mismatch("unsupported op type" + (" in an integer graph" if integer else ""))
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


def _static_shape(graph: OnnxGraph, name: str, what: str) -> tuple[int, ...]:
    """The shape of a graph input or output, which must be static and of an element type the
    graph's kind reads: float32 (integerised graphs hold their integers in float32 tensors
    too), or for an integer graph int8, uint8 or int32."""
    element = graph.element_type(name)
    integer = isinstance(graph, q.IntegerGraph)
    if element != onnx.TensorProto.FLOAT and not (
        integer and element in q.DECLARED_INTEGER_TYPES
    ):
        supported = "float32, int8, uint8 or int32" if integer else "float32"
        raise OnnxImportError(
            f"{what} '{name}': element type {element_type_name(element)} is not supported; "
            f"only {supported}"
        )
    try:
        return graph.shape(name)
    except Mismatch as mismatch:
        raise OnnxImportError(f"{what} '{name}': {mismatch.reason}") from None


def _input_element(graph: OnnxGraph, name: str) -> Attribute:
    return graph.input_types[name] if isinstance(graph, q.IntegerGraph) else f32


def _input_types(graph: OnnxGraph) -> list[TensorType]:
    """The function's argument types: the graph's inputs with the shapes they are exported with
    (a leading dimension other than 1 is kept: row-wise ops fold it into their rows)."""
    input_types = [
        TensorType(_input_element(graph, name), _static_shape(graph, name, "input"))
        for name in graph.inputs
    ]
    for name, typ in zip(graph.inputs, input_types, strict=True):
        if not typ.get_shape():
            raise OnnxImportError(f"input '{name}': scalar inputs are not supported")
    return input_types


def _named(name: str) -> DictionaryAttr:
    """The argument or result attributes that record an ONNX tensor name."""
    return DictionaryAttr({ONNX_NAME_ATTR: StringAttr(name)})


def _reshaped(builder: Builder, value: SSAValue, shape: tuple[int, ...]) -> SSAValue:
    if value.type.get_shape() == shape:
        return value
    return builder.insert(ta.ReshapeOp(value, shape)).result


def _build(graph: OnnxGraph, matches: list[p.Match], input_types: list[TensorType]) -> ModuleOp:
    output_shapes = [_static_shape(graph, name, "output") for name in graph.outputs]
    block = Block(arg_types=input_types)
    builder = Builder(InsertPoint.at_end(block))
    values: dict[str, SSAValue] = {}
    for name, arg in zip(graph.inputs, block.args, strict=True):
        arg.name_hint = p.ssa_name(name)
        values[name] = _reshaped(builder, arg, p.squeeze_batch(arg.type.get_shape()))
    emitter = p.Emitter(builder, values)
    for match in matches:
        name = match.root.outputs[0]
        emitted = len(block.ops)
        result = match.emit(emitter)
        for op in list(block.ops)[emitted:]:
            try:
                op.verify()
            except VerifyException as error:
                reason = " ".join(str(error).split()).removeprefix("Operation does not verify: ")
                raise OnnxImportError(f"{match.root.label()}: {reason}") from None
            if op.dialect_name() == "tinyattn":
                node = match.root.proto.name or match.root.outputs[0]
                op.attributes[ONNX_NODE_ATTR] = StringAttr(node)
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
        _reshaped(builder, values[name], shape)
        for name, shape in zip(graph.outputs, output_shapes, strict=True)
    ]
    builder.insert(func.ReturnOp(*results))
    output_types = [result.type for result in results]
    main = func.FuncOp(
        "main",
        (input_types, output_types),
        Region(block),
        arg_attrs=ArrayAttr([_named(name) for name in graph.inputs]),
        res_attrs=ArrayAttr([_named(name) for name in graph.outputs]),
    )
    return ModuleOp([main])


def _load(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file; OSError if it cannot be read, OnnxImportError if it is no model."""
    with open(path, "rb") as stream:
        return model_from_bytes(stream.read())


def model_from_bytes(data: bytes) -> onnx.ModelProto:
    """The ONNX model serialized in `data`; OnnxImportError if it is no model."""
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError as error:
        raise OnnxImportError(f"not an ONNX model ({error})") from None
    if not model.HasField("graph"):
        raise OnnxImportError("not an ONNX model (no graph)")
    return model


def import_model(
    model: onnx.ModelProto | str | os.PathLike, sample_inputs: Arrays | None = None
) -> ModuleOp:
    """Import an ONNX model (or the file at that path) as a verified tinyattn module.

    An integer graph (one of QuantLib's ops, int8/uint8/int32 graph inputs or
    outputs, or integer sample arrays: `is_integer_model`) is imported in int8 form. A float32
    input's signedness is not in the graph: `sample_inputs` (arrays by input name, else in
    order) give it the smallest type holding its values, unsigned first, as Deeploy does
    (0..254 -> ui8); without them it is i8. A float graph only counts their dtypes.

    Raises OnnxImportError with a one-line message naming the node it cannot map."""
    if not isinstance(model, onnx.ModelProto):
        model = _load(model)
    integer = q.is_integer_model(model, sample_inputs)
    graph = q.IntegerGraph(model, sample_inputs) if integer else OnnxGraph(model)
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
