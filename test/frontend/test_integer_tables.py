"""QuantLib's elementwise integer ops of one 8-bit operand (iHardswish, TrueIntegerDiv, a
RequantShift of an 8-bit tensor) import as `tinyattn.lookup` tables computed from their exact
semantics, a following RequantShift folded in; checked bit for bit against an oracle written
from the ops' definitions (onnx_graphs), in the interpreter and compiled on the targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_graphs import (
    GraphBuilder,
    assert_integer_matches_onnx,
    int_linear,
    requant_shift,
    run_integer_onnx,
    tinyattn_ops,
)
from requires import target_param

from tinyattn.api import run
from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.onnx_import import OnnxImportError, import_model

SEQ, EMBED = 4, 8
RNG = np.random.default_rng(17)
HARDSWISH = {"three": 765, "six": 1530, "one_over_six": 33}
DIVISION = {"Delta": 16384, "eps": 1, "eta": 200000, "y": 2}


def _x(low=-128, high=127) -> np.ndarray:
    # Every 8-bit value at least once, so the whole table is exercised.
    values = np.resize(np.arange(low, high + 1), (1, 32, EMBED))
    return RNG.permutation(values.ravel()).reshape(1, 32, EMBED)


def _tables(module) -> list:
    return [op for op in module.walk() if isinstance(op, ta.LookupOp)]


def hardswish_requant_of(b: GraphBuilder, x: str) -> str:
    return requant_shift(b, b.op("iHardswish", x, **HARDSWISH), 1, div=2**16)


def hardswish_requant(b: GraphBuilder) -> str:
    return hardswish_requant_of(b, "x")


def hardswish_wide(b: GraphBuilder) -> str:
    return b.op("iHardswish", "x", **HARDSWISH)


def division_chain(b: GraphBuilder) -> str:
    narrowed = requant_shift(b, "x", 5, div=2**2)
    return requant_shift(b, b.op("TrueIntegerDiv", narrowed, **DIVISION), 4, div=2**16)


def requant_of_input(b: GraphBuilder) -> str:
    return requant_shift(b, "x", 3, add=-7, div=2**2, signed=0)


@pytest.mark.parametrize(
    ("build", "table_type", "low"),
    [
        (hardswish_requant, ta.i8, -128),
        (hardswish_wide, ta.i32, -128),
        (division_chain, ta.i8, -128),
        (requant_of_input, ta.ui8, 0),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_one_table_matches_the_oracle(build, table_type, low):
    b = GraphBuilder([1, 32, EMBED])
    model = b.model(build(b))
    module = assert_integer_matches_onnx(model, [_x(low, low + 255)])
    (lookup,) = _tables(module)
    assert lookup.table.type.get_element_type() == table_type
    assert tinyattn_ops(module).count("tinyattn.lookup") == 1


def test_a_per_channel_requant_of_an_8bit_tensor_widens_it():
    """A per-channel RequantShift is no function of the value alone: a `tinyattn.requant` of
    the 8-bit tensor instead (rank 2: channels on the last axis)."""
    b = GraphBuilder([SEQ, EMBED])
    model = b.model(requant_shift(b, "x", np.arange(1, EMBED + 1), div=2**3))
    module = assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (SEQ, EMBED))])
    assert "tinyattn.requant" in tinyattn_ops(module) and not _tables(module)


def test_hardswish_of_an_accumulator_is_one_line():
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(b.op("iHardswish", int_linear(b, "x", EMBED, 4), name="hs", **HARDSWISH))
    with pytest.raises(OnnxImportError) as error:
        import_model(model)
    assert str(error.value).startswith("node 'hs' (iHardswish): its input '/Add_")
    assert str(error.value).endswith(
        "is i32; iHardswish is supported on 8-bit tensors (as a table) or right after one"
    )


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_tables_compile_and_run_bit_exact(target):
    b = GraphBuilder([1, 32, EMBED])
    model = b.model(hardswish_requant(b))
    x = _x()
    (expected,) = run_integer_onnx(model, [x])
    report = run(import_model(model, [x]), target, inputs=[x.astype(np.int8)], expect=[expected])
    assert report.match and report.max_abs_error == 0


def test_a_per_channel_requant_ends_a_chain():
    """x -> RequantShift per column -> iHardswish -> RequantShift: a requant, then one table
    of the other two."""
    b = GraphBuilder([SEQ, EMBED])
    y = requant_shift(b, "x", np.arange(1, EMBED + 1), div=2**3)
    model = b.model(hardswish_requant_of(b, y))
    module = assert_integer_matches_onnx(model, [RNG.integers(-128, 128, (SEQ, EMBED))])
    assert tinyattn_ops(module) == ["tinyattn.requant", "tinyattn.lookup"]
