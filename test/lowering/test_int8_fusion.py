"""FWSA in int8: `fuse-weights` re-quantizes Wqk/bqk and the score requantization; the fused
attention stays close to the unfused int8 one, and the lowered code is bit-exact with the fused
op's reference."""

from __future__ import annotations

import numpy as np
import pytest
from handwritten import runnable
from test_int8_lowering import attention
from xdsl.context import Context

from tinyattn.dialects import tinyattn as ta
from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import run_model
from tinyattn.passes.fuse_weights import FuseWeights
from tinyattn.semantics import reference as ref
from tinyattn.semantics.interpreter import evaluate


def _fused(module):
    fused = module.clone()
    FuseWeights(mode="always").apply(Context(), fused)
    return fused


def _ops(module, kind):
    return [op for op in module.walk() if isinstance(op, kind)]


@pytest.mark.parametrize("x_type", [ta.ui8, ta.i8], ids=["ui8", "i8"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_fused_int8_attention_stays_within_a_few_lsb_of_the_unfused(x_type, per_channel):
    module = attention(16, 32, 32, 4, x_type=x_type, per_channel=per_channel)
    fused = _fused(module)
    fused.verify()
    (op,) = _ops(fused, ta.FusedMHSAOp)
    assert not _ops(fused, ta.MHSAOp)
    wqk, bqk = (operand.type.get_element_type() for operand in (op.wqk, op.bqk))
    assert (wqk, bqk) == (ta.i8, ta.i32) and op.qk_requant is not None
    rng = np.random.default_rng(1)
    info = np.iinfo(np.uint8 if x_type == ta.ui8 else np.int8)
    diffs = []
    for _ in range(8):
        x = rng.integers(info.min, info.max, (16, 32), info.dtype, endpoint=True)
        (unfused_out,) = evaluate(module, [x])
        (fused_out,) = evaluate(fused, [x])
        diffs.append(np.abs(fused_out.astype(np.int64) - unfused_out.astype(np.int64)))
    diff = np.stack(diffs)
    assert diff.mean() < 1.0 and diff.max() <= 8, (diff.mean(), diff.max())


def test_without_softmax_only_a_zero_key_offset_fuses():
    module = attention(8, 16, 16, 2, softmax=False)
    FuseWeights(mode="always").apply(Context(), module)
    assert _ops(module, ta.MHSAOp) and not _ops(module, ta.FusedMHSAOp)


def test_the_int8_remark_states_the_deviation(capsys):
    FuseWeights(mode="always", remarks=True).apply(Context(), attention(8, 16, 16, 2))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("remark: fuse-weights: tinyattn.mhsa #0: fused (mode=always)")
    assert lines[1].startswith(
        "remark: fuse-weights: tinyattn.mhsa #0: int8 re-quantized: output deviation from the "
        "unfused int8 attention on 8 random inputs: max "
    )


def test_requant_for_takes_the_finest_step_that_cannot_overflow():
    requant = ref.requant_for(0.001234, 1_000_000, offset=0.5)
    mul, (add,), shift = requant.mul, requant.add, requant.shift
    assert abs(mul[0] / 2**shift - 0.001234) < 2.0 ** -(shift - 1)
    assert mul[0] * 1_000_000 + abs(add) + 2 ** (shift - 1) <= 2**31 - 1
    assert (mul[0] * 2) * 1_000_000 + 2 * abs(add) + 2**shift > 2**31 - 1
    acc = np.array([1_000_000, -1_000_000, 123_457, -7])
    out = ref.Requant(tuple(mul), (add,), shift)(acc, np.int32)
    assert np.all(np.abs(out - (acc * 0.001234 + 0.5)) <= 1)


@pytest.mark.parametrize("target", [runnable("host"), runnable("rv32")])
def test_fused_int8_attention_runs_bit_exact(target, build_dir):
    options = LowerOptions(fuse_weights="always", schedule="layerwise")
    report = run_model(attention(16, 32, 32, 4), target, build_dir=build_dir, options=options)
    assert report.match and report.max_abs_error == 0, report.format()
