"""Bit-exact int8 lowering: integer tinyattn modules built with the op builders, lowered layer by
layer by convert-tinyattn-to-kernels and convert-kernels-to-loops, compiled, run on the host and under QEMU, and compared with
the numpy reference (semantics/reference.py) with zero tolerance. The broad sweep runs on the
host; each emulated target runs a representative subset, and rv32 the EEG-shaped attention."""

from __future__ import annotations

import numpy as np
import pytest
from handwritten import RUNNABLE, needs_pipeline, runnable
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType, i32
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import from_numpy
from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import DriverError, run_model
from tinyattn.frontend.onnx_import import import_model

LAYERWISE = LowerOptions(schedule="layerwise", fuse_weights="never")  # as built: mhsa stays mhsa
EMULATED = [target for target in RUNNABLE if target.values[0] != "host"]
ISOFTMAX = ta.ISoftmaxAttr(1, 173, 15599, 127)  # the attention coefficients QuantLib exports
SHIFT = 16
RMS = {ta.i8: 74.0, ta.ui8: 147.0}  # root mean square of uniform i8 and ui8 data


class _Function:
    """Collects constants and ops into `func.func @main`."""

    def __init__(self, *input_types: Attribute):
        self.block = Block(arg_types=list(input_types))
        self.ops: list[Operation] = []

    @property
    def args(self) -> tuple[SSAValue, ...]:
        return tuple(self.block.args)

    def const(self, array: np.ndarray) -> SSAValue:
        return self.add(arith.ConstantOp(from_numpy(array)))

    def add(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def module(self, *results: SSAValue) -> ModuleOp:
        self.block.add_ops([*self.ops, func.ReturnOp(*results)])
        types = ([a.type for a in self.block.args], [r.type for r in results])
        module = ModuleOp([func.FuncOp("main", types, Region(self.block))])
        module.verify()
        return module


def _requant(
    rng: np.random.Generator, depth: int, rms_x: float, rms_w: float, channels: int, std: float
) -> ta.RequantAttr:
    """A requantization that maps a sum of `depth` products to a spread of about `std` (some
    values clip), per tensor or with jittered per-channel multipliers and offsets."""
    mul = std * 2**SHIFT / (np.sqrt(depth) * rms_x * rms_w)
    if channels == 1:
        return ta.RequantAttr(round(mul), int(rng.integers(-(2**SHIFT), 2**SHIFT)), SHIFT)
    muls = np.round(mul * rng.uniform(0.6, 1.4, channels)).astype(int)
    adds = rng.integers(-(2**SHIFT), 2**SHIFT, channels)
    return ta.RequantAttr(muls.tolist(), adds.tolist(), SHIFT)


def _weights(f: _Function, rng: np.random.Generator, *shape: int) -> SSAValue:
    return f.const(rng.integers(-128, 128, shape, dtype=np.int8))


def _biases(f: _Function, rng: np.random.Generator, *shape: int) -> SSAValue:
    return f.const(rng.integers(-20000, 20000, shape).astype(np.int32))


def attention(
    s: int,
    e: int,
    p: int,
    h: int,
    *,
    fused: bool = False,
    softmax: bool = True,
    x_type: Attribute = ta.ui8,
    out_type: Attribute = ta.i8,
    per_channel: bool = True,
    seed: int = 0,
) -> ModuleOp:
    """An int8 (fused_)mhsa with random weights and requantizations that keep every stage in
    range: Q, K, V, context about ±40, scores about ±60 (a spread the integer softmax resolves)."""
    rng = np.random.default_rng(seed)
    f = _Function(TensorType(x_type, [s, e]))
    rms_x = RMS[x_type]

    def rq(depth: int, rms_in: float, rms_w: float, channels: int, std: float = 40.0):
        return _requant(rng, depth, rms_in, rms_w, channels if per_channel else 1, std)

    props: dict[str, Attribute] = {
        "v_requant": rq(e, rms_x, 74, p),
        "score_requant": rq(e if fused else p, 40, rms_x if fused else 40, s, 60),
        "context_requant": rq(s, 255 / np.sqrt(s) if softmax else 60, 40, p),
        "out_requant": rq(h * p, 40, 74, e),
    }
    if softmax:
        props["isoftmax"] = ISOFTMAX
    else:
        props["normalization"] = StringAttr(ta.NO_NORMALIZATION)
    (x,) = f.args
    value = (_weights(f, rng, h, e, p), _biases(f, rng, h, p))
    output = (_weights(f, rng, h, p, e), _biases(f, rng, e))
    result_type = TensorType(out_type, [s, e])
    if fused:
        props["qk_requant"] = rq(e, rms_x, 74, e)
        qk = (_weights(f, rng, h, e, e), _biases(f, rng, h, e))
        op = ta.FusedMHSAOp(
            x, qk, value, output, num_heads=h, result_type=result_type, properties=props
        )
    else:
        props["q_requant"] = rq(e, rms_x, 74, p)
        props["k_requant"] = rq(e, rms_x, 74, p)
        q = (_weights(f, rng, h, e, p), _biases(f, rng, h, p))
        k = (_weights(f, rng, h, e, p), _biases(f, rng, h, p))
        op = ta.MHSAOp(
            x, q, k, value, output, num_heads=h, result_type=result_type, properties=props
        )
    return f.module(f.add(op))


def encoder_ops(seed: int = 0) -> ModuleOp:
    """linear (ui8 rank-3 input, per-channel requant; and the bare i32 accumulator), a residual
    add of i8 and i32 narrowed to ui8, relu, integer softmax and a reshape."""
    rng = np.random.default_rng(seed)
    f = _Function(TensorType(ta.ui8, [2, 3, 8]))
    (x,) = f.args
    w1, b1, w2 = _weights(f, rng, 8, 6), _biases(f, rng, 6), _weights(f, rng, 8, 6)
    projected = f.add(
        ta.LinearOp(
            x,
            w1,
            b1,
            result_type=TensorType(ta.i8, [2, 3, 6]),
            requant=_requant(rng, 8, RMS[ta.ui8], 74, 6, 60),
        )
    )
    wide = f.add(ta.LinearOp(x, w2, result_type=TensorType(i32, [2, 3, 6])))
    residual = f.add(
        ta.AddOp(
            projected,
            wide,
            result_type=TensorType(ta.ui8, [2, 3, 6]),
            requant=_requant(rng, 8, RMS[ta.ui8], 74, 1, 80),
        )
    )
    relu = f.add(ta.ReluOp(projected))
    probs = f.add(ta.SoftmaxOp(projected, isoftmax=ISOFTMAX))
    flat = f.add(ta.ReshapeOp(probs, [6, 6]))
    return f.module(residual, relu, flat)


def means(seed: int = 0) -> ModuleOp:
    """Integer means: requantized per channel of the result's last axis (over the first, the
    middle and the last axis), and the bare i32 mean rounded half up."""
    rng = np.random.default_rng(seed)
    f = _Function(TensorType(ta.ui8, [6, 4]), TensorType(ta.i8, [2, 3, 4]))
    a, b = f.args

    def rq(channels: int) -> ta.RequantAttr:
        return _requant(rng, 1, 1, 1, channels, 100)  # sums of a few 8-bit values

    results = [
        ta.MeanOp(a, axis=0, requant=rq(4), element_type=ta.i8),
        ta.MeanOp(a, axis=1, element_type=i32),
        ta.MeanOp(b, axis=1, keepdims=True, requant=rq(4), element_type=ta.ui8),
        ta.MeanOp(b, axis=2, requant=rq(3), element_type=ta.i8),
        ta.MeanOp(b, axis=0, element_type=i32),
    ]
    return f.module(*(f.add(op) for op in results))


# Overflow and rounding at the edges, with inputs given explicitly.
EDGE_BIAS = np.array([2**31 - 1000, -(2**31) + 5, 7], np.int32)  # x W crosses +-2^31
EDGE_MUL = 2**20 + 7  # x * mul crosses 2^31 for |x| > 2048
TIES = np.array([-127, -3, -1, 1, 3, 127, 255, -257], np.int32)  # odd: x / 2 ends in .5


def edge_cases() -> ModuleOp:
    """An i32 add that wraps, a requant whose product wraps, a requant of exact ties (x / 2)
    and a linear whose accumulator crosses 2^31 from the bias."""
    f = _Function(
        TensorType(i32, [16]),
        TensorType(i32, [16]),
        TensorType(i32, [TIES.size]),
        TensorType(ta.i8, [2, 4]),
    )
    a, b, ties, x = f.args
    wrapped = f.add(ta.AddOp(a, b))
    product = f.add(ta.RequantOp(a, ta.RequantAttr(EDGE_MUL, 12345, 24), ta.i8))
    halves = f.add(ta.RequantOp(ties, ta.RequantAttr(1, 0, 1), ta.i8))
    weights = f.const(np.full((4, 3), 127, np.int8))
    bias = f.const(EDGE_BIAS)
    crossing = f.add(ta.LinearOp(x, weights, bias, result_type=TensorType(i32, [2, 3])))
    return f.module(wrapped, product, halves, crossing)


def edge_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    a = rng.integers(-(2**31), 2**31, 16, dtype=np.int64)
    b = rng.integers(-(2**31), 2**31, 16, dtype=np.int64)
    a[:2], b[:2] = [2**31 - 1, -(2**31)], [1, -1]  # INT32_MAX + 1, INT32_MIN - 1
    x = np.array([[127, 127, 127, 127], [-128, -128, -128, -128]], np.int8)
    # The data must reach the edges it is about.
    assert np.any(np.abs(a + b) >= 2**31)
    assert np.any(np.abs(a * EDGE_MUL) >= 2**31)
    acc = x.astype(np.int64) @ np.full((4, 3), 127) + EDGE_BIAS
    assert np.any(acc >= 2**31) and np.any(acc < -(2**31))
    return [a.astype(np.int32), b.astype(np.int32), TIES, x]


def _check(module: ModuleOp, target: str, build_dir, **kwargs):
    report = run_model(module, target, options=LAYERWISE, build_dir=build_dir, **kwargs)
    assert report.match and report.max_abs_error == 0, report.format()
    return report


ATTENTION_SWEEP = [
    pytest.param(
        fused,
        softmax,
        x_type,
        out_type,
        per_channel,
        id=f"{'fused' if fused else 'mhsa'}-{'softmax' if softmax else 'none'}-"
        f"{'per-channel' if per_channel else 'per-tensor'}-{x_type}-to-{out_type}",
    )
    for fused in (False, True)
    for softmax in (True, False)
    for per_channel in (True, False)
    for x_type, out_type in ((ta.ui8, ta.i8), (ta.i8, ta.ui8))
]


@needs_pipeline
@pytest.mark.parametrize(("fused", "softmax", "x_type", "out_type", "per_channel"), ATTENTION_SWEEP)
def test_attention_is_bit_exact_on_host(fused, softmax, x_type, out_type, per_channel, build_dir):
    module = attention(
        6,
        8,
        4,
        2,
        fused=fused,
        softmax=softmax,
        x_type=x_type,
        out_type=out_type,
        per_channel=per_channel,
    )
    report = _check(module, "host", build_dir, seed=1)
    (out,) = report.outputs
    assert len(np.unique(out)) > 8  # requantized to a spread, not collapsed or saturated


@pytest.mark.parametrize("target", RUNNABLE)
def test_encoder_ops_are_bit_exact(target, build_dir):
    for seed in (0, 1):
        _check(encoder_ops(seed), target, build_dir, seed=seed)


@pytest.mark.parametrize("target", RUNNABLE)
def test_integer_means_are_bit_exact(target, build_dir):
    _check(means(), target, build_dir, seed=2)


@pytest.mark.parametrize("target", RUNNABLE)
def test_int32_wraps_and_requant_ties_round_half_up(target, build_dir):
    report = _check(edge_cases(), target, build_dir, inputs=edge_inputs())
    _, _, halves, crossing = report.outputs
    # x / 2 rounded half up (toward +inf), clipped: -63.5 -> -63, -1.5 -> -1, -0.5 -> 0, ...
    assert halves.tolist() == [-63, -1, 0, 1, 2, 64, 127, -128]
    assert crossing[0, 0] < 0 < crossing[1, 1]  # wrapped past +2^31 and past -2^31


@pytest.mark.parametrize("target", EMULATED)
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({}, id="mhsa-softmax"),
        pytest.param({"fused": True, "softmax": False, "x_type": ta.i8}, id="fused-none"),
    ],
)
def test_attention_is_bit_exact_on_emulated_targets(target, variant, build_dir):
    _check(attention(9, 8, 4, 2, **variant), target, build_dir, seed=3)


@pytest.mark.parametrize("target", [runnable("rv32")])
def test_eeg_shaped_attention_is_bit_exact(target, build_dir):
    """The EEG block's shape (S=81, E=32, P=32, H=8), integer softmax, ui8 input."""
    _check(attention(81, 32, 32, 8, seed=4), target, build_dir, seed=4)


@pytest.mark.parametrize("target", [runnable("cortex-m4")])
@pytest.mark.parametrize(("case", "dtype"), [("EEGFormer", np.uint8), ("Softmax-Regular", np.int8)])
def test_deeploy_outputs_are_reproduced(case, dtype, target, deeploy_dir, build_dir):
    """Deeploy's integer test graphs (an int8 MHSA, an iSoftmax), imported and compiled, give
    the outputs Deeploy stored, bit for bit."""
    inputs = np.load(deeploy_dir / case / "inputs.npz")
    (x,) = inputs.values()
    (expected,) = np.load(deeploy_dir / case / "outputs.npz").values()
    module = import_model(deeploy_dir / case / "network.onnx", inputs)
    report = _check(module, target, build_dir, inputs=[x.astype(dtype)])
    np.testing.assert_array_equal(report.outputs[0].reshape(expected.shape), expected)


def test_integer_softmax_that_needs_more_than_32_bits_is_refused():
    f = _Function(TensorType(ta.i8, [2, 4]))
    wide = ta.ISoftmaxAttr(1, 173, 2**25, 127)  # e fits 32 bits, e * 255 does not
    module = f.module(f.add(ta.SoftmaxOp(f.args[0], isoftmax=wide)))
    with pytest.raises(DriverError, match=r"e\*\(n_levels - 1\) reaches 2\^32"):
        run_model(module, "host", options=LAYERWISE)
