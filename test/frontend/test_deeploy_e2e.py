"""Deeploy's integer test graphs end to end: imported with their inputs' signedness, compiled,
run on every runnable target and checked bit for bit against the outputs Deeploy stores, the way
a user runs them: `tinyattn-run DIR/network.onnx --inputs DIR/inputs.npz --expect
DIR/outputs.npz --target T --json`."""

from __future__ import annotations

import json

import pytest
from requires import target_param

from tinyattn.tools import run as run_tool


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
@pytest.mark.parametrize(
    "case",
    [
        "EEGFormer",
        "Softmax-Regular",
        "Integer-Softmax-Large",
        "Integer-Add-Large",
        "Integer-Add-MultIO",
        "Integer-GEMM-Batch_RQ",
        "Integer-GEMM-Regular_RQPerColumn",
        "Integer-ReduceMean",
        "Integer-Add-Regular_RQ",
        "Integer-Hardswish-Regular_RQ",
        "Integer-TrueIntegerDiv",
        "FP32-LayerNorm",
        "FP32-GEMM-Regular",
        "FP32-GEMM-TransB",
        "Integer-GEMM-Regular",
        "Integer-GEMM-Regular_RQPerRow",
        "Integer-GEMM-TransB_RQ",
        "Integer-MatMul-Add",
        "Integer-iNoNorm",
        "FP32-GEMM-NoBias",
        "FP32-GELU",
        "FP32-Softmax-Regular",
    ],
)
def test_reproduces_the_stored_outputs(case, target, deeploy_dir, capsys):
    directory = deeploy_dir / case
    status = run_tool.main(
        [
            str(directory / "network.onnx"),
            "--inputs",
            str(directory / "inputs.npz"),
            "--expect",
            str(directory / "outputs.npz"),
            "--target",
            target,
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err or captured.out
    report = json.loads(captured.out)
    assert report["match"] is True
    if not case.startswith("FP32-"):
        assert report["max_abs_error"] == 0
    assert report["target"] == target
