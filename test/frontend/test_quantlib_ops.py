"""QuantLib's integer ops without test vectors in Deeploy's set, pinned by their QuantLib and
Deeploy definitions: iGELU (I-BERT's integer GELU; its RequantShift folds in), IntegerMean
(rounded half up) and ITAMax (ITA's softmax); bit for bit against oracles written from those
definitions, and on the targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import numpy_helper
from onnx_graphs import GraphBuilder, assert_integer_matches_onnx, requant_shift, run_integer_onnx
from requires import target_param

from tinyattn.api import run
from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.onnx_import import import_model

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


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
@pytest.mark.parametrize("build", [lambda b: _igelu(b, requantized=True), _itamax])
def test_quantlib_ops_compile_and_run(target, build):
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(build(b))
    x = RNG.integers(-128, 128, (1, SEQ, EMBED))
    assert run(import_model(model, [x]), target, inputs=[x], expect=run_integer_onnx(model, [x])).match
