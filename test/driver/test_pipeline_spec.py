"""The compile pipeline is one xDSL pipeline whose spec report.json records: `tinyattn-opt -p
"<spec>"` on the imported model reproduces the module the compile lowered, for every target
and schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from requires import needs_tools

from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import compile_model, load_model
from tinyattn.tools import opt

MODELS = Path(__file__).resolve().parent.parent.parent / "models"


@needs_tools("mlir-opt-22", "mlir-translate-22", "opt-22", "llc-22")
@pytest.mark.parametrize("schedule", ["depth-first", "layerwise"])
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7", "rv32"])
def test_report_pipeline_reproduces_the_compile(target, schedule, tmp_path, capsys):
    model = MODELS / "ecg.onnx"
    options = LowerOptions(schedule=schedule, fuse_weights="always")
    result = compile_model(model, target, tmp_path / "out", options=options)
    spec = json.loads((tmp_path / "out" / "report.json").read_text())["pipeline"]
    assert spec.startswith('fuse-weights{mode="always"},')
    imported = tmp_path / "ecg.mlir"
    imported.write_text(str(load_model(model)))
    capsys.readouterr()
    assert opt.main([str(imported), "-p", spec]) in (0, None)
    reproduced = capsys.readouterr().out
    compiled = str(result.lowered.module).replace(f"@{result.lowered.entry}", "@main")
    assert reproduced.strip() == compiled.strip()
