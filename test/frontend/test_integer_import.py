"""Integerised (QuantLib/Deeploy) graphs import into the int8 form of the tinyattn ops: Deeploy's
own test graphs reproduce their stored outputs bit for bit, small graphs per pattern match an
integer oracle, and what cannot be imported is one line naming the node and the reason."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx_graphs import (
    GraphBuilder,
    assert_integer_matches_onnx,
    int_linear,
    int_weight,
    integer_attention,
    isoftmax,
    requant_shift,
    tinyattn_ops,
)

from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.arrays import ArraysNote
from tinyattn.frontend.onnx_import import OnnxImportError, import_model
from tinyattn.semantics.interpreter import evaluate

SEQ, EMBED, HEADS, HEAD_DIM = 5, 8, 2, 3
RNG = np.random.default_rng(7)


def _ops(module) -> list:
    return [op for op in module.walk() if op.name.startswith("tinyattn.")]


def _signature(module) -> tuple[list, list]:
    (main,) = module.ops
    types = main.function_type
    return (
        [t.get_element_type() for t in types.inputs.data],
        [t.get_element_type() for t in types.outputs.data],
    )


def _vectors(case):
    (x,) = np.load(case / "inputs.npz").values()
    (y,) = np.load(case / "outputs.npz").values()
    return x, y


# ---------------------------------------------------------------------------------------------
# Deeploy's graphs, read in place
# ---------------------------------------------------------------------------------------------


def test_eegformer_is_one_int8_mhsa_bit_exact(deeploy_dir):
    case = deeploy_dir / "EEGFormer"
    x, expected = _vectors(case)
    module = import_model(case / "network.onnx", np.load(case / "inputs.npz"))
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.mhsa", "tinyattn.reshape"]
    assert _signature(module) == ([ta.ui8], [ta.i8])  # inputs 0..254: unsigned, as Deeploy says
    (mhsa,) = [op for op in _ops(module) if op.name == "tinyattn.mhsa"]
    assert mhsa.is_integer() and mhsa.normalization.data == ta.NO_NORMALIZATION
    assert mhsa.isoftmax is None and mhsa.scale is None
    graph = onnx.load(case / "network.onnx").graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    multipliers = {
        int(constants[node.input[1]]) for node in graph.node if node.op_type == "RequantShift"
    }
    stages = ("q", "k", "v", "score", "context", "out")
    found = {getattr(mhsa, f"{stage}_requant").mul.get_values()[0] for stage in stages}
    assert found == multipliers  # every stage carries one of the graph's requantizations
    (got,) = evaluate(module, [x.astype(np.uint8)])
    np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_softmax_regular_is_one_integer_softmax_bit_exact(deeploy_dir):
    case = deeploy_dir / "Softmax-Regular"
    x, expected = _vectors(case)
    module = import_model(case / "network.onnx", np.load(case / "inputs.npz"))
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.softmax", "tinyattn.reshape"]
    assert _signature(module) == ([ta.i8], [ta.ui8])
    (softmax,) = [op for op in _ops(module) if op.name == "tinyattn.softmax"]
    (node,) = onnx.load(case / "network.onnx").graph.node
    attrs = {a.name: int(numpy_helper.to_array(a.t).item()) for a in node.attribute}
    assert softmax.isoftmax == ta.ISoftmaxAttr(
        attrs["coeffA"], attrs["coeffB"], attrs["coeffC"], attrs["log2"], attrs["n_levels"]
    )
    (got,) = evaluate(module, [x.astype(np.int8)])
    np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_inputs_without_samples_are_signed(deeploy_dir):
    module = import_model(deeploy_dir / "EEGFormer" / "network.onnx")
    assert _signature(module) == ([ta.i8], [ta.i8])


# ---------------------------------------------------------------------------------------------
# One graph per pattern, against the integer oracle
# ---------------------------------------------------------------------------------------------


def _block(shape=(1, SEQ, EMBED)) -> GraphBuilder:
    return GraphBuilder(list(shape), seed=3)


def _x(shape=(1, SEQ, EMBED), low=-128, high=127) -> np.ndarray:
    return RNG.integers(low, high + 1, shape)


@pytest.mark.parametrize("bias", [False, True])
def test_shared_accumulator_is_an_int32_linear_and_a_requant(bias):
    """The MatMul's result is also a graph output, so its RequantShift stays a requant."""
    b = _block()
    acc = int_linear(b, "x", EMBED, 4, bias=bias)
    model = b.model(acc, requant_shift(b, acc, 3, div=2**4, signed=0))
    module = assert_integer_matches_onnx(model, [_x()])
    linear, requant = [op for op in _ops(module) if op.name != "tinyattn.reshape"]
    assert linear.name == "tinyattn.linear" and requant.name == "tinyattn.requant"
    assert linear.result.type.get_element_type() == ta.i32 and linear.requant is None
    assert (linear.bias is not None) == bias
    assert _signature(module) == ([ta.i8], [ta.i32, ta.ui8])


@pytest.mark.parametrize("signed", [1, 0])
def test_requantized_linear_is_one_linear(signed):
    b = _block()
    model = b.model(requant_shift(b, int_linear(b, "x", EMBED, 4), 19, signed=signed))
    module = assert_integer_matches_onnx(model, [_x(low=0, high=255)])
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.linear", "tinyattn.reshape"]
    (linear,) = [op for op in _ops(module) if op.name == "tinyattn.linear"]
    assert linear.result.type.get_element_type() == (ta.i8 if signed else ta.ui8)
    assert linear.requant == ta.RequantAttr(19, 0, 8)
    assert _signature(module)[0] == [ta.ui8]


def test_per_channel_requant_of_a_vector_is_on_its_last_axis():
    """[1, N]: Deeploy's channel axis 1 is the last axis, so the requant is per channel."""
    b = _block((1, EMBED))
    mul, add = np.arange(3, 7), np.array([0, 128, -256, 512])
    model = b.model(requant_shift(b, int_linear(b, "x", EMBED, 4), mul, add, div=2**6))
    module = assert_integer_matches_onnx(model, [_x((1, EMBED))])
    (linear,) = [op for op in _ops(module) if op.name == "tinyattn.linear"]
    assert linear.requant == ta.RequantAttr(mul.tolist(), add.tolist(), 6)


def test_levels_attribute_of_older_exports():
    """Older QuantLib exports spell RequantShift's `n_levels_out` as `n_levels`."""
    b = _block()
    y = b.op(
        "RequantShift",
        int_linear(b, "x", EMBED, 4),
        b.const(7),
        b.const(0),
        div=numpy_helper.from_array(np.float32(2**8)),
        n_levels=numpy_helper.from_array(np.float32(256)),
        signed=numpy_helper.from_array(np.float32(0)),
    )
    module = import_model(b.model(y))
    (linear,) = [op for op in _ops(module) if op.name == "tinyattn.linear"]
    assert linear.requant == ta.RequantAttr(7, 0, 8)
    assert linear.result.type.get_element_type() == ta.ui8


def test_uniform_per_channel_values_are_one_value():
    b = _block()
    model = b.model(requant_shift(b, int_linear(b, "x", EMBED, 4), [9] * SEQ, [64] * SEQ))
    module = assert_integer_matches_onnx(model, [_x()])
    (linear,) = [op for op in _ops(module) if op.name == "tinyattn.linear"]
    assert linear.requant == ta.RequantAttr(9, 64, 8)


def test_residual_add_with_and_without_requant():
    b = _block()
    b.input("y", [1, SEQ, EMBED])
    total = b.op("Add", "x", "y")
    model = b.model(total, requant_shift(b, b.op("Add", total, "x"), 128, div=2**8))
    inputs = [_x(low=0, high=255), _x()]
    module = assert_integer_matches_onnx(model, inputs)
    adds = [op for op in _ops(module) if op.name == "tinyattn.add"]
    assert [op.result.type.get_element_type() for op in adds] == [ta.i32, ta.i8]
    assert _signature(module) == ([ta.ui8, ta.i8], [ta.i32, ta.i8])


def test_wide_inputs_are_i32():
    """Values beyond 8 bits (Deeploy would pick int16) are i32; a RequantShift narrows them."""
    b = _block()
    model = b.model(requant_shift(b, "x", 5, div=2**10))
    module = assert_integer_matches_onnx(model, [_x(low=-30000, high=30000)])
    assert _signature(module) == ([ta.i32], [ta.i8])
    assert "tinyattn.requant" in tinyattn_ops(module)


def test_isoftmax_over_requantized_scores():
    b = _block((1, 2, SEQ, SEQ))
    model = b.model(isoftmax(b, requant_shift(b, "x", 3, div=2**2)))
    module = assert_integer_matches_onnx(model, [_x((1, 2, SEQ, SEQ), -400, 400)])
    assert tinyattn_ops(module)[-2:] == ["tinyattn.softmax", "tinyattn.reshape"]


def test_reshape_and_unit_transpose_are_reshapes():
    b = _block((1, SEQ, 1, EMBED))
    moved = b.op("Transpose", "x", perm=[0, 2, 1, 3])  # only moves an axis of size 1
    flat = b.op("Reshape", moved, b.const([1, SEQ * EMBED], np.int64))
    model = b.model(requant_shift(b, b.op("MatMul", flat, int_weight(b, SEQ * EMBED, 3)), 2))
    module = assert_integer_matches_onnx(model, [_x((1, SEQ, 1, EMBED))])
    assert set(tinyattn_ops(module)) == {"tinyattn.reshape", "tinyattn.linear"}


@pytest.mark.parametrize("softmax", [True, False], ids=["isoftmax", "no_normalization"])
@pytest.mark.parametrize("unsigned_input", [True, False], ids=["ui8", "i8"])
@pytest.mark.parametrize("unsigned_output", [True, False], ids=["ui8_out", "i8_out"])
def test_integer_attention_is_one_mhsa(softmax, unsigned_input, unsigned_output):
    b = _block()
    out = integer_attention(
        b,
        "x",
        seq=SEQ,
        heads=HEADS,
        head_dim=HEAD_DIM,
        embed=EMBED,
        normalization="iSoftmax" if softmax else None,
        signed={"out": 0 if unsigned_output else 1},
    )
    x = _x(low=0, high=255) if unsigned_input else _x()
    module = assert_integer_matches_onnx(b.model(out), [x])
    assert tinyattn_ops(module) == ["tinyattn.reshape", "tinyattn.mhsa", "tinyattn.reshape"]
    (mhsa,) = [op for op in _ops(module) if op.name == "tinyattn.mhsa"]
    assert mhsa.heads == HEADS and mhsa.is_integer()
    assert (mhsa.isoftmax is not None) == softmax
    assert mhsa.normalization.data == (ta.SOFTMAX if softmax else ta.NO_NORMALIZATION)
    assert _signature(module) == (
        [ta.ui8 if unsigned_input else ta.i8],
        [ta.ui8 if unsigned_output else ta.i8],
    )


def test_attention_feeding_a_residual_and_a_classifier():
    """What surrounds an attention becomes int8 linear/add/requant ops."""
    b = _block()
    attended = integer_attention(b, "x", seq=SEQ, heads=HEADS, head_dim=HEAD_DIM, embed=EMBED)
    residual = requant_shift(b, b.op("Add", attended, "x"), 128)
    flat = b.op("Reshape", residual, b.const([1, SEQ * EMBED], np.int64))
    logits = requant_shift(b, int_linear(b, flat, SEQ * EMBED, 3), 2, signed=1)
    module = assert_integer_matches_onnx(b.model(logits), [_x()])
    assert tinyattn_ops(module) == [
        "tinyattn.reshape",
        "tinyattn.mhsa",
        "tinyattn.add",
        "tinyattn.reshape",
        "tinyattn.linear",
        "tinyattn.reshape",
    ]


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------


def _requant_of_linear(**options):
    b = _block()
    return b, requant_shift(b, int_linear(b, "x", EMBED, 4), name="/RequantShift_9", **options)


def div_not_a_power_of_two():
    b, y = _requant_of_linear(mul=3, div=1000)
    return b.model(y)


def four_bit_levels():
    b, y = _requant_of_linear(mul=3, levels=16)
    return b.model(y)


def signed_missing():
    b, y = _requant_of_linear(mul=3, signed=None)
    return b.model(y)


def signed_is_two():
    b, y = _requant_of_linear(mul=3, signed=2)
    return b.model(y)


def mul_is_an_activation():
    b = _block()
    b.nodes.append(
        onnx.helper.make_node(
            "RequantShift",
            [int_linear(b, "x", EMBED, 4), "x", b.const(0)],
            ["y"],
            name="/RequantShift_9",
            div=numpy_helper.from_array(np.float32(256)),
            n_levels_out=numpy_helper.from_array(np.float32(256)),
            signed=numpy_helper.from_array(np.float32(1)),
        )
    )
    return b.model("y")


def mul_of_the_wrong_length():
    b, y = _requant_of_linear(mul=np.arange(1, 4))
    return b.model(y)


def fractional_mul():
    b, y = _requant_of_linear(mul=2.5)
    return b.model(y)


def fractional_weight():
    b = _block()
    y = b.op("MatMul", "x", b.const(np.full((EMBED, 4), 0.5)), name="/MatMul_7")
    return b.model(requant_shift(b, y, 3))


def weight_beyond_int8():
    b = _block()
    y = b.op("MatMul", "x", b.const(np.full((EMBED, 4), 300.0)), name="/MatMul_7")
    return b.model(requant_shift(b, y, 3))


def matmul_of_an_accumulator():
    b = _block()
    y = b.op("MatMul", int_linear(b, "x", EMBED, 4), int_weight(b, 4, 2), name="/MatMul_7")
    return b.model(requant_shift(b, y, 3))


def isoftmax_of_unsigned():
    b = _block()
    return b.model(isoftmax(b, requant_shift(b, int_linear(b, "x", EMBED, 4), 3, signed=0)))


def isoftmax_without_log2():
    b = _block()
    return b.model(isoftmax(b, requant_shift(b, int_linear(b, "x", EMBED, 4), 3), log2=0))


def float_op_in_an_integer_graph():
    b = _block()
    return b.model(b.op("Sigmoid", requant_shift(b, int_linear(b, "x", EMBED, 4), 3)))


def _attention(**options):
    b = _block()
    out = integer_attention(b, "x", seq=SEQ, heads=HEADS, head_dim=HEAD_DIM, embed=EMBED, **options)
    return b.model(out)


def attention_with_unsigned_queries():
    return _attention(signed={"q": 0})


def attention_with_float_softmax():
    return _attention(normalization="Softmax")


def attention_without_value_requant():
    return _attention(unrequantized="v")


DIAGNOSTICS = {
    div_not_a_power_of_two: "node '/RequantShift_9' (RequantShift): div=1000 is not a power of "
    "two (up to 2^31)",
    four_bit_levels: "node '/RequantShift_9' (RequantShift): 16 output levels are not "
    "supported; tinyattn's 8-bit results have 256",
    signed_missing: "node '/RequantShift_9' (RequantShift): attribute 'signed' is missing",
    signed_is_two: "node '/RequantShift_9' (RequantShift): attribute 'signed'=2 is neither 0 nor 1",
    mul_is_an_activation: "node '/RequantShift_9' (RequantShift): mul 'x' is not a constant",
    mul_of_the_wrong_length: "node '/RequantShift_9' (RequantShift): mul '/Constant_4_output_0' "
    "of shape [3] does not broadcast to the input [1, 5, 4]",
    fractional_mul: "node '/RequantShift_9' (RequantShift): mul '/Constant_4_output_0' holds "
    "non-integer values",
    fractional_weight: "node '/MatMul_7' (MatMul): weight '/Constant_0_output_0' holds "
    "non-integer values",
    weight_beyond_int8: "node '/MatMul_7' (MatMul): weight '/Constant_0_output_0' holds values "
    "in [300, 300], outside int8 [-128, 127]",
    matmul_of_an_accumulator: "node '/MatMul_7' (MatMul): its input '/Add_3_output_0' is an "
    "int32 accumulator; only 8-bit activations are multiplied (a RequantShift narrows it)",
    isoftmax_of_unsigned: "node '/iSoftmax_7' (iSoftmax): its input '/RequantShift_6_output_0' "
    "is ui8; the integer softmax takes i8 scores",
    isoftmax_without_log2: "node '/iSoftmax_7' (iSoftmax): log2=0 must be positive",
    float_op_in_an_integer_graph: "node '/Sigmoid_7' (Sigmoid): unsupported op type in an "
    "integer graph",
    attention_with_unsigned_queries: "node '/RequantShift_7' (RequantShift): narrows the "
    "attention's q stage to ui8; tinyattn's integer attention keeps it signed (i8)",
    attention_with_float_softmax: "node '/Softmax_32' (Softmax): a float softmax in an integer "
    "attention",
    attention_without_value_requant: "node '/RequantShift_43' (RequantShift): the attention's v "
    "stage has 0 RequantShifts; an integer attention narrows each stage with one",
}


@pytest.mark.parametrize("build", DIAGNOSTICS, ids=lambda build: build.__name__)
def test_diagnostic(build):
    with pytest.raises(OnnxImportError) as error:
        import_model(build())
    assert str(error.value) == DIAGNOSTICS[build]


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], r"^sample inputs: the model takes 1 \(x\); got 0 arrays$"),
        ([_x((SEQ, EMBED))], r"^input 'x': the sample has shape \[5, 8\]; the model says \[1, 5"),
        ([_x() + 0.5], r"^input 'x': the sample holds non-integer values; an integer graph's"),
        ([_x() * 2**25], r"^input 'x': sample values in \[-?\d+, \d+\] exceed 32 bits$"),
    ],
    ids=["count", "shape", "fraction", "wide"],
)
def test_bad_sample_inputs(samples, message):
    b = _block()
    with pytest.raises(OnnxImportError, match=message):
        import_model(b.model(requant_shift(b, "x", 3)), samples)


def test_samples_by_name_else_by_position():
    b = _block()
    model = b.model(requant_shift(b, int_linear(b, "x", EMBED, 4), 3))
    unsigned = _x(low=0, high=255)
    with pytest.warns(ArraysNote, match=r"^ignoring 'junk': the model takes 1 \(x\)$"):
        assert _signature(import_model(model, {"junk": _x(), "x": unsigned}))[0] == [ta.ui8]
    assert _signature(import_model(model, {"input_0": unsigned}))[0] == [ta.ui8]
