"""Deeploy's test networks end to end, every one: imported with their inputs' signedness,
compiled, run on every runnable target and checked against the outputs Deeploy stores (bit for
bit for the integer ones, f32's criterion for the float ones), the way a user runs them:
`tinyattn-run DIR/network.onnx --inputs DIR/inputs.npz --expect DIR/outputs.npz --target T
--json`."""

from __future__ import annotations

import json

import pytest
from requires import target_param

from tinyattn.tools import run as run_tool

# Every network of the vectors' README, in its order.
CASES = [
    "EEGFormer",
    "Softmax-Regular",
    *(
        f"Integer-{name}"
        for name in (
            "GEMM-Regular",
            "GEMM-Regular_RQPerColumn",
            "GEMM-Regular_RQPerRow",
            "GEMM-TransB_RQ",
            "GEMM-Batch_RQ",
            "MatMul-Regular",
            "MatMul-Regular_RQ",
            "MatMul-Batch",
            "MatMul-Add",
            "Add-Regular_RQ",
            "Add-Large",
            "Add-MultIO",
            "iNoNorm",
            "RMSNorm",
            "Softmax-Large",
            "Hardswish-Regular_RQ",
            "TrueIntegerDiv",
            "ReduceMean",
        )
    ),
    *(
        f"FP32-{name}"
        for name in (
            "GEMM-Regular",
            "GEMM-NoBias",
            "GEMM-TransB",
            "MatMul",
            "LayerNorm",
            "GELU",
            "Softmax-Regular",
        )
    ),
]


@pytest.mark.parametrize(
    "target", [target_param("host"), target_param("cortex-m4"), target_param("rv32")]
)
@pytest.mark.parametrize("case", CASES)
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
