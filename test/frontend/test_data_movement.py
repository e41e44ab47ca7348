"""Data movement outside attention: Concat (a class token before the tokens), Slice (constant
bounds, steps), Gather of constant indices (the class token's output, every other position),
Transpose; float against ONNX's reference, integer bit for bit against the oracle, and on the
targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import (
    GraphBuilder,
    assert_integer_matches_onnx,
    assert_matches_onnx,
    int_linear,
    requant_shift,
    tinyattn_ops,
)
from requires import target_param

from tinyattn.api import run
from tinyattn.frontend.onnx_import import OnnxImportError, import_model

SEQ, EMBED = 5, 6
RNG = np.random.default_rng(37)


def _class_token(b: GraphBuilder) -> str:
    """[cls; x] as a ViT prepends its class token, then the class token's row."""
    tokens = b.op("Concat", b.const(RNG.normal(size=(1, 1, EMBED))), "x", axis=1)
    return b.op("Gather", b.op("Relu", tokens), b.const(0, np.int64), axis=1)


@pytest.mark.parametrize(
    "build",
    [
        _class_token,
        lambda b: b.op("Slice", "x", *(b.const(v, np.int64) for v in ([1, -1], [5, 100], [1, 2], [2, 3]))),
        lambda b: b.op("Gather", "x", b.const([0, 2, 4], np.int64), axis=1),
        lambda b: b.op("Concat", "x", b.op("Relu", "x"), axis=2),
    ],
    ids=["class_token", "slice", "every_other", "concat_features"],
)
def test_data_movement_matches_onnx(build):
    b = GraphBuilder([1, SEQ, EMBED])
    assert_matches_onnx(b.model(build(b)))


def test_integer_data_movement_matches_the_oracle():
    b = GraphBuilder([1, SEQ, EMBED])
    y = requant_shift(b, int_linear(b, "x", EMBED, EMBED), 3)
    both = b.op("Concat", y, "x", axis=2)
    model = b.model(b.op("Gather", b.op("Transpose", both, perm=[0, 2, 1]), b.const([1, 3], np.int64), axis=2))
    module = assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (1, SEQ, EMBED))])
    assert {"tinyattn.concat", "tinyattn.slice", "tinyattn.transpose"} <= set(tinyattn_ops(module))


def test_scattered_indices_are_one_line():
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(b.op("Gather", "x", b.const([0, 1, 3], np.int64), axis=1, name="pick"))
    with pytest.raises(OnnxImportError, match=r"^node 'pick' \(Gather\): indices \[0, 1, 3\] are not one index or evenly spaced ones$"):
        import_model(model)


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_data_movement_compiles_and_runs(target):
    b = GraphBuilder([1, SEQ, EMBED])
    head = b.op("Slice", _class_token(b), *(b.const(v, np.int64) for v in ([1], [6], [1], [2])))
    assert run(import_model(b.model(head)), target).match
