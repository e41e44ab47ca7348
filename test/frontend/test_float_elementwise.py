"""The float ops exporters emit around quantization and in hand-written blocks: Sigmoid, Sqrt,
Round, Clip, Pow by a constant, Max/Min and Add/Sub/Mul/Div of two activations that broadcast
(`tinyattn.map`), and Softmax over another axis than the last (sequence pooling); against ONNX's
reference, in the interpreter and compiled on the targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator
from onnx_graphs import GraphBuilder, assert_matches_onnx, tinyattn_ops
from requires import target_param

from tinyattn.api import run
from tinyattn.frontend.onnx_import import import_model
from tinyattn.semantics.interpreter import evaluate

SEQ, EMBED = 4, 6


def _unary(op_type: str, *constants, **attrs):
    b = GraphBuilder([1, SEQ, EMBED])
    inputs = [b.const(c) for c in constants]
    return b, b.op(op_type, "x", *inputs, **attrs)


@pytest.mark.parametrize(
    ("op_type", "constants"),
    [
        ("Sigmoid", ()),
        ("Round", ()),
        ("Clip", (-0.5, 0.75)),
        ("Pow", (2.0,)),
        ("Pow", (5.0,)),
    ],
    ids=["sigmoid", "round", "clip", "square", "fifth"],
)
def test_unary_ops_match_onnx(op_type, constants):
    b, y = _unary(op_type, *constants)
    module = assert_matches_onnx(b.model(y))
    assert "tinyattn.map" in tinyattn_ops(module)


def test_sqrt_and_half_power():
    b = GraphBuilder([1, SEQ, EMBED])
    positive = b.op("Add", b.op("Relu", "x"), b.const(0.1))
    y = b.op("Add", b.op("Sqrt", positive), b.op("Pow", positive, b.const(0.5)))
    assert_matches_onnx(b.model(y))


def test_round_ties_to_even():
    b, y = _unary("Round")
    model = b.model(y)
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.49, 2.0**23 + 1, -7.5, 0.0, 1e9, 4.5])
    x = np.resize(x, (1, SEQ, EMBED)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    (actual,) = evaluate(import_model(model), [x])
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_ops_of_activations_broadcast(op_type):
    b = GraphBuilder([1, SEQ, EMBED])
    gate = b.op("Sigmoid", b.op("ReduceMean", "x", axes=[-1], keepdims=1))  # [1, S, 1]
    positive = b.op("Add", b.op("Relu", "x"), b.const(0.5))
    module = assert_matches_onnx(b.model(b.op(op_type, gate, positive)))
    assert "tinyattn.map" in tinyattn_ops(module)


def _sequence_pooling(b: GraphBuilder) -> str:
    """Softmax over the sequence of one score per token, then the scores' weighted tokens: a
    compact transformer's sequence pooling."""
    scores = b.op("MatMul", "x", b.weight(EMBED, 1))  # [1, S, 1]
    weights = b.op("Softmax", scores, axis=1)
    pooled = b.op("MatMul", b.op("Transpose", weights, perm=[0, 2, 1]), "x")  # [1, 1, E]
    return b.op("Flatten", pooled, axis=1)


def test_softmax_over_the_sequence():
    b = GraphBuilder([1, SEQ, EMBED])
    module = assert_matches_onnx(b.model(_sequence_pooling(b)))
    assert "tinyattn.transpose" in tinyattn_ops(module)


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_float_ops_compile_and_run(target):
    b = GraphBuilder([1, SEQ, EMBED])
    gate = b.op("Sigmoid", b.op("ReduceMean", "x", axes=[-1], keepdims=1))
    y = b.op("Clip", b.op("Mul", gate, b.op("Pow", "x", b.const(3.0))), b.const(-1.0), b.const(1.0))
    y = b.op("Add", b.op("Round", b.op("Mul", y, b.const(4.0))), "x")
    model = b.model(b.op("Mul", _sequence_pooling(b), b.op("Flatten", b.op("ReduceMean", y, axes=[1], keepdims=1), axis=1)))
    x = np.random.default_rng(3).standard_normal((1, SEQ, EMBED)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    report = run(import_model(model), target, inputs=[x], expect=[expected])
    assert report.match, report.format()
