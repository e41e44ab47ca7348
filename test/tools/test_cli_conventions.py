"""The conventions every command line shares (tools/cli.py): --version, `-` for standard input
and output, directories with the user's permissions, no stale stage files, mlir-opt's
spellings, pass options by their documented names, and the calibration sample count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyattn.tools import compile as compile_tool
from tinyattn.tools import import_onnx, opt, quantize
from tinyattn.tools import run as run_tool

BIN = Path(sys.executable).parent
MODELS = Path(__file__).resolve().parent.parent.parent / "models"
RELU = """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.relu %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
"""
TOOLS = {
    "tinyattn-import": import_onnx.main,
    "tinyattn-opt": opt.main,
    "tinyattn-quantize": quantize.main,
    "tinyattn-compile": compile_tool.main,
    "tinyattn-run": run_tool.main,
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_version_names_tinyattn_xdsl_and_llvm(tool, capsys):
    try:
        status = TOOLS[tool](["--version"])
    except SystemExit as exit_status:
        status = exit_status.code
    out = capsys.readouterr().out
    assert status in (0, None)
    assert out.startswith(f"{tool} 0.") and "(xDSL 0.74.0, LLVM 22" in out


def _cli(tool: str, *args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / tool), *args], input=stdin, capture_output=True, cwd=cwd, timeout=300
    )


def test_dash_is_standard_input_and_output(tmp_path):
    onnx_bytes = (MODELS / "ecg.onnx").read_bytes()
    imported = _cli("tinyattn-import", "-", "-o", "-", stdin=onnx_bytes, cwd=tmp_path)
    assert imported.returncode == 0 and b"tinyattn.mhsa" in imported.stdout
    tiled = _cli(
        "tinyattn-opt", "-", "--fuse-weights", "-o", "-", stdin=imported.stdout, cwd=tmp_path
    )
    assert tiled.returncode == 0 and tiled.stdout.startswith(b"builtin.module")
    ran = _cli("tinyattn-run", "-", "--target", "host", "--json", stdin=RELU.encode(), cwd=tmp_path)
    assert ran.returncode == 0 and json.loads(ran.stdout)["match"] is True
    bad = _cli(
        "tinyattn-compile", "-", "--target", "host", "-o", "b", stdin=b"junk\n", cwd=tmp_path
    )
    assert bad.returncode == 2 and bad.stderr.decode().startswith(
        "tinyattn-compile: error: <stdin>:"
    )
    assert sorted(os.listdir(tmp_path)) == []  # no file named "-", nothing left behind


def test_quantize_writes_stdout_and_takes_a_sample_count(tmp_path, capsys):
    model = tmp_path / "relu.mlir"
    model.write_text(RELU)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((6, 4, 8)))
    report = tmp_path / "report.json"
    args = [str(model), "--calib", str(tmp_path / "calib.npz"), "-o", "-", "--report", str(report)]
    assert quantize.main([*args, "--calib-samples", "2"]) == 0
    assert "func.func @main" in capsys.readouterr().out
    assert json.loads(report.read_text())["samples"] == 2
    assert not (Path.cwd() / "-").exists()


def test_compile_directories_follow_the_umask_and_drop_stale_stages(tmp_path):
    model = tmp_path / "relu.mlir"
    model.write_text(RELU)
    out = tmp_path / "build"
    umask = os.umask(0o022)
    try:
        assert (
            compile_tool.main([str(model), "--target", "rv32", "-o", str(out), "--keep-stages"])
            == 0
        )
        assert (out.stat().st_mode & 0o777) == 0o755
        (out / "notes.txt").write_text("mine")
        assert (out / "0-memref.mlir").exists()
        assert compile_tool.main([str(model), "--target", "rv32", "-o", str(out)]) == 0
    finally:
        os.umask(umask)
    names = {path.name for path in out.iterdir()}
    assert "0-memref.mlir" not in names and {"notes.txt", "model.o", "example"} <= names


def test_opt_takes_mlir_opt_spellings_and_documents_pass_options(tmp_path, capsys):
    model = tmp_path / "relu.mlir"
    model.write_text(RELU)
    pipeline = "--pass-pipeline=builtin.module(convert-tinyattn-to-kernels)"
    assert opt.main([str(model), pipeline, "--mlir-print-op-generic"]) == 0
    assert '"kernel.map"' in capsys.readouterr().out
    assert opt.main(["--help"]) == 0
    assert "depth-first-tile{l1-bytes=131072 rows=auto dma=true" in capsys.readouterr().out
    assert opt.main([str(model), "--depth-first-tile=foo=1"]) == 2
    assert '["l1-bytes", "rows", "dma", "pack-weights"]' in capsys.readouterr().err


def test_keep_stages_keeps_every_stage_and_a_script_that_remakes_the_object(tmp_path, capsys):
    out = tmp_path / "build"
    model = MODELS / "ecg.onnx"
    assert (
        compile_tool.main([str(model), "--target", "cortex-m4", "-o", str(out), "--keep-stages"])
        == 0
    )
    passes = sorted(out.glob("tinyattn-*.mlir"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name.split("-", 2)[2] for p in passes] == [
        "input.mlir", "fuse-weights.mlir", "depth-first-tile.mlir",
        "convert-tinyattn-to-kernels.mlir", "convert-kernels-to-loops.mlir",
        "plan-memory.mlir", "lower-dma.mlir",
    ]  # fmt: skip
    for stage in passes[::2]:  # every stage runs where it stands and matches its reference
        assert run_tool.main([str(stage), "--target", "host"]) == 0, stage.name
    capsys.readouterr()
    assert "tinyattn_model:" in (out / "4-model.s").read_text()
    original = (out / "model.o").read_bytes()
    (out / "model.o").unlink()
    script = subprocess.run(["sh", "stages.sh"], cwd=out, capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert (out / "model.o").read_bytes() == original


def test_compile_name_sets_the_symbol_and_refuses_a_non_identifier(tmp_path, capsys):
    model = tmp_path / "relu.mlir"
    model.write_text(RELU)
    out = tmp_path / "build"
    assert compile_tool.main([str(model), "--target", "host", "-o", str(out), "--name", "kws"]) == 0
    header = (out / "model.h").read_text()
    assert (
        "void kws(const float *in0, float *out0);" in header and "#define KWS_IN0_BYTES" in header
    )
    bad = [str(model), "--target", "host", "-o", str(tmp_path / "b"), "--name", "1x"]
    assert compile_tool.main(bad) == 2
    err = capsys.readouterr().err
    assert err == "tinyattn-compile: error: model name '1x' is not a C identifier\n"
    assert not (tmp_path / "b").exists()


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """`tinyattn-import MODEL | head -c 1`: the write into the closed pipe ends the command with
    128 + SIGPIPE and no error line, as it would a C tool."""
    process = subprocess.Popen(
        [BIN / "tinyattn-import", MODELS / "eeg.onnx"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # before the import writes anything
    _, error = process.communicate()
    assert (process.returncode, error) == (141, b"")
