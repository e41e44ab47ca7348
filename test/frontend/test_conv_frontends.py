"""Convolutional front ends (the tokenizers of compact convolutional transformers and of EEG and
radar models): Conv 1-D and 2-D (strides, pads, groups 1, depthwise or any), MaxPool, Relu and
the flatten-and-transpose to tokens, in float against ONNX's reference and integerised (a
per-channel RequantShift along the channels) bit for bit against the oracle; on the targets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx_graphs import (
    GraphBuilder,
    assert_integer_matches_onnx,
    assert_matches_onnx,
    int_weight,
    requant_shift,
    run_integer_onnx,
    tinyattn_ops,
)
from requires import target_param

from tinyattn.api import run
from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.onnx_import import OnnxImportError, import_model

RNG = np.random.default_rng(31)


CONVS = pytest.mark.parametrize(
    ("shape", "weight", "attrs"),
    [
        ((1, 3, 9, 8), (4, 3, 3, 3), {"strides": [1, 1], "pads": [1, 1, 1, 1]}),
        ((1, 3, 9, 8), (4, 3, 3, 2), {"strides": [2, 3], "pads": [0, 1, 2, 0]}),
        ((1, 4, 7, 7), (4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
        ((1, 4, 12), (6, 2, 5), {"group": 2, "strides": [2], "pads": [2, 2]}),
    ],
    ids=["same", "strided", "depthwise", "1d_grouped"],
)


def _conv_relu(shape, weight, attrs) -> onnx.ModelProto:
    b = GraphBuilder(shape)
    y = b.op("Conv", "x", b.weight(*weight), b.bias(weight[0]), **attrs)
    return b.model(b.op("Relu", y))


@CONVS
def test_conv_matches_onnx(shape, weight, attrs):
    module = assert_matches_onnx(_conv_relu(shape, weight, attrs))
    assert "tinyattn.conv" in tinyattn_ops(module)


@pytest.mark.parametrize("target", [target_param("host"), target_param("cortex-m4")])
@CONVS
def test_conv_compiles_and_runs(shape, weight, attrs, target):
    """The window loops (grouped) and im2col (one group) on a target: windows inside the
    input, and at each padded border (asymmetric pads and strides included)."""
    assert run(import_model(_conv_relu(shape, weight, attrs)), target).match


@pytest.mark.parametrize(
    ("shape", "attrs"),
    [
        ((1, 3, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((1, 4, 11), {"kernel_shape": [2], "strides": [2]}),
    ],
    ids=["2d", "1d"],
)
def test_maxpool_matches_onnx(shape, attrs):
    b = GraphBuilder(shape)
    assert_matches_onnx(b.model(b.op("MaxPool", "x", **attrs)))


def _tokenizer(b: GraphBuilder, channels: int, integer: bool) -> str:
    """Conv, Relu, MaxPool, then [1, C, H, W] -> [1, H*W, C] as PyTorch's flatten(2) and
    transpose(1, 2) export it."""
    if integer:
        y = b.op("Conv", "x", int_weight(b, channels, 3, 3, 3, bound=20), pads=[1, 1, 1, 1])
        y = requant_shift(b, y, RNG.integers(1, 8, channels), div=2**8)
    else:
        y = b.op("Conv", "x", b.weight(channels, 3, 3, 3), b.bias(channels), pads=[1, 1, 1, 1])
    y = b.op("Relu", y)
    y = b.op("MaxPool", y, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.op("Reshape", y, b.const([1, channels, 16], np.int64))
    return b.op("Transpose", y, perm=[0, 2, 1])


def test_tokenizer_matches_onnx():
    b = GraphBuilder([1, 3, 8, 8])
    module = assert_matches_onnx(b.model(_tokenizer(b, 5, integer=False)))
    assert tinyattn_ops(module).count("tinyattn.transpose") == 1


def test_integer_tokenizer_matches_the_oracle():
    """An int8 Conv with a RequantShift per output channel (a vector along axis 1 of
    [1, C, H, W]: the convolution narrows per channel itself), Relu and MaxPool of 8-bit
    values, tokens."""
    b = GraphBuilder([1, 3, 8, 8])
    model = b.model(_tokenizer(b, 5, integer=True))
    module = assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (1, 3, 8, 8))])
    assert {"tinyattn.conv", "tinyattn.maxpool"} <= set(tinyattn_ops(module))
    assert "tinyattn.muladd" not in tinyattn_ops(module)
    (conv,) = [op for op in module.walk() if op.name == "tinyattn.conv"]
    assert conv.requant.channels() == 5 and conv.result.type.get_element_type() == ta.i8


@pytest.mark.parametrize(
    ("mul", "expected"),
    [
        (np.array([3, 5, 7, 2]).reshape(1, 4, 1, 1) * np.ones((1, 1, 6, 1), int), "tinyattn.conv"),
        (np.arange(1, 7).reshape(1, 1, 1, 6), "tinyattn.requant"),
        (np.arange(1, 25).reshape(4, 6, 1), "tinyattn.muladd"),
    ],
    ids=["per_channel", "per_column", "per_channel_and_row"],
)
def test_integer_conv_narrows_by_what_its_requant_varies_along(mul, expected):
    """Along the channels (axis 1 of [1, C, H, W]) the convolution narrows itself; along the
    columns a requant follows it, along channels and rows a muladd: each bit-exact."""
    b = GraphBuilder([1, 3, 6, 6])
    y = b.op("Conv", "x", int_weight(b, 4, 3, 3, 3, bound=20), pads=[1, 1, 1, 1])
    model = b.model(requant_shift(b, y, mul, div=2**9))
    module = assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (1, 3, 6, 6))])
    ops = [name for name in tinyattn_ops(module) if name != "tinyattn.reshape"]
    assert ops[-1] == expected


def test_a_batch_of_images_is_one_line():
    b = GraphBuilder([2, 3, 8, 8])
    model = b.model(b.op("Conv", "x", b.weight(4, 3, 3, 3), name="conv"))
    with pytest.raises(OnnxImportError, match=r"^node 'conv' \(Conv\): a batch of 2 is not supported here; export with batch 1$"):
        import_model(model)


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_tokenizers_compile_and_run(target):
    b = GraphBuilder([1, 3, 8, 8])
    model = b.model(_tokenizer(b, 5, integer=True))
    x = RNG.integers(-128, 128, (1, 3, 8, 8))
    expected = run_integer_onnx(model, [x])
    assert run(import_model(model, [x]), target, inputs=[x], expect=expected).match
    b = GraphBuilder([1, 3, 8, 8])
    assert run(import_model(b.model(_tokenizer(b, 5, integer=False))), target).match


@pytest.mark.parametrize("target", [target_param("host"), target_param("cortex-m4")])
@pytest.mark.parametrize("groups", [1, 4], ids=["im2col", "depthwise"])
def test_integer_conv_narrowing_per_channel_compiles_and_runs(groups, target):
    """The per-channel requant in the target's matmul (one group: the product's columns are
    the channels) and in the window loop (depthwise), bit-exact."""
    b = GraphBuilder([1, 4, 6, 6])
    weight = int_weight(b, 4, 4 // groups, 3, 3, bound=20)
    y = b.op("Conv", "x", weight, pads=[1, 1, 1, 1], group=groups)
    model = b.model(requant_shift(b, y, np.array([3, 5, 7, 2]).reshape(1, 4, 1, 1), div=2**9))
    x = RNG.integers(-128, 128, (1, 4, 6, 6))
    expected = run_integer_onnx(model, [x])
    assert run(import_model(model, [x]), target, inputs=[x], expect=expected).match
