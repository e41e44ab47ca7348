"""End to end on the three reference models (models/{eeg,ecg,radar}.onnx): import, lower,
compile, run on every runnable target and compare with the numpy interpreter.

Skipped until the tinyattn lowering (tinyattn.lowering.lower) is importable."""

from __future__ import annotations

from pathlib import Path

import pytest
from handwritten import RUNNABLE

from tinyattn.lowering.driver import run_model
from tinyattn.lowering.targets import get_target

pytest.importorskip("tinyattn.lowering.lower")

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("model", ["eeg", "ecg", "radar"])
def test_model_matches_reference(model, name, build_dir):
    report = run_model(MODELS / f"{model}.onnx", name, seed=0, build_dir=build_dir)
    assert report.match, report.format()
    assert (report.instructions is None) == get_target(name).is_host
