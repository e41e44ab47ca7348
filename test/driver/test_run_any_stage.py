"""`tinyattn-run` takes IR from any stage of `tinyattn-opt`: the module after each pass of the
compile pipeline compiles, runs under QEMU and matches the interpreter's evaluation of that same
module, with the DMA traffic the schedule recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from requires import target_param

from tinyattn.tools import import_onnx, opt
from tinyattn.tools import run as run_tool

MODELS = Path(__file__).resolve().parent.parent.parent / "models"

# S=4 E=4 P=2 H=2 attention, then a layer norm and a relu: every kind of kernel op.
F32 = """
func.func @main(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %w = arith.constant dense<[[[0.5, -0.25], [0.125, 1.0], [-0.5, 0.75], [0.25, 0.5]], [[1.0, 0.5], [-1.0, 0.25], [0.5, -0.5], [0.0, 1.0]]]> : tensor<2x4x2xf32>
  %b = arith.constant dense<[[0.1, -0.2], [0.3, 0.0]]> : tensor<2x2xf32>
  %wo = arith.constant dense<0.25> : tensor<2x2x4xf32>
  %bo = arith.constant dense<[0.0, 0.5, -0.5, 1.0]> : tensor<4xf32>
  %g = arith.constant dense<1.5> : tensor<4xf32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, scale = 0.707 : f32} : (tensor<4x4xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x4x2xf32>, tensor<2x2xf32>, tensor<2x2x4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %n = tinyattn.layernorm %a, %g, %bo {epsilon = 1.0e-05 : f32} : (tensor<4x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  %r = tinyattn.relu %n : (tensor<4x4xf32>) -> tensor<4x4xf32>
  func.return %r : tensor<4x4xf32>
}
"""

# The same shape in int8: a ui8 input, per-channel requants, the integer softmax, ui8 output.
INT8 = """
func.func @main(%x: tensor<4x4xui8>) -> tensor<4x4xui8> {
  %w = arith.constant dense<[[[1, -2], [3, -4], [5, 6], [-7, 8]], [[2, 1], [-1, 3], [4, -2], [0, 5]]]> : tensor<2x4x2xi8>
  %b = arith.constant dense<[[100, -200], [50, 25]]> : tensor<2x2xi32>
  %wo = arith.constant dense<[[[1, 2, -3, 4], [5, -6, 7, 8]], [[-1, 2, 3, -4], [2, 2, -2, 1]]]> : tensor<2x2x4xi8>
  %bo = arith.constant dense<[10, -20, 30, -40]> : tensor<4xi32>
  %a = tinyattn.mhsa %x q(%w, %b) k(%w, %b) v(%w, %b) o(%wo, %bo) {num_heads = 2 : i64, q_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, k_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, v_requant = #tinyattn.requant<mul = 1, add = 0, shift = 4>, score_requant = #tinyattn.requant<mul = [1, 2, 3, 4], add = 0, shift = 3>, context_requant = #tinyattn.requant<mul = 1, add = 0, shift = 6>, out_requant = #tinyattn.requant<mul = [3, 5, 7, 9], add = [0, 1, 2, 3], shift = 5>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>} : (tensor<4x4xui8>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x4x2xi8>, tensor<2x2xi32>, tensor<2x2x4xi8>, tensor<4xi32>) -> tensor<4x4xui8>
  func.return %a : tensor<4x4xui8>
}
"""

PASSES = (
    "fuse-weights",
    'depth-first-tile{l1-bytes=4096 rows="2"}',
    "convert-tinyattn-to-kernels",
    'convert-kernels-to-loops{target="thumbv7em"}',
    "plan-memory",
    "lower-dma",
)


def _stage(source: Path, passes: int, tmp_path: Path) -> Path:
    """`source` after the first `passes` passes of PASSES, as tinyattn-opt prints it."""
    out = tmp_path / f"stage{passes}.mlir"
    assert opt.main([str(source), "-p", ",".join(PASSES[:passes]), "-o", str(out)]) in (0, None)
    return out


def _run(model: Path, target: str, capsys) -> dict:
    capsys.readouterr()
    status = run_tool.main([str(model), "--target", target, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    return report


@pytest.mark.parametrize("target", [target_param("cortex-m7")])
@pytest.mark.parametrize("passes", range(1, len(PASSES) + 1))
@pytest.mark.parametrize("kind", ["f32", "int8"])
def test_every_stage_runs_and_matches(kind, passes, target, tmp_path, capsys):
    source = tmp_path / "model.mlir"
    source.write_text(F32 if kind == "f32" else INT8)
    report = _run(_stage(source, passes, tmp_path), target, capsys)
    assert report["match"], report
    if kind == "int8":
        assert report["max_abs_error"] == 0
    assert report["dma_bytes"] == report["planned_dma_bytes"] > 0


@pytest.mark.parametrize("target", [target_param("cortex-m7")])
def test_eeg_tiled_by_tinyattn_opt_runs(target, tmp_path, capsys):
    """The README's walkthrough: EEG fused and depth-first tiled by tinyattn-opt, then run."""
    imported = tmp_path / "eeg.mlir"
    assert import_onnx.main([str(MODELS / "eeg.onnx"), "-o", str(imported)]) == 0
    tiled = tmp_path / "eeg-tiled.mlir"
    assert opt.main([str(imported), "--fuse-weights", "--depth-first-tile", "-o", str(tiled)]) in (
        0,
        None,
    )
    text = tiled.read_text()
    assert "kernel.matmul" in text and "dma.start" in text and "memref.load" not in text
    report = _run(tiled, target, capsys)
    assert report["match"] and report["dma_bytes"] == report["planned_dma_bytes"] > 0
