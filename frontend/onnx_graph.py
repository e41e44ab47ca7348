"""A read-only view of an ONNX graph for pattern matching: producers, consumers, constants and
static shapes, with the diagnostics the importer reports about them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

# ONNX's default domain, where the importer's ops live, QuantLib's included.
DEFAULT_DOMAINS = ("", "ai.onnx")
# QuantLib's integer ops: unknown to ONNX shape inference (which leaves their outputs untyped)
# and shape-preserving.
QUANTLIB_OPS = (
    "RequantShift",
    "iSoftmax",
    "iHardswish",
    "TrueIntegerDiv",
    "iNoNorm",
    "iRMSNorm",
    "iLayerNorm",
    "iGELU",
    "IntegerMean",
    "ITAMax",
)
# The other domains whose ops the importer reads, and which ones: QuantLib's integer ops are
# exported in the default domain (Deeploy), onnxruntime-extensions' `ai.onnx.contrib` or
# QuantLib's own `PACTOps`; onnxruntime's `com.microsoft::Gelu` is ONNX's exact-erf Gelu.
OTHER_DOMAINS = {
    "ai.onnx.contrib": QUANTLIB_OPS,
    "PACTOps": QUANTLIB_OPS,
    "com.microsoft": ("Gelu",),
}

# Constant node attributes holding a numeric value, and the dtype each one means.
_CONSTANT_ATTRIBUTES = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


class OnnxImportError(Exception):
    """A model the importer cannot translate; the message is one line for the user."""


class Mismatch(Exception):
    """A pattern does not apply at a node; `reason` explains why, for the diagnostic that is
    reported when no pattern applies."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Node:
    """An ONNX node with its position; hashable by identity so matches can be sets of nodes."""

    proto: onnx.NodeProto
    index: int

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def in_default_domain(self) -> bool:
        return self.proto.domain in DEFAULT_DOMAINS

    @property
    def in_known_domain(self) -> bool:
        """In the default domain, or one of the ops read from another (`OTHER_DOMAINS`)."""
        return self.in_default_domain or self.op_type in OTHER_DOMAINS.get(self.proto.domain, ())

    @property
    def is_quantlib(self) -> bool:
        """One of QuantLib's integer ops, in any domain it is exported in."""
        return self.op_type in QUANTLIB_OPS and self.in_known_domain

    @property
    def inputs(self) -> Sequence[str]:
        return self.proto.input

    @property
    def outputs(self) -> Sequence[str]:
        return self.proto.output

    def input(self, index: int) -> str:
        """The name of input `index`, "" when the optional input is absent."""
        return self.proto.input[index] if index < len(self.proto.input) else ""

    def attr(self, name: str, default=None):
        """The value of an attribute (strings decoded), `default` when it is absent."""
        for attribute in self.proto.attribute:
            if attribute.name == name:
                value = helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def label(self) -> str:
        """How diagnostics name the node: its name, or its first output when unnamed."""
        domain = "" if self.in_default_domain else f" in domain '{self.proto.domain}'"
        return f"node '{self.proto.name or self.outputs[0]}' ({self.op_type}{domain})"


def _type_table(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    infos = [*graph.input, *graph.output, *graph.value_info]
    return {info.name: info.type for info in infos}


def _inferred_types(
    model: onnx.ModelProto, declared: dict[str, onnx.TypeProto]
) -> dict[str, onnx.TypeProto]:
    """The types ONNX shape inference finds. It gives up on a whole model with an op it does
    not know (a custom domain); the declared types are kept then, and the unknown op is
    reported when it is reached. The ops it does not know but the importer reads it skips,
    leaving what follows them unknown: their outputs are declared (`_quantlib_result`) and
    inference runs again."""
    learnt: set[str] = set()
    while True:
        try:
            types = _type_table(onnx.shape_inference.infer_shapes(model).graph)
        except onnx.shape_inference.InferenceError:
            return declared
        infos = [
            _quantlib_result(node, types[node.input[0]])
            for node in model.graph.node
            if _unknown_to_onnx(Node(node, 0))
            and node.input
            and node.output
            and node.output[0] not in learnt
            and _has_shape(types.get(node.input[0]))
            and not _has_shape(types.get(node.output[0]))
        ]
        if not infos:
            return types
        learnt.update(info.name for info in infos)
        extended = onnx.ModelProto()
        extended.CopyFrom(model)
        extended.graph.value_info.extend(infos)
        model = extended


def _unknown_to_onnx(node: Node) -> bool:
    """An op the importer reads that ONNX shape inference does not know: QuantLib's, and the
    ones of other domains (com.microsoft::Gelu); all keep their operand's shape but
    IntegerMean."""
    return node.is_quantlib or (node.in_known_domain and not node.in_default_domain)


def _quantlib_result(node: onnx.NodeProto, operand: onnx.TypeProto) -> onnx.ValueInfoProto:
    """The type of a QuantLib op's result: its operand's, reduced over `axes` for
    IntegerMean (a mean, like ReduceMean)."""
    if node.op_type != "IntegerMean":
        return helper.make_value_info(node.output[0], operand)
    dims = [d.dim_value for d in operand.tensor_type.shape.dim]
    axes = {a % len(dims) for a in Node(node, 0).attr("axes", range(len(dims)))}
    keep = Node(node, 0).attr("keepdims", 1)
    shape = [1 if a in axes else d for a, d in enumerate(dims) if keep or a not in axes]
    return helper.make_tensor_value_info(node.output[0], operand.tensor_type.elem_type, shape)


def _has_shape(typ: onnx.TypeProto | None) -> bool:
    return typ is not None and typ.tensor_type.HasField("shape")


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a `Constant` node, or None for the kinds the importer does not read
    (sparse tensors, strings)."""
    if len(node.attribute) != 1:
        return None
    (attribute,) = node.attribute
    if attribute.name == "value":
        return numpy_helper.to_array(attribute.t)
    dtype = _CONSTANT_ATTRIBUTES.get(attribute.name)
    if dtype is None:
        return None
    return np.asarray(helper.get_attribute_value(attribute), dtype)


def check_model(model: onnx.ModelProto) -> None:
    """Refuse, with one line, what no pattern should see: a model newer than the ONNX library
    that reads it, a float initializer holding NaN or infinity, nodes sharing a name, and a node
    reading a value no earlier node, input or initializer provides (a cycle, or nodes out of
    topological order)."""
    if model.ir_version > onnx.IR_VERSION:
        raise OnnxImportError(
            f"IR version {model.ir_version} is newer than this importer reads "
            f"(up to {onnx.IR_VERSION})"
        )
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS and entry.version > newest:
            raise OnnxImportError(
                f"opset {entry.version} is newer than this importer reads (up to {newest})"
            )
    graph, named = model.graph, set()
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise OnnxImportError(f"initializer '{init.name}' holds NaN or infinite values")
    known = {info.name for info in graph.input} | {init.name for init in graph.initializer}
    for index, node in enumerate(graph.node):
        label = Node(node, index).label()
        if node.name and node.name in named:
            raise OnnxImportError(f"two nodes are named '{node.name}'; node names must be unique")
        named.add(node.name)
        for name in node.input:
            if name and name not in known:
                raise OnnxImportError(
                    f"{label} reads '{name}' before any node computes it (the graph has a "
                    "cycle or is not in topological order)"
                )
        known.update(node.output)


class OnnxGraph:
    """The main graph of a model, with shapes completed by ONNX shape inference if the model
    does not carry them for every value."""

    def __init__(self, model: onnx.ModelProto):
        check_model(model)
        graph = model.graph
        types = _type_table(graph)
        if any(
            out and not _has_shape(types.get(out)) for node in graph.node for out in node.output
        ):
            types = _inferred_types(model, types)
        self._types = types
        self.opset = next(
            (entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 1
        )
        self.nodes = [Node(proto, index) for index, proto in enumerate(graph.node)]
        self._constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = _constant_node_value(node)
                if value is not None:
                    self._constants[node.output[0]] = value
        self.inputs = [info.name for info in graph.input if info.name not in self._constants]
        self.outputs = [info.name for info in graph.output]
        self._producers = {out: node for node in self.nodes for out in node.outputs if out}
        self._consumers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                self._consumers.setdefault(name, []).append(node)

    def producer(self, name: str) -> Node | None:
        return self._producers.get(name)

    def producer_of(self, name: str, op_type: str | None = None) -> Node:
        """The node computing `name`, which the pattern being matched needs to exist (and to be
        an `op_type`, if given)."""
        node = self._producers.get(name)
        if node is None or op_type not in (None, node.op_type):
            raise Mismatch(f"'{name}' is not computed by {op_type or 'a node'}")
        return node

    def consumers(self, name: str) -> list[Node]:
        return self._consumers.get(name, [])

    def is_output(self, name: str) -> bool:
        return name in self.outputs

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or `Constant` output, None for anything computed."""
        return self._constants.get(name)

    def is_constant(self, name: str) -> bool:
        return name in self._constants

    def element_type(self, name: str) -> int:
        """The ONNX `TensorProto` data type of a value (UNDEFINED if unknown)."""
        if name in self._constants:
            return helper.np_dtype_to_tensor_dtype(self._constants[name].dtype)
        typ = self._types.get(name)
        return typ.tensor_type.elem_type if typ is not None else onnx.TensorProto.UNDEFINED

    def shape(self, name: str) -> tuple[int, ...]:
        """The static shape of a value; the importer needs every shape to be known."""
        if name in self._constants:
            return self._constants[name].shape
        typ = self._types.get(name)
        if not _has_shape(typ):
            raise Mismatch(f"the shape of tensor '{name}' is unknown; static shapes are required")
        dims = []
        for axis, dim in enumerate(typ.tensor_type.shape.dim):
            if not dim.HasField("dim_value"):
                symbol = f" '{dim.dim_param}'" if dim.dim_param else ""
                raise Mismatch(
                    f"tensor '{name}' has a symbolic dimension{symbol} (axis {axis}); "
                    "static shapes are required"
                )
            if dim.dim_value <= 0:
                raise Mismatch(
                    f"tensor '{name}' has dimension {dim.dim_value} (axis {axis}); every "
                    "dimension must be positive"
                )
            dims.append(dim.dim_value)
        return tuple(dims)


def element_type_name(data_type: int) -> str:
    return onnx.TensorProto.DataType.Name(data_type)


def normalize_axis(axis: int, rank: int) -> int:
    """An ONNX axis (negative counts from the end) as an index in [0, rank)."""
    if not -rank <= axis < rank:
        raise Mismatch(f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def resolve_reshape(
    input_shape: Sequence[int], target: Sequence[int], allowzero: bool = False
) -> tuple[int, ...]:
    """The output shape of ONNX `Reshape`: 0 copies the input dimension (unless `allowzero`),
    one -1 takes what is left."""
    copies = [axis for axis, dim in enumerate(target) if dim == 0 and not allowzero]
    if any(axis >= len(input_shape) for axis in copies):
        raise Mismatch(f"cannot reshape {list(input_shape)} to {list(target)}")
    dims = [input_shape[axis] if axis in copies else int(dim) for axis, dim in enumerate(target)]
    total = math.prod(input_shape)
    if dims.count(-1) == 1:
        known = math.prod(dim for dim in dims if dim != -1)
        dims[dims.index(-1)] = total // known if known else 0
    if any(dim < 0 for dim in dims) or math.prod(dims) != total:
        raise Mismatch(f"cannot reshape {list(input_shape)} to {list(target)}")
    return tuple(dims)
