"""The numpy reference semantics: integer rules, the FWSA identity, golden Deeploy vectors."""

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func
from xdsl.parser import Parser

from tinyattn.dialects import reference as ref
from tinyattn.dialects.interpreter import evaluate
from tinyattn.dialects.tinyattn import Tinyattn


def test_requant_rounds_half_up_and_clips():
    half_up = ref.Requant(mul=(1,), add=(0,), shift=1)
    acc = np.array([-127, -3, -1, 1, 3, 127, 1000, -1000])
    # -63.5 -> -63, -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2, 63.5 -> 64, clipped to int8
    assert half_up(acc, np.int8).tolist() == [-63, -1, 0, 1, 2, 64, 127, -128]
    assert half_up(acc, np.uint8).tolist() == [0, 0, 0, 1, 2, 64, 255, 0]


def test_requant_per_channel_along_last_axis():
    requant = ref.Requant(mul=(1, 2, 4), add=(0, 0, 8), shift=2)
    acc = np.array([[4, 4, 4], [8, 8, 8]])
    assert requant(acc, np.int8).tolist() == [[1, 2, 6], [2, 4, 10]]


def test_int32_arithmetic_wraps():
    # 2^31 - 1 + 1 wraps to -2^31, as the deployed kernels' int32 additions do.
    assert ref.wrap_int32(np.array([2**31 - 1 + 1]))[0] == -(2**31)
    acc = ref.linear(
        np.array([[127, 127]], np.int8), np.array([[127], [127]], np.int8), np.array([2**31 - 1])
    )
    assert acc.dtype == np.int32 and acc[0, 0] == -(2**31) + 2 * 127 * 127 - 1


def test_mhsa_f32_matches_per_head_loop():
    rng = np.random.default_rng(0)
    s, e, p, h = 5, 6, 3, 2
    x = rng.standard_normal((s, e))
    wq, wk, wv = (rng.standard_normal((h, e, p)) for _ in range(3))
    bq, bk, bv = (rng.standard_normal((h, p)) for _ in range(3))
    wo, bo = rng.standard_normal((h, p, e)), rng.standard_normal(e)
    scale = 1 / np.sqrt(p)
    expected = np.tile(bo, (s, 1))
    for head in range(h):
        q, k, v = x @ wq[head] + bq[head], x @ wk[head] + bk[head], x @ wv[head] + bv[head]
        scores = q @ k.T * scale
        probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        expected = expected + probs @ v @ wo[head]
    got = ref.mhsa(x, wq, bq, wk, bk, wv, bv, wo, bo, scale=scale)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_fused_mhsa_equals_mhsa_in_exact_arithmetic():
    """FWSA: Wqk = s Wq Wk^T and bqk = s bq Wk^T; the bk term is constant per row and the softmax
    removes it."""
    rng = np.random.default_rng(1)
    s, e, p, h = 7, 4, 8, 3
    x = rng.standard_normal((s, e))
    wq, wk, wv = (rng.standard_normal((h, e, p)) for _ in range(3))
    bq, bk, bv = (rng.standard_normal((h, p)) for _ in range(3))
    wo, bo = rng.standard_normal((h, p, e)), rng.standard_normal(e)
    scale = 0.3
    wqk = scale * np.einsum("hep,hfp->hef", wq, wk)
    bqk = scale * np.einsum("hp,hfp->hf", bq, wk)
    unfused = ref.mhsa(x, wq, bq, wk, bk, wv, bv, wo, bo, scale=scale)
    fused = ref.fused_mhsa(x, wqk, bqk, wv, bv, wo, bo)
    np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6)


def _float_attrs(node: onnx.NodeProto) -> dict[str, int]:
    return {
        a.name: int(numpy_helper.to_array(onnx.helper.get_attribute_value(a)).item())
        for a in node.attribute
    }


def test_isoftmax_bit_exact_on_deeploy_vectors(deeploy_dir):
    case = deeploy_dir / "Softmax-Regular"
    (node,) = onnx.load(case / "network.onnx").graph.node
    attrs = _float_attrs(node)
    isoftmax = ref.ISoftmax(
        attrs["coeffA"], attrs["coeffB"], attrs["coeffC"], attrs["log2"], attrs["n_levels"]
    )
    (x,) = np.load(case / "inputs.npz").values()
    (expected,) = np.load(case / "outputs.npz").values()
    np.testing.assert_array_equal(isoftmax(x).astype(np.int64), expected)


def test_int8_mhsa_bit_exact_on_deeploy_eegformer(deeploy_dir):
    """The integer mhsa semantics reproduce Deeploy's EEGFormer MHSA block exactly (weights
    mapped by hand here; the ONNX importer does this mapping for users)."""
    case = deeploy_dir / "EEGFormer"
    graph = onnx.load(case / "network.onnx").graph
    init = {t.name: numpy_helper.to_array(t).astype(np.int64) for t in graph.initializer}
    nodes = {n.output[0]: n for n in graph.node}

    def projection(weight: str, bias: str, mul: str, heads: int = 8):
        w = init[weight]
        e, hp = w.shape
        return (
            w.reshape(e, heads, hp // heads).transpose(1, 0, 2),
            init[bias].reshape(heads, hp // heads),
            ref.Requant((int(init[mul]),), (0,), 16),
        )

    assert _float_attrs(nodes["output"])["div"] == 2**16
    wq, bq, rq = projection(
        "onnx::MatMul_87",
        "_QL_REPLACED__INTEGERIZE_PACT_LIN_PASS_0.bias",
        "_QL_REPLACED__INTEGERIZE_SIGNED_ACT_PASS_0.mul",
    )
    wk, bk, rk = projection(
        "onnx::MatMul_86",
        "_QL_REPLACED__INTEGERIZE_PACT_LIN_PASS_1.bias",
        "_QL_REPLACED__INTEGERIZE_SIGNED_ACT_PASS_0.mul",
    )
    wv, bv, rv = projection(
        "onnx::MatMul_85",
        "_QL_REPLACED__INTEGERIZE_PACT_LIN_PASS_2.bias",
        "_QL_REPLACED__INTEGERIZE_SIGNED_ACT_PASS_0.mul",
    )
    r514 = ref.Requant((int(init["_QL_REPLACED__INTEGERIZE_SIGNED_ACT_PASS_3.mul"]),), (0,), 16)
    wo = init["onnx::MatMul_99"].reshape(8, 2, 16)
    bo = init["_QL_REPLACED__INTEGERIZE_PACT_LIN_PASS_3.bias"]
    quant = ref.AttentionQuant(v=rv, score=r514, context=r514, out=r514, q=rq, k=rk)
    (x,) = np.load(case / "inputs.npz").values()
    (expected,) = np.load(case / "outputs.npz").values()
    got = ref.mhsa(
        x[0].astype(np.uint8),
        wq,
        bq,
        wk,
        bk,
        wv,
        bv,
        wo,
        bo,
        scale=None,
        softmax_scores=False,
        quant=quant,
        out_dtype=np.int8,
    )
    np.testing.assert_array_equal(got.astype(np.int64), expected[0])


def test_interpreter_runs_a_module_like_the_reference():
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, Tinyattn):
        ctx.load_dialect(dialect)
    module = Parser(
        ctx,
        """
      func.func @main(%x: tensor<3x4xf32>) -> tensor<1x2xf32> {
        %w = arith.constant dense<[[1.0, 0.0], [0.5, 1.0], [0.0, -1.0], [2.0, 0.25]]> : tensor<4x2xf32>
        %b = arith.constant dense<[0.1, -0.1]> : tensor<2xf32>
        %g = arith.constant dense<1.0> : tensor<2xf32>
        %y = tinyattn.linear %x, %w, %b : (tensor<3x4xf32>, tensor<4x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
        %a = tinyattn.gelu %y : (tensor<3x2xf32>) -> tensor<3x2xf32>
        %n = tinyattn.layernorm %a, %g, %b {epsilon = 1.0e-05 : f32} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
        %m = tinyattn.mean %n {axis = 0 : i64} : (tensor<3x2xf32>) -> tensor<1x2xf32>
        func.return %m : tensor<1x2xf32>
      }""",
    ).parse_module()
    module.verify()
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    w = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, -1.0], [2.0, 0.25]])
    b = np.array([0.1, -0.1])
    y = ref.gelu(ref.linear(x, w, b))
    expected = ref.mean(ref.layernorm(y, np.ones(2), b, 1e-5), axis=0, keepdims=True)
    (got,) = evaluate(module, [x])
    assert got.shape == (1, 2) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
