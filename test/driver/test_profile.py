"""`tinyattn-run --profile`: the instructions of each kernel op, counted by the QEMU plugin
between the markers of an instrumented build; every counted instruction lands in one region,
the matmuls' MACs add up to the model's, and the reported count stays the uninstrumented
build's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from requires import target_param

from tinyattn.api import run
from tinyattn.tools import run as run_tool

MODELS = Path(__file__).resolve().parent.parent.parent / "models"


@pytest.mark.parametrize("target", [target_param("cortex-m4"), target_param("rv32")])
def test_profile_splits_the_run_by_kernel(target, build_dir):
    plain = run(MODELS / "ecg.onnx", target=target, build_dir=build_dir)
    profiled = run(MODELS / "ecg.onnx", target=target, build_dir=build_dir, profile=True)
    assert profiled.match and profiled.instructions == plain.instructions
    assert not plain.profile
    rows = profiled.profile
    kernels = [row for row in rows if not row.kernel.startswith("(")]
    assert {row.kernel.split()[0] for row in kernels} >= {"matmul", "softmax", "layernorm"}
    assert sum(row.macs for row in rows) == profiled.macs
    assert abs(sum(row.share for row in rows) - 1) < 1e-9
    # The instrumented build is another compile (the markers' calls are barriers LLVM
    # schedules around), within a few percent of the model's own count.
    counted = sum(row.instructions for row in rows)
    assert abs(counted - plain.instructions) <= 0.05 * plain.instructions


@pytest.mark.parametrize("target", [target_param("cortex-m7")])
def test_profile_through_the_cli(target, capsys):
    assert run_tool.main([str(MODELS / "ecg.onnx"), "--target", target, "--profile"]) == 0
    text = capsys.readouterr().out
    assert "profile (instrumented build: " in text and "MAC/instr" in text
    assert run_tool.main([str(MODELS / "ecg.onnx"), "--target", target, "--json", "--profile"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] and {"kernel", "calls", "macs", "instructions", "share"} <= set(
        report["profile"][0]
    )


def test_profile_on_the_host_is_refused_before_any_build(tmp_path, capsys):
    """The host has no instruction counter: one line, before anything is compiled."""
    status = run_tool.main([str(MODELS / "ecg.onnx"), "--target", "host", "--profile"])
    err = capsys.readouterr().err
    assert status != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert "--profile needs a model file or module and an emulated target" in err
