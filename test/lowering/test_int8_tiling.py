"""int8 attention through both tiling passes, bit-exact: random int8 (fused_)mhsa modules
(test_int8_lowering.attention), tiled depth-first and layer by layer with an L1 budget that fits
only blocks of a third of the sequence, compiled, run and compared with the numpy reference with
zero tolerance. On single-level targets the tiles compute in place; on two-level ones the bytes
the transfers move must be those the pass planned, and the L1 arena the working set it
budgeted. The broad sweep runs on the host, a representative subset under QEMU."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from handwritten import needs_pipeline, runnable
from test_int8_lowering import attention

from tinyattn.backend.targets import get_target
from tinyattn.dialects import tinyattn as ta
from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import run_model
from tinyattn.passes import depth_first_tile, layerwise_tile
from tinyattn.passes.tiling import Attention, Precision

SCHEDULES = ["depth-first", "layerwise"]
S, E, P, H = 9, 8, 4, 3  # three heads: a first, a middle and a last one
BLOCK = 3  # rows per block: three blocks
# I-BERT's softmax with ln 2 = 16 score units: a row's largest probability often reaches 128 and
# more, where reading the ui8 probabilities as i8 would go wrong.
PEAKED = ta.ISoftmaxAttr(1, 31, 511, 16)


def _attention(s: int, e: int, p: int, h: int, **kwargs):
    """An int8 attention (test_int8_lowering.attention), with the peaked integer softmax."""
    module = attention(s, e, p, h, **kwargs)
    (op,) = [o for o in module.walk() if isinstance(o, Attention)]
    if op.isoftmax is not None:
        op.properties["isoftmax"] = PEAKED
    return module


def _working_set(schedule: str, op: Attention, copies: bool):
    """The pass's L1 bytes as a function of the rows per block."""
    s, e, p, h = op.dims()
    common = {
        "fused": isinstance(op, ta.FusedMHSAOp),
        "copies": copies,
        "precision": Precision.of(op),
    }
    if schedule == "depth-first":
        return partial(depth_first_tile.l1_bytes_needed, s, e, p, **common)
    return partial(layerwise_tile.l1_bytes_needed, s, e, p, h, **common)


def _check(module, target: str, schedule: str, build_dir, block: int = BLOCK, seed: int = 1):
    """Run `module` with an L1 budget of `block`-row blocks; the report, checked."""
    (op,) = [o for o in module.walk() if isinstance(o, Attention)]
    s = op.dims()[0]
    copies = len(get_target(target).levels) > 1
    needed = _working_set(schedule, op, copies)
    budget = needed(block)
    # In place, layer-wise layers keep no rows in L1 (only the softmax's scratch row): the
    # budget cannot choose the blocks, so they are asked for.
    rows = "auto" if needed(s) > budget else str(block)
    options = LowerOptions(schedule=schedule, fuse_weights="never", l1_bytes=budget, rows=rows)
    report = run_model(module, target, options=options, build_dir=build_dir, seed=seed)
    assert report.match and report.max_abs_error == 0, report.format()
    assert report.dma_bytes == report.planned_dma_bytes
    assert (report.dma_bytes > 0) == copies
    if copies:
        assert report.arena_bytes["L1"] == budget
    (out,) = report.outputs
    assert len(np.unique(out)) > 8  # requantized to a spread, not collapsed or saturated
    return report


VARIANTS = [
    pytest.param(
        {"fused": fused, "softmax": softmax, "x_type": x, "out_type": out, "per_channel": pc},
        id="-".join(
            [
                "fused" if fused else "mhsa",
                "softmax" if softmax else "none",
                "per-channel" if pc else "per-tensor",
                f"{x}-to-{out}",
            ]
        ),
    )
    for fused in (False, True)
    for softmax in (True, False)
    for x, out, pc in ((ta.ui8, ta.i8, True), (ta.i8, ta.ui8, False))
]


@needs_pipeline
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_tiled_int8_attention_is_bit_exact_on_host(variant, schedule, build_dir):
    _check(_attention(S, E, P, H, **variant), "host", schedule, build_dir)


@needs_pipeline
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_single_head_starts_from_bo_and_narrows_at_once(schedule, build_dir):
    """With one head the first head is the last: bo, the context and the requantization."""
    _check(_attention(S, E, P, 1, seed=2), "host", schedule, build_dir)


@pytest.mark.parametrize("target", [runnable(t) for t in ("cortex-m4", "cortex-m7", "rv32")])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({}, id="mhsa-softmax-per-channel-ui8-to-i8"),
        pytest.param(
            {"fused": True, "softmax": False, "x_type": ta.i8, "out_type": ta.ui8},
            id="fused-none-per-channel-i8-to-ui8",
        ),
    ],
)
def test_tiled_int8_attention_is_bit_exact_on_emulated_targets(
    variant, schedule, target, build_dir
):
    _check(_attention(S, E, P, H, seed=3, **variant), target, schedule, build_dir, seed=3)


@pytest.mark.parametrize("target", [runnable("rv32")])
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_eeg_shaped_int8_attention_in_nine_row_blocks(schedule, target, build_dir):
    """The EEG block's shape (S=81, E=32, P=32, H=8) through L1 in blocks of 9 rows."""
    report = _check(_attention(81, 32, 32, 8, seed=4), target, schedule, build_dir, 9, seed=4)
    assert report.instructions > report.macs
