"""MatMul of two activations (batched, a shared matrix, int32 graph inputs holding 8-bit
values, a per-head RequantShift) and QuantLib's iRMSNorm: against ONNX's reference or the
integer oracle (bit for bit), in the interpreter and compiled on the targets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from onnx_graphs import GraphBuilder, assert_integer_matches_onnx, requant_shift, run_integer_onnx
from requires import target_param

from tinyattn.api import run
from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.onnx_import import OnnxImportError, import_model
from tinyattn.semantics.interpreter import evaluate

RNG = np.random.default_rng(29)


def _matmul_model(a_shape, b_shape, element=TensorProto.FLOAT, requant=None) -> onnx.ModelProto:
    """MatMul of graph inputs `a` and `b`; `requant` (mul, add shapes' values) narrows it."""
    b = GraphBuilder(a_shape)
    b.nodes.append(helper.make_node("MatMul", ["x", "y"], ["product"], name="matmul"))
    out = "product"
    if requant is not None:
        out = requant_shift(b, out, requant, div=2**10)
    model = b.model(out)
    model.graph.input.append(helper.make_tensor_value_info("y", element, b_shape))
    model.graph.input[0].type.tensor_type.elem_type = element
    return model


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((1, 2, 16, 32), (1, 2, 32, 8)), ((4, 1, 4, 8), (4, 1, 8, 4)), ((1, 6, 8), (8, 3))],
    ids=["heads", "batch", "shared_matrix"],
)
def test_float_matmul_matches_onnx(a_shape, b_shape):
    model = _matmul_model(a_shape, b_shape)
    x, y = (RNG.standard_normal(s).astype(np.float32) for s in (a_shape, b_shape))
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x, "y": y})
    (actual,) = evaluate(import_model(model), [x, y])
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_integer_matmul_per_head_requant():
    """Deeploy's MatMul-Regular_RQ: int32 graph inputs holding 8-bit values (narrowed by a
    saturating requant), one multiplier per head ([1, H, 1, 1])."""
    model = _matmul_model((1, 2, 6, 8), (1, 2, 8, 5), TensorProto.INT32, [[[[3]], [[7]]]])
    samples = [RNG.integers(-128, 128, s) for s in ((1, 2, 6, 8), (1, 2, 8, 5))]
    module = assert_integer_matches_onnx(model, samples)
    (main,) = module.ops
    assert [t.get_element_type() for t in main.function_type.inputs.data] == [ta.i32, ta.i32]


def test_batch_dimensions_that_broadcast_are_one_line():
    model = _matmul_model((1, 2, 6, 8), (3, 1, 8, 5))
    with pytest.raises(OnnxImportError) as error:
        import_model(model)
    assert str(error.value) == (
        "node 'matmul' (MatMul): MatMul of shapes [1, 2, 6, 8] and [3, 1, 8, 5] broadcasts its "
        "batch dimensions; they must be equal, or one operand a matrix"
    )


def _irmsnorm(b: GraphBuilder, width: int) -> str:
    weight = b.const(RNG.integers(1_000_000, 4_000_000, width))
    return b.op("iRMSNorm", "x", weight, D=2**16, n_levels=256)


def test_irmsnorm_matches_the_oracle():
    b = GraphBuilder([1, 16, 64])
    module = assert_integer_matches_onnx(
        b.model(_irmsnorm(b, 64)), [RNG.integers(-64, 65, (1, 16, 64))]
    )
    assert any(isinstance(op, ta.RMSNormOp) for op in module.walk())


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_matmul_and_rmsnorm_compile_and_run(target):
    model = _matmul_model((1, 2, 6, 8), (1, 2, 8, 5), TensorProto.FLOAT, [[[[3]], [[7]]]])
    samples = [RNG.integers(-128, 128, s) for s in ((1, 2, 6, 8), (1, 2, 8, 5))]
    expected = run_integer_onnx(model, samples)
    typed = [s.astype(np.int8) for s in samples]
    assert run(import_model(model, samples), target, inputs=typed, expect=expected).match
    b = GraphBuilder([1, 16, 64])
    model = b.model(_irmsnorm(b, 64))
    x = RNG.integers(-128, 128, (1, 16, 64))
    expected = run_integer_onnx(model, [x])
    assert run(import_model(model, [x]), target, inputs=[x], expect=expected).match


def test_irmsnorm_weight_of_rank_two():
    b = GraphBuilder([1, 4, 8])
    weight = b.const(RNG.integers(1_000_000, 4_000_000, (1, 8)))
    model = b.model(b.op("iRMSNorm", "x", weight, D=2**16, n_levels=256))
    assert_integer_matches_onnx(model, [RNG.integers(-64, 65, (1, 4, 8))])
