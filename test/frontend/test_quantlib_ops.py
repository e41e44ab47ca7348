"""QuantLib's integer ops without test vectors in Deeploy's set, pinned by their QuantLib and
Deeploy definitions: iGELU (I-BERT's integer GELU; its RequantShift folds in), IntegerMean
(rounded half up), ITAMax (ITA's softmax) and iLayerNorm (its product in 64 bits); bit for bit
against oracles written from those definitions, and on the targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper
from onnx_graphs import GraphBuilder, assert_integer_matches_onnx, requant_shift, run_integer_onnx
from requires import target_param

from tinyattn.api import run
from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.onnx_import import OnnxImportError, import_model

SEQ, EMBED = 6, 8
RNG = np.random.default_rng(41)


def _igelu(b: GraphBuilder, requantized: bool) -> str:
    y = b.op("iGELU", "x", b=-80, one=6980)
    return requant_shift(b, y, 3, div=2**16) if requantized else y


@pytest.mark.parametrize("requantized", [False, True], ids=["int32", "requantized"])
def test_igelu_matches_the_oracle(requantized):
    b = GraphBuilder([1, SEQ, EMBED])
    module = assert_integer_matches_onnx(
        b.model(_igelu(b, requantized)), [RNG.integers(-128, 128, (1, SEQ, EMBED))]
    )
    (gelu,) = [op for op in module.walk() if isinstance(op, ta.GeluOp)]
    assert gelu.igelu == ta.IGeluAttr(-80, 6980) and (gelu.requant is not None) == requantized


def test_integer_mean_matches_the_oracle():
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(b.op("IntegerMean", "x", axes=[1], keepdims=0))
    assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (1, SEQ, EMBED))])


def _itamax(b: GraphBuilder) -> str:
    return b.op("ITAMax", "x", n_levels=numpy_helper.from_array(np.array([256.0], np.float32)))


def test_itamax_matches_the_oracle():
    b = GraphBuilder([1, SEQ, EMBED])
    module = assert_integer_matches_onnx(
        b.model(_itamax(b)), [RNG.integers(-128, 128, (1, SEQ, EMBED))]
    )
    (softmax,) = [op for op in module.walk() if isinstance(op, ta.SoftmaxOp)]
    assert softmax.itamax is not None and softmax.result.type.get_element_type() == ta.ui8


def _ilayernorm(b: GraphBuilder) -> str:
    """QuantLib's weights carry a scaler near 2^24, so `d * weight` needs 64 bits."""
    weight = b.const(RNG.integers(-(2**25), 2**25, EMBED))
    bias = b.const(RNG.integers(-(2**22), 2**22, EMBED))
    return b.op("iLayerNorm", "x", weight, bias, D=2.0**24, n_levels=256.0)


def test_ilayernorm_matches_the_oracle():
    """Random rows, a constant row (den = 1), and rows at the 8-bit extremes (|d| = 255)."""
    b = GraphBuilder([1, SEQ, EMBED])
    x = RNG.integers(-128, 128, (1, SEQ, EMBED))
    x[0, 1] = 7
    x[0, 2] = [-128] * (EMBED - 1) + [127]
    x[0, 3] = [127] * (EMBED - 1) + [-128]
    module = assert_integer_matches_onnx(b.model(_ilayernorm(b)), [x])
    (norm,) = [op for op in module.walk() if isinstance(op, ta.LayerNormOp)]
    assert norm.ilayernorm == ta.QuantLibLayerNormAttr(24)
    assert norm.result.type.get_element_type() == ta.i8


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
@pytest.mark.parametrize("build", [lambda b: _igelu(b, requantized=True), _itamax, _ilayernorm])
def test_quantlib_ops_compile_and_run(target, build):
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(build(b))
    x = RNG.integers(-128, 128, (1, SEQ, EMBED))
    assert run(import_model(model, [x]), target, inputs=[x], expect=run_integer_onnx(model, [x])).match


@pytest.mark.parametrize(
    ("shapes", "levels", "inputs", "reason"),
    [
        (((8,), (6, 8)), 256.0, 3, "bias '/Constant_1_output_0' is not a vector over the last axis"),
        (((8,), (8,)), 128.0, 3, "only 256 output levels are supported"),
        (((8,), (8,)), 256.0, 2, "expected 3 inputs (x, weight, bias), got 2"),
    ],
    ids=["bias_matrix", "levels", "inputs"],
)
def test_ilayernorm_diagnostics_name_the_node(shapes, levels, inputs, reason):
    b = GraphBuilder([1, SEQ, EMBED])
    operands = ["x", *(b.const(RNG.integers(-5, 5, shape)) for shape in shapes)][:inputs]
    model = b.model(b.op("iLayerNorm", *operands, D=2.0**8, n_levels=levels))
    with pytest.raises(OnnxImportError) as error:
        import_model(model, [RNG.integers(-128, 128, (1, SEQ, EMBED))])
    assert str(error.value) == f"node '/iLayerNorm_2' (iLayerNorm): {reason}"
