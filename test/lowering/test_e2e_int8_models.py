"""int8 end to end on the four bundled models (cct with a conv tokenizer): quantized by
tinyattn-quantize on their calibration sets, lowered in both schedules with and without fused-weight attention (re-quantized
Wqk/bqk), compiled, run on every runnable target and compared bit for bit with the numpy
reference of the integer module. The bytes the transfers move must be the ones planned."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from handwritten import RUNNABLE

import tinyattn.models
from tinyattn.backend.targets import get_target
from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import run_model
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.models.generate import calibration_set, spec_named

CALIBRATION = 8  # a prefix of the bundled calibration set: enough for scales, quick to trace


@cache
def quantized(model: str) -> tuple:
    source = Path(tinyattn.models.__file__).parent / f"{model}.onnx"
    samples = [[x] for x in calibration_set(spec_named(model), CALIBRATION)["x"]]
    module = q.quantize(import_model(source), samples)
    return module, q.quantize_inputs(q.entry_function(module), samples[-1])


@pytest.mark.parametrize("schedule", ["depth-first", "layerwise"])
@pytest.mark.parametrize("fuse_weights", ["never", "always"])
@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("model", ["eeg", "ecg", "radar", "cct"])
def test_quantized_model_is_bit_exact(model, name, fuse_weights, schedule, build_dir):
    module, inputs = quantized(model)
    assert all(x.dtype == np.int8 for x in inputs)
    options = LowerOptions(fuse_weights=fuse_weights, schedule=schedule, l1_bytes=32 * 1024)
    report = run_model(module, name, inputs=inputs, build_dir=build_dir, options=options)
    assert report.match and report.max_abs_error == 0, report.format()
    assert report.dma_bytes == report.planned_dma_bytes
    assert (report.dma_bytes > 0) == (len(get_target(name).levels) > 1)
