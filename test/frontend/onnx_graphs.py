"""Builders for the small ONNX graphs the importer tests use (`onnx.helper` only, no torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from tinyattn.dialects.interpreter import evaluate
from tinyattn.frontend.onnx_import import import_model


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
