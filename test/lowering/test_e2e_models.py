"""End to end on the four bundled models (models/{eeg,ecg,radar,cct}.onnx): import, lower in both
schedules (depth-first and layer by layer, through a 64 KiB L1 so the attention is tiled into
row blocks) with and without fused-weight attention, compile, run on every runnable target and
compare with the numpy interpreter on the original model. The bytes the transfers move must be
the ones the schedule plans (none on a single-level target, where tiles are used in place)."""

from __future__ import annotations

from pathlib import Path

import pytest
from handwritten import RUNNABLE

from tinyattn.backend.targets import get_target
from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import run_model

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize("schedule", ["depth-first", "layerwise"])
@pytest.mark.parametrize("fuse_weights", ["never", "always"])
@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("model", ["eeg", "ecg", "radar", "cct"])
def test_model_matches_reference(model, name, fuse_weights, schedule, build_dir):
    options = LowerOptions(fuse_weights=fuse_weights, schedule=schedule, l1_bytes=64 * 1024)
    report = run_model(MODELS / f"{model}.onnx", name, seed=0, build_dir=build_dir, options=options)
    assert report.match, report.format()
    assert (report.instructions is None) == get_target(name).is_host
    assert report.dma_bytes == report.planned_dma_bytes
    assert (report.dma_bytes > 0) == (len(get_target(name).levels) > 1)


def test_fusion_drops_a_quarter_of_the_attention_parameters_at_p_equal_e(build_dir):
    """EEG has P = E = 32: FWSA keeps 3/4 of each attention's weights (bq, bk, bv, bo aside)."""
    reports = {
        mode: run_model(
            MODELS / "eeg.onnx",
            "host",
            build_dir=build_dir,
            options=LowerOptions(fuse_weights=mode),
        )
        for mode in ("never", "auto")
    }
    assert all(r.match for r in reports.values())
    saved = reports["never"].params_bytes - reports["auto"].params_bytes
    # two blocks; per block 2 H E P weights + 2 H P biases go, H E^2 + H E come back
    assert saved == 2 * 4 * (2 * 8 * 32 * 32 + 2 * 8 * 32 - 8 * 32 * 32 - 8 * 32)


def test_depth_first_lowers_the_activation_peak(build_dir):
    """The whole point: no H x S x S score map and no Q/K/V of all heads at once."""
    peaks = {
        schedule: run_model(
            MODELS / "eeg.onnx",
            "cortex-m7",
            build_dir=build_dir,
            options=LowerOptions(schedule=schedule, l1_bytes=64 * 1024),
        ).activation_peak_bytes
        for schedule in ("layerwise", "depth-first")
    }
    assert peaks["depth-first"] * 4 < peaks["layerwise"]
