"""Graphs as exporters leave them: inputs of any leading dimension, integer graph inputs and
outputs, ONNX names kept, QuantLib's ops in each domain they are exported in, and test-vector
files holding more (or differently typed) arrays than the model takes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from onnx_graphs import (
    GraphBuilder,
    attention,
    int_linear,
    linear,
    requant_shift,
    run_integer_onnx,
)
from requires import target_param

from tinyattn.api import run
from tinyattn.backend.targets import TARGETS
from tinyattn.dialects import tinyattn as ta
from tinyattn.driver.lower import LowerOptions, lower_module
from tinyattn.frontend.onnx_import import OnnxImportError, import_model
from tinyattn.semantics.interpreter import evaluate
from tinyattn.tools import run as run_tool

RNG = np.random.default_rng(11)


def _signature(module) -> list[tuple[list[int], object]]:
    (main,) = module.ops
    types = [*main.function_type.inputs.data, *main.function_type.outputs.data]
    return [(list(t.get_shape()), t.get_element_type()) for t in types]


@pytest.mark.parametrize("shape", [[6, 8], [3, 6, 8], [8]], ids=["rows", "batch", "vector"])
def test_leading_dimensions_are_rows(shape):
    """A 2-D input is [S, E] and a batch > 1 folds into the rows of row-wise ops: both keep
    their shape in the signature and compute what ONNX does."""
    b = GraphBuilder(shape)
    model = b.model(b.op("Relu", linear(b, "x", 8, 5)))
    module = import_model(model)
    assert _signature(module)[0][0] == shape
    x = RNG.standard_normal(shape).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    (actual,) = evaluate(module, [x])
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def _integer_io_model(input_type: int, output_type: int) -> onnx.ModelProto:
    """Add of two integer inputs, declared with `input_type` and `output_type`."""
    node = helper.make_node("Add", ["a", "b"], ["sum"], name="add")
    graph = helper.make_graph(
        [node],
        "io",
        [helper.make_tensor_value_info(n, input_type, [4, 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info("sum", output_type, [4, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("declared", "element"),
    [(TensorProto.INT8, ta.i8), (TensorProto.UINT8, ta.ui8), (TensorProto.INT32, ta.i32)],
    ids=["int8", "uint8", "int32"],
)
def test_declared_integer_inputs_make_an_integer_graph(declared, element):
    module = import_model(_integer_io_model(declared, TensorProto.INT32))
    assert [typ for _, typ in _signature(module)] == [element, element, ta.i32]
    a, b = (RNG.integers(0, 100, (4, 3)) for _ in range(2))
    dtype = {ta.i8: np.int8, ta.ui8: np.uint8, ta.i32: np.int32}[element]
    (total,) = evaluate(module, [a.astype(dtype), b.astype(dtype)])
    np.testing.assert_array_equal(total, a + b)


def test_integer_samples_make_an_integer_graph():
    """Deeploy's vectors of integer graphs without QuantLib ops come as integer arrays: a
    float32-typed graph imports in integer form then (its int32 sum), and in float without."""
    model = _integer_io_model(TensorProto.FLOAT, TensorProto.FLOAT)
    samples = [RNG.integers(-128, 128, (4, 3)).astype(np.int8) for _ in range(2)]
    assert [t for _, t in _signature(import_model(model, samples))] == [ta.i8, ta.i8, ta.i32]
    floats = [s.astype(np.float32) for s in samples]
    assert [t for _, t in _signature(import_model(model, floats))] == [ta.f32] * 3


def test_an_undeclared_integer_output_type_is_refused():
    model = _integer_io_model(TensorProto.INT8, TensorProto.INT64)
    with pytest.raises(OnnxImportError, match="^output 'sum': element type INT64 is not supported; only float32, int8, uint8 or int32$"):
        import_model(model)


def test_onnx_names_reach_the_compiled_model():
    """`onnx::Add_0`-style names stay distinct and whole: in the IR's argument and result
    attributes, and in the names the compiled model's header and report give its tensors."""
    model = _integer_io_model(TensorProto.INT8, TensorProto.INT32)
    for index, name in enumerate(("onnx::Add_0", "onnx::Add_1")):
        model.graph.input[index].name = name
        model.graph.node[0].input[index] = name
    model.graph.output[0].name = model.graph.node[0].output[0] = "logits"
    module = import_model(model)
    assert 'tinyattn.onnx_name = "onnx::Add_1"' in str(module)
    lowered = lower_module(module, TARGETS["host"], LowerOptions())
    assert [s.name for s in lowered.inputs] == ["onnx::Add_0", "onnx::Add_1"]
    assert [s.name for s in lowered.outputs] == ["logits"]


@pytest.mark.parametrize("domain", ["ai.onnx.contrib", "PACTOps"])
def test_requant_shift_in_each_domain(domain):
    """QuantLib's ops read the same in the domains they are exported in; the oracle knows them
    in the default one."""
    b = GraphBuilder([1, 4, 8])
    model = b.model(requant_shift(b, int_linear(b, "x", 8, 4), 3))
    x = RNG.integers(-128, 128, (1, 4, 8))
    (expected,) = run_integer_onnx(model, [x])
    (node,) = [node for node in model.graph.node if node.op_type == "RequantShift"]
    node.domain = domain
    model.opset_import.append(helper.make_opsetid(domain, 1))
    (actual,) = evaluate(import_model(model, [x]), [x.astype(np.int8)])
    np.testing.assert_array_equal(actual, expected)


def test_an_op_of_an_unknown_domain_is_named_with_it():
    b = GraphBuilder([1, 4, 8])
    model = b.model(b.op("Relu", "x", name="custom", domain="com.example"))
    with pytest.raises(OnnxImportError, match=r"^node 'custom' \(Relu in domain 'com.example'\): unsupported op type$"):
        import_model(model)


def test_run_takes_vectors_as_deeploy_stores_them(tmp_path, capsys):
    """float64 arrays holding exact float32 values feed a float model, an extra array (Deeploy
    stores the weights too) is ignored with a note, and the outputs match."""
    b = GraphBuilder([6, 8])
    model = b.model(linear(b, "x", 8, 5))
    onnx.save(model, tmp_path / "network.onnx")
    x = RNG.standard_normal((6, 8)).astype(np.float32)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.savez(tmp_path / "inputs.npz", arr_0=x.astype(np.float64), arr_1=np.zeros((8, 5)))
    np.savez(tmp_path / "outputs.npz", arr_0=y.astype(np.float64))
    status = run_tool.main(
        [
            str(tmp_path / "network.onnx"),
            "--inputs",
            str(tmp_path / "inputs.npz"),
            "--expect",
            str(tmp_path / "outputs.npz"),
            "--target",
            "host",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert json.loads(captured.out)["match"] is True
    assert captured.err == "tinyattn-run: note: ignoring 'arr_1': the model takes 1 (x)\n"


@pytest.mark.parametrize("target", [target_param("rv32")])
def test_an_attention_too_big_for_depth_first_falls_back_to_layerwise(target, capsys):
    """A 2-head E=128 encoder needs 199,168 B of L1 depth-first on rv32, which has 131,072 B:
    the default schedule tiles that attention layer by layer instead, says so, and runs."""
    b = GraphBuilder([1, 64, 128])
    scalings = [("scores", "Div", 8.0)]
    y = attention(b, "x", seq=64, embed=128, heads=2, head_dim=64, scalings=scalings)
    report = run(import_model(b.model(y)), target)
    assert report.match
    remark = capsys.readouterr().err
    assert remark.startswith(
        "remark: depth-first-tile: the attention (S=64 E=128 P=64) needs at least 199168 bytes "
        "of L1 with 1-row blocks, but l1-bytes=131072 (attention #0); scheduled by "
        "layerwise-tile instead, in "
    )


def test_integer_samples_of_a_float_model_keep_it_float():
    """8-bit pixels for a model with float weights: the weights say float."""
    b = GraphBuilder([1, 4, 8])
    model = b.model(linear(b, "x", 8, 5))
    x = RNG.integers(0, 256, (1, 4, 8)).astype(np.uint8)
    assert [t for _, t in _signature(import_model(model, [x]))] == [ta.f32, ta.f32]


def test_microsoft_gelu_between_layers():
    """com.microsoft::Gelu, which ONNX shape inference does not know, inside a graph."""
    b = GraphBuilder([1, 4, 8])
    hidden = b.op("Gelu", linear(b, "x", 8, 6), domain="com.microsoft")
    model = b.model(linear(b, hidden, 6, 3))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    module = import_model(model)
    assert "tinyattn.gelu" in [op.name for op in module.walk()]


def test_output_names_survive_quantization_and_lowering(tmp_path):
    from tinyattn.frontend import quantize as q

    b = GraphBuilder([1, 4, 8])
    model = b.model(b.op("Relu", linear(b, "x", 8, 5)))
    model.graph.output[0].name = model.graph.node[-1].output[0] = "logits"
    samples = [[RNG.standard_normal((1, 4, 8)).astype(np.float32)] for _ in range(4)]
    quantized = q.quantize(import_model(model), samples)
    lowered = lower_module(quantized, TARGETS["cortex-m4"], LowerOptions())
    assert [s.name for s in lowered.outputs] == ["logits"]
