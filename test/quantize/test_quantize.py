"""Post-training quantisation: the bundled models in int8, evaluated with the reference
interpreter, stay close to the float models; the integer parameters never overflow int32; bad
input is one diagnostic."""

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, f32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.printer import Printer

import tinyattn.models
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import ONNX_NODE_ATTR
from tinyattn.dialects.dense import from_numpy
from tinyattn.driver.parsing import parse_module
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.models.generate import SPECS, calibration_set, save_npz, spec_named
from tinyattn.passes.fuse_weights import FuseWeights
from tinyattn.semantics import reference as ref
from tinyattn.tools.quantize import main

MODELS = Path(tinyattn.models.__file__).parent

# On its 32 calibration samples each bundled model's dequantised int8 logits stay within 13% of
# the float logits' largest magnitude at worst and 3% on average, and the top class agrees on at
# least 85% of the samples (measured: ecg 11.1% / 2.5% / 97%, eeg 6.9% / 2.1% / 88%, radar
# 5.8% / 1.3% / 97%; the disagreeing samples' two top float logits are closer than the error).
MAX_RELATIVE_ERROR = 0.13
MEAN_RELATIVE_ERROR = 0.03
MIN_ARGMAX_AGREEMENT = 0.85


def _samples(name: str) -> list[list[np.ndarray]]:
    return [[x] for x in calibration_set(spec_named(name))["x"]]


def _text(module: ModuleOp) -> str:
    stream = io.StringIO()
    Printer(stream=stream).print_op(module)
    return stream.getvalue()


def _assert_close(errors: list[q.OutputError]) -> None:
    (error,) = errors
    assert error.relative <= MAX_RELATIVE_ERROR
    assert error.mean_abs <= MEAN_RELATIVE_ERROR * error.float_max_abs
    assert error.argmax_agreement is not None
    assert error.argmax_agreement >= MIN_ARGMAX_AGREEMENT


def _assert_integer_only(module: ModuleOp) -> None:
    """Nothing of the float model is left: every tensor is 8-bit or int32."""
    for op in module.walk():
        for value in (*op.operands, *op.results):
            if isinstance(value.type, TensorType):
                assert value.type.get_element_type() != f32, op.name


@pytest.mark.parametrize("name", [spec.name for spec in SPECS])
def test_bundled_model_quantizes_within_the_error_bound(name):
    model = import_model(MODELS / f"{name}.onnx")
    samples = _samples(name)
    quantized = q.quantize(model, samples)
    main_function = q.entry_function(quantized)
    assert [arg.type.get_element_type() for arg in main_function.args] == [ta.i8]
    assert [t.get_element_type() for t in main_function.function_type.outputs] == [ta.i8]
    _assert_integer_only(quantized)
    parse_module(_text(quantized), f"{name}.int8.mlir")  # prints, parses and verifies
    _assert_close(q.accuracy_loss(model, quantized, samples))
    # The int8 ops keep the ONNX nodes they came from (reports name layers after them).
    assert _onnx_nodes(quantized) == _onnx_nodes(model) != set()


def _onnx_nodes(module: ModuleOp) -> set[str]:
    return {
        node.data
        for op in module.walk()
        if isinstance(node := op.attributes.get(ONNX_NODE_ATTR), StringAttr)
    }


def test_fused_attention_quantizes_within_the_error_bound():
    model = import_model(MODELS / "radar.onnx")
    FuseWeights(mode="always").apply(None, model)
    assert any(isinstance(op, ta.FusedMHSAOp) for op in model.walk())
    samples = _samples("radar")
    quantized = q.quantize(model, samples)
    fused = [op for op in quantized.walk() if isinstance(op, ta.FusedMHSAOp)]
    assert fused and all(op.is_integer() and op.qk_requant is not None for op in fused)
    _assert_close(q.accuracy_loss(model, quantized, samples))


def _constant(ops: list[Operation], array: np.ndarray) -> SSAValue:
    op = arith.ConstantOp(from_numpy(array.astype(np.float32), f32))
    ops.append(op)
    return op.result


def _small_model(rng: np.random.Generator) -> ModuleOp:
    """x [6, 8] -> attention without softmax -> relu -> softmax -> mean over rows (kept):
    the ops and forms the bundled models do not have."""
    block = Block(arg_types=[TensorType(f32, [6, 8])])
    ops: list[Operation] = []
    (x,) = block.args
    x.name_hint = "x"
    heads, p = 2, 3
    weights = [rng.normal(0, 0.25, shape) for shape in ([heads, 8, p], [heads, p])] * 3
    q_pair, k_pair, v_pair = (
        (_constant(ops, weights[i]), _constant(ops, weights[i + 1])) for i in (0, 2, 4)
    )
    o_pair = (_constant(ops, rng.normal(0, 0.25, [heads, p, 8])), _constant(ops, np.zeros(8)))
    attention = ta.MHSAOp(
        x,
        q_pair,
        k_pair,
        v_pair,
        o_pair,
        num_heads=heads,
        scale=1 / math.sqrt(p),
        properties={"normalization": StringAttr(ta.NO_NORMALIZATION)},
    )
    relu = ta.ReluOp(attention.result)
    softmax = ta.SoftmaxOp(relu.result)
    mean = ta.MeanOp(softmax.result, axis=0, keepdims=True)
    block.add_ops([*ops, attention, relu, softmax, mean, func.ReturnOp(mean.result)])
    main_function = func.FuncOp("main", ([x.type], [mean.result.type]), Region(block))
    module = ModuleOp([main_function])
    module.verify()
    return module


def test_unnormalized_attention_relu_softmax_and_mean_quantize():
    rng = np.random.default_rng(0)
    model = _small_model(rng)
    samples = [[rng.standard_normal((6, 8)).astype(np.float32)] for _ in range(16)]
    quantized = q.quantize(model, samples)
    _assert_integer_only(quantized)
    (attention,) = [op for op in quantized.walk() if isinstance(op, ta.MHSAOp)]
    assert attention.normalization.data == ta.NO_NORMALIZATION and attention.isoftmax is None
    (softmax,) = [op for op in quantized.walk() if isinstance(op, ta.SoftmaxOp)]
    assert softmax.result.type.get_element_type() == ta.ui8
    # A mean of probabilities: scale 1/255 in, its own scale out.
    (error,) = q.accuracy_loss(model, quantized, samples)
    assert error.shape == (1, 8)
    assert error.max_abs <= 0.05 * error.float_max_abs


def test_requant_never_wraps_and_takes_the_largest_shift():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        ratio = 10 ** rng.uniform(-7, 1, rng.integers(1, 4))
        bound = rng.integers(1, 2**24, ratio.shape).astype(np.float64)
        requant = ref.requant_for(ratio, bound)
        mul = np.broadcast_to(np.array(requant.mul, np.float64), ratio.shape)
        half = 2.0 ** (requant.shift - 1) if requant.shift else 0.0
        assert (bound * np.abs(mul) + half <= ta.INT32_MAX).all()
        if requant.shift < 31:
            finer = np.rint(ratio * 2.0 ** (requant.shift + 1))
            assert (bound * finer + 2.0**requant.shift > ta.INT32_MAX).any()


def test_requant_wrapping_would_be_caught():
    """The bound matters: the worst accumulator of an int8 linear layer requantised with the
    chosen multiplier stays exact, where a multiplier one shift finer would wrap."""
    w = np.full((64, 1), 127, np.int8)
    worst = ref.linear(np.full((1, 64), -128, np.int8), w, None)  # -128 * 127 * 64
    requant = ref.requant_for(0.004, 128 * 127 * 64)
    assert requant(worst, np.int8)[0, 0] == -128
    finer = ref.Requant((requant.mul[0] * 2,), (0,), requant.shift + 1)
    assert finer(worst, np.int8)[0, 0] != -128


def test_isoftmax_follows_softmax_with_ibert_s_coefficients():
    """log2 = floor(ln 2 / s), b = floor(1.353 / s), c = floor(0.344 / (0.3585 s^2)); at the
    scale that covers the scores, the probabilities are within 0.02 of the float ones."""
    assert q.isoftmax_for(0.01) == ref.ISoftmax(1, 135, 9595, 69, 256)
    scores = np.random.default_rng(2).normal(0, 2, (32, 40))
    scale = q.symmetric_scale(np.abs(scores).max())
    probabilities = q.isoftmax_for(scale)(q.quantize_array(scores, scale)) / 255
    assert np.abs(probabilities - ref.softmax_f32(scores)).max() <= 0.02


def test_inputs_and_outputs_convert_with_the_recorded_scales():
    model = import_model(MODELS / "ecg.onnx")
    samples = _samples("ecg")
    main_function = q.entry_function(q.quantize(model, samples))
    (input_scale,) = q.recorded_scales(main_function, q.INPUT_SCALES)
    (output_scale,) = q.recorded_scales(main_function, q.OUTPUT_SCALES)
    calibration = np.stack([sample[0] for sample in samples])
    assert input_scale == pytest.approx(np.abs(calibration).max() / 127)
    (x,) = q.quantize_inputs(main_function, samples[0])
    assert x.dtype == np.int8
    np.testing.assert_allclose(x * input_scale, samples[0][0], atol=input_scale / 2 + 1e-7)
    (y,) = q.dequantize_outputs(main_function, [np.array([[-128, 0, 127, 1, -1]], np.int8)])
    np.testing.assert_allclose(y, np.array([[-128, 0, 127, 1, -1]]) * output_scale, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------


def _module(text: str) -> ModuleOp:
    return parse_module(text, "test.mlir")


@pytest.mark.parametrize(
    "text, message",
    [
        (
            """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
                 %c = arith.constant dense<1.0> : tensor<4x8xf32>
                 %y = tinyattn.add %x, %c : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
                 func.return %y : tensor<4x8xf32>
               }""",
            "'tinyattn.add' (%y): operand 'rhs' is not an activation",
        ),
        (
            """func.func @main(%x: tensor<4x8xf32>, %w: tensor<8x2xf32>) -> tensor<4x2xf32> {
                 %y = tinyattn.linear %x, %w : (tensor<4x8xf32>, tensor<8x2xf32>) -> tensor<4x2xf32>
                 func.return %y : tensor<4x2xf32>
               }""",
            "'tinyattn.linear' (%y): operand 'weight' must be a constant",
        ),
        (
            """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
                 %y = arith.mulf %x, %x : tensor<4x8xf32>
                 func.return %y : tensor<4x8xf32>
               }""",
            "'arith.mulf' (%y): cannot quantise this op",
        ),
    ],
)
def test_what_cannot_be_quantised_is_named(text, message):
    module = _module(text)
    samples = [[np.ones(arg.type.get_shape(), np.float32) for arg in module.ops.first.args]]
    with pytest.raises(q.QuantizeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        q.quantize(module, samples)


def test_calibration_samples_must_fit_the_function():
    module = import_model(MODELS / "ecg.onnx")
    with pytest.raises(q.QuantizeError, match=r"has shape \[1, 66\], expected \[1, 66, 16\]"):
        q.quantize(module, [[np.zeros((1, 66), np.float32)]])
    with pytest.raises(q.QuantizeError, match="'x' holds non-finite values"):
        q.quantize(module, [[np.full((1, 66, 16), np.nan, np.float32)]])
    with pytest.raises(q.QuantizeError, match="the calibration set is empty"):
        q.quantize(module, [])


def test_cli_writes_the_module_and_the_report(tmp_path, capsys):
    calib = tmp_path / "ecg.npz"
    save_npz(calib, calibration_set(spec_named("ecg"), 8))
    out, report = tmp_path / "ecg.int8.mlir", tmp_path / "report.json"
    args = [str(MODELS / "ecg.onnx"), "--calib", str(calib), "-o", str(out)]
    assert main([*args, "--report", str(report), "--per-tensor"]) == 0
    quantized = parse_module(out.read_text(), str(out))
    linears = [op for op in quantized.walk() if isinstance(op, ta.LinearOp)]
    assert all(op.requant.channels() == 1 for op in linears)  # --per-tensor
    data = json.loads(report.read_text())
    (output,) = data["outputs"]
    assert data["samples"] == 8 and data["weights"] == "per-tensor"
    assert output["relative_error"] <= MAX_RELATIVE_ERROR and 0 < output["argmax_agreement"]
    assert data["input_scales"] == q.recorded_scales(q.entry_function(quantized), q.INPUT_SCALES)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "int8 against f32 on 8 calibration samples" in captured.err
    assert "argmax agreement" in captured.err


def test_cli_failure_is_one_line_and_leaves_no_file(tmp_path, capsys):
    calib = tmp_path / "bad.npz"
    calib.write_bytes(b"PK\x03\x04 not really a zip archive")
    out = tmp_path / "out.mlir"
    assert main([str(MODELS / "ecg.onnx"), "--calib", str(calib), "-o", str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"tinyattn-quantize: error: {calib}: not an .npz archive"]
    assert os.listdir(tmp_path) == ["bad.npz"]


def test_scores_too_wide_for_the_integer_softmax_say_what_to_change():
    module = parse_module(
        "func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {\n"
        "  %y = tinyattn.softmax %x : (tensor<4x8xf32>) -> tensor<4x8xf32>\n"
        "  func.return %y : tensor<4x8xf32>\n}\n",
        "softmax.mlir",
    )
    rng = np.random.default_rng(0)
    samples = [[(rng.uniform(-1, 1, (4, 8)) * 300).astype(np.float32)] for _ in range(4)]
    with pytest.raises(q.QuantizeError, match=r"reads reach ±298 .* beyond the ±88 .*LayerNorm"):
        q.quantize(module, samples)
