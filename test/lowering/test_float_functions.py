"""The f32 scalar functions as compiled, against the float64 reference on the targets: max and
min (relu, max pooling, map "max"/"min") as compares and selects, a NaN of either operand
winning as in numpy and ONNX (NaNs from the square roots of negative inputs must reach the
outputs where the reference has them); GELU by an erfc approximation, over its whole range."""

from __future__ import annotations

import numpy as np
import pytest
from requires import target_param

from tinyattn.api import run
from tinyattn.driver.parsing import parse_module

MODULE = """
func.func @main(%x: tensor<2x4x4xf32>, %y: tensor<2x4x4xf32>) -> (tensor<2x4x4xf32>, tensor<2x2x2xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>) {
  %s = tinyattn.map "sqrt" %x : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %r = tinyattn.relu %s : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %p = tinyattn.maxpool %s {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<2x4x4xf32>) -> tensor<2x2x2xf32>
  %mx = tinyattn.map "max" %y, %s : (tensor<2x4x4xf32>, tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %mn = tinyattn.map "min" %s, %y : (tensor<2x4x4xf32>, tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  func.return %r, %p, %mx, %mn : tensor<2x4x4xf32>, tensor<2x2x2xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>
}
"""  # noqa: E501


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_nan_wins_in_compiled_max_and_min(target):
    rng = np.random.default_rng(3)
    x, y = (rng.standard_normal((2, 4, 4)).astype(np.float32) for _ in range(2))
    report = run(parse_module(MODULE, "extremes.mlir"), target, inputs=[x, y])
    assert report.match
    relu, pooled, larger, smaller = report.outputs
    assert np.isnan(relu).any() and np.isnan(pooled).any()
    assert np.array_equal(np.isnan(larger), x < 0) and np.isnan(smaller).any()


GELU = """
func.func @main(%x: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = tinyattn.gelu %x : (tensor<64x64xf32>) -> tensor<64x64xf32>
  func.return %y : tensor<64x64xf32>
}
"""


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
def test_gelu_matches_over_its_range(target):
    """Both tails (GELU vanishing below, the identity above), zero and random values."""
    ramp = np.linspace(-12, 12, 2048)
    normal = np.random.default_rng(5).standard_normal(2048) * 3
    x = np.concatenate([ramp, normal]).astype(np.float32).reshape(64, 64)
    report = run(parse_module(GELU, "gelu.mlir"), target, inputs=[x])
    assert report.match and report.conditioning is None  # within rtol/atol outright
