"""`tinyattn-run --profile`: the instructions of each kernel op, counted by the QEMU plugin
between the markers of an instrumented build; every counted instruction lands in one region,
the matmuls' MACs add up to the model's, and the reported count stays the uninstrumented
build's. Each region belongs to a layer (or to none, before the first), so `--report` and
`--json` give every layer its instructions."""

from __future__ import annotations

import csv
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


@pytest.mark.parametrize("target", [target_param("cortex-m4")])
def test_profile_gives_every_layer_its_instructions(target, capsys):
    """Per layer, the instructions of its regions: kernels and the code between them. They and
    the code outside every layer (the call, the entry's prologue) add up to the whole count."""
    args = [str(MODELS / "ecg.onnx"), "--target", target, "--profile"]
    assert run_tool.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    layers, regions = report["layers"], report["profile"]
    names = [layer["name"] for layer in layers]
    assert len(set(names)) == len(names) > 1
    assert {row["layer"] for row in regions} <= {*names, None}
    # A reshape is a view: it runs no code; every other layer runs some.
    assert all(layer["instructions"] > 0 for layer in layers if layer["op"] != "tinyattn.reshape")
    assert all(layer["instructions"] >= 0 for layer in layers)
    counted = sum(row["instructions"] for row in regions)
    outside = sum(row["instructions"] for row in regions if row["layer"] is None)
    assert sum(layer["instructions"] for layer in layers) + outside == counted
    assert outside < 0.01 * counted
    for layer in layers:
        assert layer["instruction_share"] == pytest.approx(layer["instructions"] / counted)
        mine = [row for row in regions if row["layer"] == layer["name"]]
        assert sum(row["macs"] for row in mine) == layer["macs"]

    assert run_tool.main([*args, "--report", "--report-format", "csv"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0][-2:] == ["instructions", "instr share"]
    assert [(row[0], int(row[-2])) for row in rows[1:]] == [
        (layer["name"], layer["instructions"]) for layer in layers
    ]


@pytest.mark.parametrize("target", [target_param("cortex-m4")])
def test_report_without_profile_has_no_instructions(target, capsys):
    """A run without --profile measures no layer: the table has no instructions column, the
    JSON's layers none."""
    args = [str(MODELS / "ecg.onnx"), "--target", target]
    assert run_tool.main([*args, "--report", "--report-format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| layer | op | output | params | MACs |")
    assert "instructions" not in lines[0]
    assert run_tool.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] and all(layer["instructions"] is None for layer in report["layers"])


def test_report_and_json_are_one_or_the_other(capsys):
    with pytest.raises(SystemExit) as exit_status:  # argparse's usage error
        run_tool.main([str(MODELS / "ecg.onnx"), "--target", "cortex-m4", "--json", "--report"])
    err = capsys.readouterr().err
    assert exit_status.value.code == 2 and err.count("\n") == 1
    assert "--report: not allowed with argument --json" in err
