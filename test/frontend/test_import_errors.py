"""What the importer refuses, and that it says so in one line naming the node and the reason."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import GraphBuilder, linear

from tinyattn.frontend.onnx_import import OnnxImportError, import_model

SEQ, EMBED = 4, 6


def _block() -> GraphBuilder:
    return GraphBuilder([1, SEQ, EMBED])


def dilated_conv():
    b = _block()
    weight = b.weight(SEQ, SEQ, 3)
    return b.model(b.op("Conv", "x", weight, name="/blocks.0/Conv_3", dilations=[2]))


def unnamed_matmul_of_a_vector():
    b = GraphBuilder([1, EMBED])
    b.input("y", [EMBED, SEQ])
    return b.model(b.op("MatMul", "x", "y", name=""))


def weight_is_an_input():
    b = GraphBuilder([1, EMBED])
    b.input("w", [1, EMBED])
    return b.model(b.op("Gemm", "x", "w", transB=1))


def addend_broadcasts_the_product():
    """A constant added to a MatMul that would grow it (a batch of 2 from a batch of 1)."""
    b = _block()
    product = b.op("MatMul", "x", b.weight(EMBED, 3), name="/MatMul")
    return b.model(b.op("Add", product, b.const(np.ones((2, SEQ, 3))), name="/Add"))


def float64_weight():
    b = GraphBuilder([1, EMBED])
    return b.model(b.op("Gemm", "x", b.const(np.ones((EMBED, 3)), np.float64)))


def transposed_gemm():
    b = GraphBuilder([EMBED, 4])
    return b.model(b.op("Gemm", "x", b.weight(EMBED, 3), transA=1))


def fractional_power():
    b = _block()
    return b.model(b.op("Pow", "x", b.const(3.5)))


def mean_over_batch():
    b = _block()
    return b.model(b.op("ReduceMean", "x", axes=[0]))


def mean_over_two_axes():
    b = _block()
    return b.model(b.op("ReduceMean", "x", axes=[1, 2]))


def tanh_gelu():
    b = GraphBuilder([1, SEQ, EMBED], opset=20)
    return b.model(b.op("Gelu", "x", approximate="tanh"))


def training_dropout():
    b = _block()
    return b.model(b.op("Dropout", "x", b.const(0.5), b.const(True, np.bool_)))


def requant_shift():
    b = _block()
    b.nodes.append(
        helper.make_node("RequantShift", ["x"], ["y"], name="/RequantShift_0", domain="quantlib")
    )
    return b.model("y")


def symbolic_sequence():
    b = GraphBuilder([1, "seq", EMBED])
    return b.model(b.op("Relu", "x"))


def float16_input():
    b = _block()
    model = b.model(b.op("Relu", "x"))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    return model


def symbolic_intermediate():
    """A declared symbolic shape inside the graph is reported at the node computing it."""
    b = _block()
    model = b.model(b.op("Relu", "x"))
    model.graph.value_info.append(
        helper.make_tensor_value_info("/Relu_0_output_0", TensorProto.FLOAT, [1, "n", EMBED])
    )
    return model


def sparse_constant():
    b = _block()
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("values", TensorProto.FLOAT, [1], [1.0]),
        helper.make_tensor("indices", TensorProto.INT64, [1], [0]),
        [EMBED],
    )
    return b.model(b.op("Add", "x", b.op("Constant", sparse_value=sparse)))


def unknown_after_supported():
    """The first node that cannot be imported is reported, not the last."""
    b = _block()
    y = b.op("Transpose", b.op("Tanh", linear(b, "x", EMBED, EMBED)), perm=[0, 2, 1])
    return b.model(y)


CASES = {
    dilated_conv: "node '/blocks.0/Conv_3' (Conv): dilations=[2] are not supported (only 1)",
    unnamed_matmul_of_a_vector: "node 'MatMul_output_0' (MatMul): MatMul of shapes [1, 6] and "
    "[6, 4]: both must be matrices",
    weight_is_an_input: "node '/Gemm_0' (Gemm): 'w' is not a constant",
    addend_broadcasts_the_product: "node '/Add' (Add): the constant '/Constant_2_output_0' "
    "broadcasts the activation '/MatMul_output_0' to a larger shape",
    float64_weight: "node '/Gemm_1' (Gemm): constant '/Constant_0_output_0' has element type "
    "float64; only float32 is supported",
    transposed_gemm: "node '/Gemm_1' (Gemm): transA=1 is not supported (the activation must not "
    "be transposed)",
    fractional_power: "node '/Pow_1' (Pow): the exponent 3.5 is not supported (0.5 or 1 to 8)",
    mean_over_batch: "node '/ReduceMean_0' (ReduceMean): operating on the batch axis is not "
    "supported",
    mean_over_two_axes: "node '/ReduceMean_0' (ReduceMean): a mean over several axes [1, 2] is "
    "not supported",
    tanh_gelu: "node '/Gelu_0' (Gelu): approximate='tanh' is not supported (only 'none')",
    training_dropout: "node '/Dropout_2' (Dropout): training_mode '/Constant_1_output_0' is not "
    "a constant false",
    requant_shift: "node '/RequantShift_0' (RequantShift in domain 'quantlib'): unsupported op type",
    symbolic_sequence: "input 'x': tensor 'x' has a symbolic dimension 'seq' (axis 1); static "
    "shapes are required",
    float16_input: "input 'x': element type FLOAT16 is not supported; only float32",
    symbolic_intermediate: "node '/Relu_0' (Relu): tensor '/Relu_0_output_0' has a symbolic "
    "dimension 'n' (axis 1); static shapes are required",
    sparse_constant: "node '/Constant_0' (Constant): only numeric tensor constants are supported "
    "(not sparse or string ones)",
    unknown_after_supported: "node '/Tanh_4' (Tanh): unsupported op type",
}


@pytest.mark.parametrize("build", CASES, ids=lambda build: build.__name__)
def test_diagnostic(build):
    with pytest.raises(OnnxImportError) as error:
        import_model(build())
    assert str(error.value) == CASES[build]


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_model(tmp_path / "missing.onnx")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff\xff")
    with pytest.raises(OnnxImportError, match="^not an ONNX model"):
        import_model(path)
