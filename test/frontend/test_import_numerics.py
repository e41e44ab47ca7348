"""The imported module computes what the ONNX model computes (onnx.reference as the oracle),
for the bundled models and for a small graph per pattern variant they do not contain."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator
from onnx_graphs import GraphBuilder, assert_matches_onnx, attention, linear, tinyattn_ops

import tinyattn.models
from tinyattn.frontend.onnx_import import import_model
from tinyattn.semantics.interpreter import evaluate

MODELS = Path(tinyattn.models.__file__).parent
# Encoder blocks per bundled model (models/README.md).
BLOCKS = {"eeg": 2, "ecg": 1, "radar": 2, "cct": 1}

SEQ, EMBED, HEADS, HEAD_DIM = 5, 8, 2, 3  # H*P = 6 != E, so a wrong weight layout shows
INVERSE_SQRT_P = 1 / math.sqrt(HEAD_DIM)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_bundled_model_matches_onnx(name):
    assert_matches_onnx(str(MODELS / f"{name}.onnx"), seeds=(0, 1, 2))


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_bundled_model_has_one_mhsa_per_block(name):
    ops = tinyattn_ops(import_model(MODELS / f"{name}.onnx"))
    assert ops.count("tinyattn.mhsa") == BLOCKS[name]
    assert "tinyattn.softmax" not in ops


def test_import_accepts_path_objects():
    """The bundled-model tests pass a `str`, the hand-built ones a `ModelProto`."""
    assert_matches_onnx(MODELS / "ecg.onnx", seeds=(0,))


def _attention_model(**options):
    b = GraphBuilder([1, SEQ, EMBED])
    out = attention(b, "x", seq=SEQ, embed=EMBED, heads=HEADS, head_dim=HEAD_DIM, **options)
    return b.model(out)


@pytest.mark.parametrize(
    "options",
    [
        {"scalings": [("k", "Mul", INVERSE_SQRT_P)]},
        {"scalings": [("k", "Mul", INVERSE_SQRT_P)], "k_transposed_twice": True},
        {"scalings": [("q", "Mul", HEAD_DIM**-0.25), ("k", "Mul", HEAD_DIM**-0.25)]},
        {"scalings": [("q", "Div", 2.0), ("scores", "Mul", 2 * INVERSE_SQRT_P)]},
        {"scalings": [("scores", "Div", math.sqrt(HEAD_DIM))], "bias": False},
        {"scalings": [("q", "Mul", INVERSE_SQRT_P)], "split_shape": [0, 0, HEADS, -1]},
    ],
    ids=[
        "scale_on_k",
        "k_transposed_twice",
        "scale_on_q_and_k",
        "two_scales",
        "no_bias",
        "split_shape_0_and_-1",
    ],
)
def test_attention_variants_become_one_mhsa(options):
    module = assert_matches_onnx(_attention_model(**options))
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.mhsa", "tinyattn.reshape"]
    (mhsa,) = [op for op in module.walk() if op.name == "tinyattn.mhsa"]
    assert mhsa.scale.value.data == pytest.approx(INVERSE_SQRT_P, rel=1e-6)
    assert mhsa.heads == HEADS


def test_q_is_the_left_operand_of_the_scores():
    """Roles come from the score MatMul, not from node order: K's projection comes first here."""
    model = _attention_model(scalings=[("scores", "Div", math.sqrt(HEAD_DIM))], key_first=True)
    assert tinyattn_ops(assert_matches_onnx(model)).count("tinyattn.mhsa") == 1


def test_gemm_without_transposed_weight():
    b = GraphBuilder([1, EMBED])
    out = b.op("Gemm", "x", b.weight(EMBED, 4), b.bias(4), transB=0)
    assert tinyattn_ops(assert_matches_onnx(b.model(out))) == [
        "tinyattn.reshape",
        "tinyattn.linear",
        "tinyattn.reshape",
    ]


def test_matmul_without_bias():
    b = GraphBuilder([1, SEQ, EMBED])
    out = linear(b, "x", EMBED, 4, bias=False)
    assert "tinyattn.linear" in tinyattn_ops(assert_matches_onnx(b.model(out)))


def test_bias_added_first():
    b = GraphBuilder([1, SEQ, EMBED])
    out = b.op("Add", b.bias(4), b.op("MatMul", "x", b.weight(EMBED, 4)))
    assert tinyattn_ops(assert_matches_onnx(b.model(out))).count("tinyattn.linear") == 1


def test_gelu_op_of_opset_20():
    b = GraphBuilder([1, SEQ, EMBED], opset=20)
    out = b.op("Gelu", linear(b, "x", EMBED, 4))
    assert "tinyattn.gelu" in tinyattn_ops(assert_matches_onnx(b.model(out)))


def _erf_gelu(b: GraphBuilder, x: str, order: str) -> str:
    if order == "div":
        scaled = b.op("Div", x, b.const(1.4142135))
    else:
        scaled = b.op("Mul", b.const(1 / math.sqrt(2)), x)
    term = b.op("Add", b.const(1.0), b.op("Erf", scaled))
    half = b.const(0.5)
    if order == "half_first":
        return b.op("Mul", b.op("Mul", x, half), term)
    if order == "half_inner":
        return b.op("Mul", x, b.op("Mul", term, half))
    return b.op("Mul", b.op("Mul", x, term), half)


@pytest.mark.parametrize("order", ["div", "mul_inverse_sqrt2", "half_first", "half_inner"])
def test_erf_gelu_orders(order):
    b = GraphBuilder([1, SEQ, EMBED])
    out = _erf_gelu(b, linear(b, "x", EMBED, 4), order)
    ops = tinyattn_ops(assert_matches_onnx(b.model(out)))
    assert ops == ["tinyattn.reshape", "tinyattn.linear", "tinyattn.gelu", "tinyattn.reshape"]


def _decomposed_layernorm(b: GraphBuilder, x: str, affine: str) -> str:
    """`affine`: "none", "gamma" or "both"; opset 18 takes the ReduceMean axes as an input."""

    def mean(t: str) -> str:
        if b.opset >= 18:
            return b.op("ReduceMean", t, b.const([-1], np.int64), keepdims=1)
        return b.op("ReduceMean", t, axes=[-1], keepdims=1)

    centered = b.op("Sub", x, mean(x))
    variance = mean(b.op("Pow", centered, b.const(2.0)))
    y = b.op("Div", centered, b.op("Sqrt", b.op("Add", variance, b.const(1e-6))))
    if affine in ("gamma", "both"):
        y = b.op("Mul", b.const(1 + 0.1 * b.rng.standard_normal(EMBED)), y)
    if affine == "both":
        y = b.op("Add", b.bias(EMBED), y)
    return y


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("affine", ["none", "gamma", "both"])
def test_decomposed_layernorm(affine, opset):
    b = GraphBuilder([1, SEQ, EMBED], opset=opset)
    out = _decomposed_layernorm(b, "x", affine)
    module = assert_matches_onnx(b.model(out))
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.layernorm", "tinyattn.reshape"]
    (norm,) = [op for op in module.walk() if op.name == "tinyattn.layernorm"]
    assert norm.epsilon.value.data == pytest.approx(1e-6)


def test_layernorm_op_without_bias():
    b = GraphBuilder([1, SEQ, EMBED])
    out = b.op("LayerNormalization", "x", b.const(np.linspace(0.5, 1.5, EMBED)), epsilon=1e-3)
    assert "tinyattn.layernorm" in tinyattn_ops(assert_matches_onnx(b.model(out)))


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_mean_over_the_sequence(keepdims, opset):
    b = GraphBuilder([1, SEQ, EMBED], opset=opset)
    if opset >= 18:
        out = b.op("ReduceMean", "x", b.const([1], np.int64), keepdims=keepdims)
    else:
        out = b.op("ReduceMean", "x", axes=[1], keepdims=keepdims)
    assert "tinyattn.mean" in tinyattn_ops(assert_matches_onnx(b.model(out)))


def test_flatten_into_gemm():
    b = GraphBuilder([1, SEQ, EMBED])
    flat = b.op("Flatten", "x", axis=1)
    out = b.op("Gemm", flat, b.weight(3, SEQ * EMBED), b.bias(3), transB=1)
    assert tinyattn_ops(assert_matches_onnx(b.model(out))) == [
        "tinyattn.reshape",
        "tinyattn.reshape",
        "tinyattn.linear",
        "tinyattn.reshape",
    ]


def test_squeeze_and_unsqueeze_only_reshape():
    b = GraphBuilder([1, SEQ, EMBED])
    expanded = b.op("Unsqueeze", "x", b.const([2], np.int64))
    out = b.op("Relu", b.op("Squeeze", expanded, b.const([2], np.int64)))
    assert tinyattn_ops(assert_matches_onnx(b.model(out))).count("tinyattn.relu") == 1


def test_dropout_and_identity_pass_through():
    b = GraphBuilder([1, SEQ, EMBED])
    out = b.op("Relu", b.op("Identity", b.op("Dropout", "x", b.const(0.3))))
    assert tinyattn_ops(assert_matches_onnx(b.model(out))) == [
        "tinyattn.reshape",
        "tinyattn.relu",
        "tinyattn.reshape",
    ]


def test_constant_nodes_are_constants():
    """An encoder block whose every constant is a `Constant` node, not an initializer."""
    b = GraphBuilder([1, SEQ, EMBED], constant_nodes=True)
    x = attention(
        b,
        "x",
        seq=SEQ,
        embed=EMBED,
        heads=HEADS,
        head_dim=HEAD_DIM,
        scalings=[("scores", "Div", math.sqrt(HEAD_DIM))],
    )
    x = _decomposed_layernorm(b, x, "both")
    out = _erf_gelu(b, x, "div")
    assert tinyattn_ops(assert_matches_onnx(b.model(out))) == [
        "tinyattn.reshape",
        "tinyattn.mhsa",
        "tinyattn.layernorm",
        "tinyattn.gelu",
        "tinyattn.reshape",
    ]


def test_scalar_and_list_constant_nodes():
    """`Constant` nodes holding value_floats / value_float / value_ints rather than a tensor."""
    b = GraphBuilder([1, SEQ, EMBED])
    bias = b.op("Constant", value_floats=[0.1, -0.2, 0.3, 0.0])
    y = b.op("Add", b.op("MatMul", "x", b.weight(EMBED, 4)), bias)
    y = b.op("Dropout", y, b.op("Constant", value_float=0.2))
    out = b.op("Reshape", y, b.op("Constant", value_ints=[1, SEQ * 4]))
    assert tinyattn_ops(assert_matches_onnx(b.model(out))).count("tinyattn.linear") == 1


def test_constant_output():
    """A graph output that is a constant is returned as an `arith.constant`."""
    b = GraphBuilder([1, EMBED])
    logits = b.op("Relu", "x")
    prior = b.const(np.linspace(0, 1, 3))
    model = b.model(logits, prior)
    module = import_model(model)
    x = np.ones((1, EMBED), np.float32)
    for actual, expected in zip(
        evaluate(module, [x]), ReferenceEvaluator(model).run(None, {"x": x}), strict=True
    ):
        np.testing.assert_array_equal(actual, expected)


def test_softmax_over_the_last_axis():
    b = GraphBuilder([1, SEQ, EMBED])
    out = b.op("Softmax", "x", axis=2)
    assert "tinyattn.softmax" in tinyattn_ops(assert_matches_onnx(b.model(out)))


def test_softmax_default_axis_before_opset_13():
    b = GraphBuilder([1, EMBED], opset=11)
    out = b.op("Softmax", "x")
    assert "tinyattn.softmax" in tinyattn_ops(assert_matches_onnx(b.model(out)))
