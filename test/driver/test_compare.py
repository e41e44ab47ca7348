"""How tinyattn-run judges an output: integers exactly; f32 within rtol/atol of the float64
reference, or, for a badly conditioned model, within CONDITION_FACTOR times the reference's
own movement under one-ulp input changes; NaN against NaN agrees."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyattn.driver.parsing import parse_module
from tinyattn.driver.run import (
    CONDITION_FACTOR,
    F32_ATOL,
    DriverError,
    compare,
    input_sensitivity,
    run_model,
)
from tinyattn.tools import run as run_tool

RELU = """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.relu %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
"""


def test_integers_match_exactly():
    reference = np.arange(6, dtype=np.int8)
    assert compare(reference.copy(), reference).match
    off = reference.copy()
    off[3] += 1
    result = compare(off, reference)
    assert not result.match and result.abs_error == 1


def test_nan_agrees_with_nan_only():
    reference = np.array([np.nan, 1.0, np.inf], np.float32)
    assert compare(reference.copy(), reference).match
    result = compare(np.array([0.0, 1.0, np.inf], np.float32), reference)
    assert not result.match and result.abs_error == np.inf


def test_a_badly_conditioned_output_is_judged_against_its_conditioning():
    reference = np.array([1000.0, -3.0], np.float32)
    ours = reference + np.float32(0.5)  # far outside rtol 1e-4 / atol 1e-5
    assert not compare(ours, reference).match
    within = compare(ours, reference, conditioning=0.5 / CONDITION_FACTOR)
    assert within.match and within.conditioning == pytest.approx(0.5 / CONDITION_FACTOR)
    assert not compare(ours, reference, conditioning=0.4 / CONDITION_FACTOR).match


def test_input_sensitivity_is_the_movement_under_one_ulp():
    inputs = [np.ones((3, 3), np.float32), np.arange(3, dtype=np.int8)]
    (moved,) = input_sensitivity(lambda xs: [xs[0].astype(np.float64) * 1e6], inputs)
    up, down = np.spacing(np.float32(1)), np.float32(1) - np.nextafter(np.float32(1), 0)
    assert moved == pytest.approx(1e6 * up) or moved == pytest.approx(1e6 * down)
    (flat,) = input_sensitivity(lambda xs: [np.zeros(3)], inputs)
    assert flat == 0.0


def test_a_run_whose_reference_does_not_fit_memory_is_one_line():
    def reference(_):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    module = parse_module(RELU, "relu.mlir")
    with pytest.raises(DriverError, match="^the reference does not fit this machine's memory: "):
        run_model(module, "host", reference=reference)


def test_the_json_report_states_the_tolerance(tmp_path, capsys):
    model = tmp_path / "relu.mlir"
    model.write_text(RELU)
    assert run_tool.main([str(model), "--target", "host", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tolerance"]["f32_atol"] == F32_ATOL and report["conditioning"] is None
