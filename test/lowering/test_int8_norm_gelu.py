"""Bit-exact integer GELU and layer norm (I-BERT; `IGelu`, `ILayerNorm` and `isqrt` in
semantics/reference.py): integer modules lowered by convert-tinyattn-to-kernels and loops, run on the host and
under QEMU, compared with the numpy reference with zero tolerance. GELU sees every 8-bit input;
the layer norm sees random rows and the edges: constant rows (variance 0: only eps under the
root), rows alternating the two extremes (the largest variance, a sum of squares near 2^31) and
rows of one extreme with an outlier, and square roots of n = k^2 - 1, k^2 and k^2 + 1, where the
Newton iteration's stopping rule decides. A bundled model quantized by tinyattn-quantize, with
its GELU and layer norms, runs bit-exact too, and none of it needs 64-bit arithmetic."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from handwritten import RUNNABLE, needs_pipeline, runnable
from test_int8_lowering import LAYERWISE, _check, _Function
from xdsl.dialects.builtin import ModuleOp, TensorType, i32

import tinyattn.models
from tinyattn.dialects import tinyattn as ta
from tinyattn.driver.run import compile_model, run_model
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.models.generate import calibration_set, spec_named
from tinyattn.semantics import reference as ref

GRID = (16, 16)  # every 8-bit value once
ROWS = 12
# The widest row whose sum of squares fits int32 with no centring shift (the verifier's bound
# 50 (50 * 255 / 2 + 1)^2 < 2^31): its alternating row reaches 50 * 6375^2 ~ 0.95 * 2^31.
WIDTH = 50
PROBE_GAMMA = 2**20  # large enough that trunc(c * gamma / std) tells neighbouring stds apart
# The largest eps the verifier admits for rows [0, a] (width 2, shift 0): roots near 2^15.5.
PROBE_TOP_EPS = ta.INT32_MAX - ta.layernorm_square_bound(2, 0)
PROBE_EPS = (1, 2, PROBE_TOP_EPS)


def _attr(requant: ref.Requant) -> ta.RequantAttr:
    return ta.RequantAttr(list(requant.mul), list(requant.add), requant.shift)


def _quantized_gelu(
    f: _Function, x, scale: float, levels: np.ndarray, out_type, jitter: np.ndarray | None
):
    """GELU with tinyattn-quantize's parameters for an input of `scale` and an output of the
    same scale; `jitter` spreads the requant over channels."""
    igelu = q.igelu_for(scale)
    ratio = 1.0 / igelu.one * (1.0 if jitter is None else jitter)
    requant = ref.requant_for(ratio, int(np.abs(igelu(levels)).max()))
    return f.add(
        ta.GeluOp(
            x,
            igelu=ta.IGeluAttr(igelu.b, igelu.one),
            requant=_attr(requant),
            result_type=TensorType(out_type, GRID),
        )
    )


def gelus() -> ModuleOp:
    """GELU on i8 and ui8 grids: the quantizer's parameters requantized per channel and per
    tensor; an erf clamp that never engages (-b > 255); a polynomial whose square wraps int32
    (d ~ -70000); parameters outside int32 (taken modulo 2^32)."""
    rng = np.random.default_rng(0)
    f = _Function(TensorType(ta.i8, GRID), TensorType(ta.ui8, GRID))
    x, u = f.args
    signed, unsigned = np.arange(-128, 128), np.arange(256)
    wide = TensorType(i32, GRID)
    results = [
        _quantized_gelu(f, x, 0.04, signed, ta.i8, rng.uniform(0.7, 1.3, GRID[1])),
        _quantized_gelu(f, u, 0.015, unsigned, ta.ui8, None),
        f.add(ta.GeluOp(x, igelu=ta.IGeluAttr(-300, 40000), result_type=wide)),
        f.add(ta.GeluOp(x, igelu=ta.IGeluAttr(-70000, 5), result_type=wide)),
        f.add(ta.GeluOp(u, igelu=ta.IGeluAttr(-(2**31) - 1000, 2**32 + 12345), result_type=wide)),
    ]
    return f.module(*results)


def gelu_inputs() -> list[np.ndarray]:
    return [np.arange(-128, 128).reshape(GRID).astype(np.int8), np.arange(256).reshape(GRID)]


def _layernorm(f: _Function, x, gamma, beta, norm: ref.ILayerNorm, out_type, requant=None):
    return f.add(
        ta.LayerNormOp(
            x,
            f.const(np.asarray(gamma, np.int32)),
            f.const(np.asarray(beta, np.int32)),
            epsilon=1e-5,
            ilayernorm=ta.ILayerNormAttr(norm.shift, norm.eps),
            requant=requant,
            result_type=TensorType(out_type, x.type.get_shape()),
        )
    )


# The wrapping layer norm: a coarser shift, a large eps, and gamma so large that c * gamma wraps.
WRAP_NORM = ref.ILayerNorm(3, 10**6)


def layernorms(seed: int) -> tuple[ModuleOp, np.ndarray, np.ndarray]:
    """Layer norms of i8 and ui8 rows of WIDTH with tinyattn-quantize's parameters (to i8 per
    tensor, to ui8 per channel), one with i32 output whose products wrap, and the square-root
    probes on rows [0, a]; also the wrapping one's gamma and beta."""
    rng = np.random.default_rng(seed)
    f = _Function(
        TensorType(ta.i8, [ROWS, WIDTH]),
        TensorType(ta.ui8, [ROWS, WIDTH]),
        TensorType(ta.ui8, [256, 2]),
    )
    x, u, probe = f.args
    norm = q.ilayernorm_for(0.03, WIDTH, 1e-5)
    assert norm.shift == 0  # so the alternating row's sum of squares comes near 2^31
    gamma, beta, requant = q.layernorm_affine(
        rng.uniform(0.5, 1.5, WIDTH), rng.uniform(-0.5, 0.5, WIDTH), norm, 4.0 / 127
    )
    muls = rng.integers(200, 300, WIDTH).tolist()
    per_channel = ta.RequantAttr(muls, rng.integers(-5000, 5000, WIDTH).tolist(), 18)
    wrap_gamma = rng.integers(-(2**30), 2**30, WIDTH)
    wrap_beta = rng.integers(-(2**30), 2**30, WIDTH)
    results = [
        _layernorm(f, x, gamma, beta, norm, ta.i8, _attr(requant)),
        _layernorm(f, u, gamma, beta, norm, ta.ui8, per_channel),
        _layernorm(f, x, wrap_gamma, wrap_beta, WRAP_NORM, i32),
        *(
            _layernorm(f, probe, [PROBE_GAMMA] * 2, [0, 0], ref.ILayerNorm(0, eps), i32)
            for eps in PROBE_EPS
        ),
    ]
    return f.module(*results), wrap_gamma, wrap_beta


def layernorm_inputs(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []
    for low, high in ((-128, 127), (0, 255)):
        x = rng.integers(low, high + 1, (ROWS, WIDTH))
        x[0], x[1], x[2] = (low + high) // 3, low, high  # variance 0
        x[3] = np.resize([low, high], WIDTH)  # the largest variance
        x[4] = low
        x[4, 17] = high
        rows.append(x)
    probe = np.stack([np.zeros(256, int), np.arange(256)], axis=1)
    return [rows[0].astype(np.int8), rows[1].astype(np.uint8), probe.astype(np.uint8)]


def _centred(x: np.ndarray, shift: int) -> np.ndarray:
    x = x.astype(np.int64)
    return (x.shape[-1] * x - x.sum(axis=-1, keepdims=True)) >> shift


def test_inputs_reach_the_edges():
    """The rows and parameters reach what they are about: a sum of squares near 2^31, products
    c * gamma that wrap int32, negative quotients that truncation and floor round apart, and
    square roots of k^2 - 1, k^2 and k^2 + 1."""
    _, wrap_gamma, _ = layernorms(0)
    x, _, _ = layernorm_inputs(0)
    squares = (_centred(x, 0) ** 2).sum(axis=-1)
    assert squares.max() > 0.9 * 2**31 and squares.min() == 0
    c = _centred(x, WRAP_NORM.shift)
    products = c * wrap_gamma
    assert np.abs(products).max() >= 2**31
    std = ref.isqrt((c * c).sum(axis=-1, keepdims=True) + WRAP_NORM.eps)
    scaled = ref.wrap_int32(products)
    assert np.any((scaled < 0) & (scaled % std != 0))
    n = {2 * a * a + eps for a in range(256) for eps in PROBE_EPS}
    for offset in (-1, 0, 1):
        assert any(math.isqrt(m - offset) ** 2 == m - offset for m in n)


@pytest.mark.parametrize("target", RUNNABLE)
def test_integer_gelu_is_bit_exact_on_every_input(target, build_dir):
    report = _check(gelus(), target, build_dir, inputs=gelu_inputs())
    signed, unsigned, clamp_free, wrapping, wide_params = report.outputs
    # Requantized to a spread, not collapsed or saturated.
    assert len(np.unique(signed)) > 40 and len(np.unique(unsigned)) > 100
    # GELU(0) = 0 (x = 0 sits at [8, 0] of the i8 grid, at [0, 0] of the ui8 one).
    assert signed[8, 0] == clamp_free[8, 0] == wrapping[8, 0] == 0
    assert unsigned[0, 0] == wide_params[0, 0] == 0


@pytest.mark.parametrize("target", RUNNABLE)
def test_integer_layernorm_is_bit_exact(target, build_dir):
    module, _, wrap_beta = layernorms(0)
    report = _check(module, target, build_dir, inputs=layernorm_inputs(0))
    signed, _, wrapped, *probes = report.outputs
    assert len(np.unique(signed)) > 40
    # A row of variance 0 has c = 0: the result is beta, whatever eps and gamma.
    np.testing.assert_array_equal(wrapped[:3], np.broadcast_to(wrap_beta, (3, WIDTH)))
    # Rows [0, a] have c = [-a, a]: the results are -+ a gamma / floor(sqrt(2 a^2 + eps)).
    for probe, eps in zip(probes, PROBE_EPS, strict=True):
        roots = [math.isqrt(2 * a * a + eps) for a in range(256)]
        expected = np.array([a * PROBE_GAMMA // r for a, r in enumerate(roots)])
        np.testing.assert_array_equal(probe, np.stack([-expected, expected], axis=1))


@needs_pipeline
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integer_layernorm_is_bit_exact_on_host_for_more_seeds(seed, build_dir):
    module, _, _ = layernorms(seed)
    _check(module, "host", build_dir, inputs=layernorm_inputs(seed))


def _quantized_ecg() -> tuple[ModuleOp, list[np.ndarray]]:
    """ECG quantized by tinyattn-quantize on its calibration set, and one sample as int8."""
    model = import_model(Path(tinyattn.models.__file__).parent / "ecg.onnx")
    samples = [[x] for x in calibration_set(spec_named("ecg"))["x"]]
    quantized = q.quantize(model, samples)
    kinds = {type(op) for op in quantized.walk() if getattr(op, "igelu", None) is not None}
    kinds |= {type(op) for op in quantized.walk() if getattr(op, "ilayernorm", None) is not None}
    assert kinds == {ta.GeluOp, ta.LayerNormOp}
    return quantized, q.quantize_inputs(q.entry_function(quantized), samples[0])


@pytest.mark.parametrize("target", [runnable("host"), runnable("rv32")])
def test_quantized_ecg_is_bit_exact(target, build_dir):
    """The default schedule (depth-first attention) around the integer GELU and layer norms."""
    module, inputs = _quantized_ecg()
    report = run_model(module, target, inputs=inputs, build_dir=build_dir)
    assert report.match and report.max_abs_error == 0, report.format()


@needs_pipeline
def test_no_64_bit_arithmetic_on_32_bit_targets(tmp_path):
    """The integer GELU and layer norm (and the rest of quantized ECG) stay in i32 on rv32."""
    modules = [gelus(), layernorms(0)[0], _quantized_ecg()[0]]
    for index, module in enumerate(modules):
        result = compile_model(module, "rv32", tmp_path / str(index), options=LAYERWISE)
        code = (result.out_dir / "model.ll").read_text().splitlines()
        wide = [line for line in code if re.search(r"\bi64\b", line) and "datalayout" not in line]
        assert not wide, wide[:3]
