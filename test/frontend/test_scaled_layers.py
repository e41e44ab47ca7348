"""Constant scalings and offsets that broadcast (`tinyattn.muladd`): Gemm with alpha, beta,
transB and a bias matrix, a MatMul plus a matrix, an activation plus, minus, times or divided by
a constant (positional embeddings), a per-row or per-sequence RequantShift and QuantLib's
iNoNorm; against ONNX's reference (float) or the integer oracle (bit for bit), in the
interpreter and compiled on the targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator
from onnx_graphs import (
    GraphBuilder,
    _float_attr,
    assert_integer_matches_onnx,
    assert_matches_onnx,
    int_linear,
    int_weight,
    requant_shift,
    run_integer_onnx,
    tinyattn_ops,
)
from requires import target_param

from tinyattn.api import run
from tinyattn.frontend.onnx_import import import_model

ROWS, DEPTH, WIDTH = 6, 8, 5
RNG = np.random.default_rng(23)


def _gemm(b: GraphBuilder, c_shape, **attrs) -> str:
    weight = b.weight(WIDTH, DEPTH) if attrs.get("transB") else b.weight(DEPTH, WIDTH)
    inputs = [weight] if c_shape is None else [weight, b.const(RNG.normal(size=c_shape))]
    return b.op("Gemm", "x", *inputs, **attrs)


@pytest.mark.parametrize(
    ("c_shape", "attrs"),
    [
        ((ROWS, WIDTH), {"alpha": 2.0, "beta": 0.5, "transB": 1}),
        ((ROWS, 1), {"beta": -1.5}),
        ((WIDTH,), {"alpha": 0.25}),
        (None, {"alpha": 3.0, "transB": 1}),
    ],
    ids=["matrix", "per_row", "vector", "no_c"],
)
def test_gemm_matches_onnx(c_shape, attrs):
    b = GraphBuilder([ROWS, DEPTH])
    module = assert_matches_onnx(b.model(_gemm(b, c_shape, **attrs)))
    assert ("tinyattn.muladd" in tinyattn_ops(module)) == (c_shape not in (None, (WIDTH,)))


@pytest.mark.parametrize(
    ("op_type", "constant_first", "shape"),
    [
        ("Add", False, (1, 4, DEPTH)),  # a positional embedding
        ("Add", True, (DEPTH,)),
        ("Sub", False, (4, 1)),
        ("Sub", True, ()),
        ("Mul", False, (DEPTH,)),
        ("Div", False, ()),
    ],
)
def test_an_activation_and_a_constant(op_type, constant_first, shape):
    b = GraphBuilder([1, 4, DEPTH])
    constant = b.const(RNG.uniform(0.5, 2.0, shape))
    operands = (constant, "x") if constant_first else ("x", constant)
    module = assert_matches_onnx(b.model(b.op("Relu", b.op(op_type, *operands))))
    computed = [op for op in tinyattn_ops(module) if op != "tinyattn.reshape"]
    assert computed == ["tinyattn.muladd", "tinyattn.relu"]


def test_matmul_plus_a_matrix():
    b = GraphBuilder([1, 4, DEPTH])
    product = b.op("MatMul", "x", b.weight(DEPTH, WIDTH))
    assert_matches_onnx(b.model(b.op("Add", product, b.const(RNG.normal(size=(1, 4, WIDTH))))))


def _int_gemm(b: GraphBuilder) -> str:
    """Deeploy's RQPerRow: alpha 2, beta 3, a bias matrix, a RequantShift per row."""
    c = b.const(RNG.integers(-300, 300, (ROWS, WIDTH)))
    y = b.op("Gemm", "x", int_weight(b, DEPTH, WIDTH), c, alpha=2.0, beta=3.0)
    return requant_shift(b, y, RNG.integers(1, 9, (ROWS, 1)), RNG.integers(-50, 50, (ROWS, 1)))


def _per_sequence_requant(b: GraphBuilder) -> str:
    """A vector along axis 1 of [1, S, E] (channels-first): one multiplier per position."""
    return requant_shift(b, int_linear(b, "x", DEPTH, WIDTH), np.arange(1, ROWS + 1))


def _inonorm(b: GraphBuilder) -> str:
    weight = b.const(RNG.integers(-120, 128, (ROWS, DEPTH)))
    bias = b.const(RNG.integers(-5000, 5000, DEPTH))
    attrs = {"D": _float_attr([2**16]), "mul": _float_attr([425]), "n_levels": _float_attr([256])}
    return b.op("iNoNorm", "x", weight, bias, **attrs)


@pytest.mark.parametrize(
    ("build", "shape"),
    [(_int_gemm, (ROWS, DEPTH)), (_per_sequence_requant, (1, ROWS, DEPTH)), (_inonorm, (1, ROWS, DEPTH))],
    ids=["gemm_per_row", "per_sequence", "inonorm"],
)
def test_integer_scalings_match_the_oracle(build, shape):
    b = GraphBuilder(list(shape))
    module = assert_integer_matches_onnx(b.model(build(b)), [RNG.integers(-128, 128, shape)])
    assert "tinyattn.muladd" in tinyattn_ops(module)


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_scalings_compile_and_run(target):
    b = GraphBuilder([ROWS, DEPTH])
    model = b.model(_int_gemm(b))
    x = RNG.integers(-128, 128, (ROWS, DEPTH))
    (expected,) = run_integer_onnx(model, [x])
    report = run(import_model(model, [x]), target, inputs=[x], expect=[expected])
    assert report.match and report.max_abs_error == 0
    b = GraphBuilder([ROWS, DEPTH])
    model = b.model(_gemm(b, (ROWS, 1), alpha=2.0, beta=0.5))
    x = RNG.standard_normal((ROWS, DEPTH)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert run(import_model(model), target, inputs=[x], expect=[expected]).match


def test_integer_gemm_scales_the_product_not_the_bias():
    """alpha·x·W + beta·C with a vector C: alpha must not scale C."""
    b = GraphBuilder([ROWS, DEPTH])
    c = b.const(RNG.integers(-300, 300, WIDTH))
    model = b.model(b.op("Gemm", "x", int_weight(b, DEPTH, WIDTH), c, alpha=2.0, beta=3.0))
    assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (ROWS, DEPTH))])
