"""The numpy reference semantics: integer rules, the FWSA identity, golden Deeploy vectors."""

import math

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func
from xdsl.parser import Parser

from tinyattn.dialects.tinyattn import Tinyattn, layernorm_square_bound, min_layernorm_shift
from tinyattn.frontend.quantize import igelu_for, ilayernorm_for, layernorm_affine
from tinyattn.semantics import reference as ref
from tinyattn.semantics.interpreter import evaluate


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


def test_isqrt_is_exact_floor_sqrt():
    """I-BERT's integer Newton square root equals floor(sqrt(n)) exactly: every n up to 2^17,
    each perfect square around the int32 range and its neighbours, and large random values."""
    squares = np.arange(1, 46341, dtype=np.int64) ** 2
    rng = np.random.default_rng(3)
    n = np.concatenate(
        [
            np.arange(2**17),
            squares - 1,
            squares,
            squares + 1,
            rng.integers(0, 2**31, 100_000),
            [2**31 - 1, 2**31 - 2, 2**30, 2**30 - 1],
        ]
    )
    expected = np.array([math.isqrt(int(v)) for v in n])
    np.testing.assert_array_equal(ref.isqrt(n), expected)
    assert ref.isqrt(np.array([0]))[0] == 0


def test_igelu_follows_gelu():
    """i-GELU against the exact GELU on every int8 input, for input ranges from 1 to 16: the
    error is that of I-BERT's erf polynomial (about 0.018), at most 0.021."""
    for input_range in (1.0, 2.0, 4.0, 8.0, 16.0):
        scale = input_range / 127
        igelu = igelu_for(scale)
        x = np.arange(-128, 128)
        approx = igelu(x) * scale / igelu.one
        exact = ref.gelu(x * scale)
        assert np.abs(approx - exact).max() <= 0.021, input_range


def test_ilayernorm_follows_layernorm():
    """i-LayerNorm against the float layer norm of the same (dequantized) rows, for widths that
    need centring shifts 0 to 2: within half a unit of an int8 output of range 4 whenever a row's
    spread is at least 10 units of the input."""
    rng = np.random.default_rng(4)
    input_scale, out_scale = 0.05, 4 / 127
    for width in (16, 32, 64, 128):
        for spread in (10, 30, 60):
            centres = rng.uniform(-20, 20, (64, 1))
            x = np.clip(np.rint(rng.normal(centres, spread, (64, width))), -128, 127)
            gamma, beta = rng.uniform(0.5, 1.5, width), rng.uniform(-0.2, 0.2, width)
            norm = ilayernorm_for(input_scale, width, 1e-5)
            gamma_int, beta_int, requant = layernorm_affine(gamma, beta, norm, out_scale)
            got = norm(x.astype(np.int8), gamma_int, beta_int) * out_scale / 2**requant.shift
            expected = ref.layernorm(x * input_scale, gamma, beta, 1e-5)
            assert np.abs(got - expected).max() <= out_scale / 2, (width, spread)


def test_ilayernorm_sum_of_squares_fits_int32():
    """The verifier's bound holds for the worst rows (half at -128, half at 127, and one odd
    value out): with the smallest shift it accepts, the sum of squares plus eps fits int32."""
    for width in (2, 7, 16, 33, 45, 46, 64, 100, 768):
        shift = min_layernorm_shift(width, 1)
        assert layernorm_square_bound(width, shift) + 1 <= 2**31 - 1
        rows = np.full((3, width), 127, np.int64)
        rows[0, : width // 2] = -128
        rows[1, : (width + 1) // 2] = -128
        rows[2, 0] = -128
        centred = (width * rows - rows.sum(axis=-1, keepdims=True)) >> shift
        squares = (centred * centred).sum(axis=-1)
        assert squares.max() <= layernorm_square_bound(width, shift)


def test_integer_mean_rounds_half_up_or_requantizes():
    x = np.array([[1, 2], [-1, -2], [3, 3], [-128, 127]], np.int8)
    # 1.5 -> 2, -1.5 -> -1, 3 -> 3, -0.5 -> 0
    assert ref.mean(x, axis=1, keepdims=False).tolist() == [2, -1, 3, 0]
    # The requant folds the division by 2 into its shift: round half up of sum / 2.
    halve = ref.Requant(mul=(1,), add=(0,), shift=1)
    assert ref.mean(x, 1, True, halve, np.int8).tolist() == [[2], [-1], [3], [0]]


def test_interpreter_runs_integer_norm_gelu_mean_like_the_reference():
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, Tinyattn):
        ctx.load_dialect(dialect)
    module = Parser(
        ctx,
        """
      func.func @main(%x: tensor<3x4xi8>) -> tensor<4xi8> {
        %g = arith.constant dense<[3000, -2000, 1000, 4000]> : tensor<4xi32>
        %b = arith.constant dense<[10, -20, 0, 5]> : tensor<4xi32>
        %n = tinyattn.layernorm %x, %g, %b {epsilon = 1.0e-05 : f32, ilayernorm = #tinyattn.ilayernorm<shift = 0, eps = 3>, requant = #tinyattn.requant<mul = 1, add = 0, shift = 6>} : (tensor<3x4xi8>, tensor<4xi32>, tensor<4xi32>) -> tensor<3x4xi8>
        %a = tinyattn.gelu %n {igelu = #tinyattn.igelu<b = -80, one = 6981>, requant = #tinyattn.requant<mul = 5, add = 0, shift = 15>} : (tensor<3x4xi8>) -> tensor<3x4xi8>
        %m = tinyattn.mean %a {axis = 0 : i64, requant = #tinyattn.requant<mul = 3, add = 0, shift = 3>} : (tensor<3x4xi8>) -> tensor<4xi8>
        func.return %m : tensor<4xi8>
      }""",
    ).parse_module()
    module.verify()
    x = np.random.default_rng(5).integers(-128, 128, (3, 4)).astype(np.int8)
    n = ref.layernorm(
        x,
        np.array([3000, -2000, 1000, 4000]),
        np.array([10, -20, 0, 5]),
        1e-5,
        ref.ILayerNorm(0, 3),
        ref.Requant((1,), (0,), 6),
        np.int8,
    )
    a = ref.gelu(n, ref.IGelu(-80, 6981), ref.Requant((5,), (0,), 15), np.int8)
    expected = ref.mean(a, 0, False, ref.Requant((3,), (0,), 3), np.int8)
    (got,) = evaluate(module, [x])
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)
