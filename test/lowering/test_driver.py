"""The driver (compile_model / run_model), the upstream pipeline, the generated harness and the
two tools, on hand-written memref-level models: outputs against numpy on every runnable target,
repeatable instruction counts, and one-line errors that leave nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from handwritten import (
    RUNNABLE,
    TENSOR_SOFTMAX,
    linear_i8,
    linear_softmax,
    needs_pipeline,
    parse,
)

from tinyattn.backend import toolchain
from tinyattn.backend.pipeline import STAGES, mlir_opt_args
from tinyattn.backend.targets import get_target
from tinyattn.backend.toolchain import ToolchainError
from tinyattn.driver import run as driver
from tinyattn.driver.lowered_model import LoweredModel, TensorSpec
from tinyattn.driver.run import DriverError, compile_model, run_model
from tinyattn.frontend.arrays import ArraysNote
from tinyattn.tools import compile as compile_tool
from tinyattn.tools import run as run_tool

MODELS = {"f32": linear_softmax, "i8": linear_i8}


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_output_matches_numpy_and_count_repeats(kind, name, tmp_path, build_dir):
    model = MODELS[kind]()
    rng = np.random.default_rng(3)
    spec = model.lowered.inputs[0]
    x = (
        rng.uniform(-2, 2, spec.shape).astype(np.float32)
        if kind == "f32"
        else rng.integers(-128, 128, spec.shape, dtype=np.int8)
    )
    report = run_model(
        model.lowered,
        name,
        inputs={"x": x},
        work_dir=tmp_path,
        reference=model.reference,
        build_dir=build_dir,
    )
    expected = model.reference([x])[0]
    assert report.match
    if kind == "f32":
        np.testing.assert_allclose(report.outputs[0], expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(report.outputs[0], expected)
        assert report.dma_bytes == x.nbytes  # the model DMAs its input into the L2 arena
    assert report.macs == 160 and report.code_bytes > 0
    assert report.arena_bytes == {a.level: a.size for a in model.lowered.arenas}

    target = get_target(name)
    if target.is_host:
        assert report.instructions is None and report.mac_per_instruction is None
    else:
        again = toolchain.run(target, tmp_path / "model.elf", tmp_path / "run", build_dir=build_dir)
        assert report.instructions > 0 and again.instructions == report.instructions
        assert report.mac_per_instruction == pytest.approx(160 / report.instructions)


@needs_pipeline
def test_compile_writes_object_header_ir_report_and_stages(tmp_path):
    model = linear_i8()
    out = tmp_path / "out"
    result = compile_model(model.lowered, "rv32", out, keep_stages=True)
    names = {p.name for p in out.iterdir()}
    package = {"libtinyattn_rt.a", "tinyattn_rt.h", "tinyattn.ld", "tinyattn.cmake", "example"}
    assert names == {
        "model.o",
        "model.h",
        "model.ll",
        "report.json",
        *package,
        *STAGES,
        "stages.sh",
    }
    report = json.loads((out / "report.json").read_text())
    assert report == result.report
    assert report["params_bytes"] == model.lowered.params_bytes and report["macs"] == 160
    assert report["activation_peak_bytes"] == 112 and report["arenas"] == {"L1": 80, "L2": 32}
    assert report["code_bytes"] == result.code_bytes > 0
    assert report["inputs"] == [{"name": "x", "shape": [4, 8], "dtype": "int8"}]
    # opt got the target: its data layout has 32-bit pointers and no i64 address arithmetic.
    ir = (out / "model.ll").read_text()
    assert 'target triple = "riscv32' in ir and "-p:32:32-" in ir
    assert " i64 " not in ir
    header = (out / "model.h").read_text()
    assert (
        "void linear_i8(const int8_t *in0, int8_t *out0, uint8_t *arena_l1, uint8_t *arena_l2);"
        in header
    )
    for define in ("LINEAR_I8_IN0_SHAPE {4, 8}", "LINEAR_I8_OUT0_BYTES 20", "ARENA_L2_BYTES 32"):
        assert define in header


@needs_pipeline
def test_compile_into_existing_directory_keeps_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    compile_model(linear_i8().lowered, "cortex-m4", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "model.o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@needs_pipeline
def test_gap9_compiles_a_riscv32_object_but_does_not_run(tmp_path):
    model = linear_softmax()
    compile_model(model.lowered, "gap9", tmp_path / "gap9")
    header = (tmp_path / "gap9" / "model.o").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 1  # ELFCLASS32
    assert int.from_bytes(header[18:20], "little") == 243  # EM_RISCV
    with pytest.raises(DriverError, match="gap9 is compile-only"):
        run_model(model.lowered, "gap9", reference=model.reference)


@pytest.mark.parametrize(
    ("name", "memory"), [("cortex-m4", "SRAM"), ("cortex-m7", "DTCM"), ("rv32", "TCDM")]
)
def test_arena_larger_than_l1_fails_before_writing(name, memory, tmp_path):
    size = get_target(name).l1.size + 16
    with pytest.raises(DriverError) as error:
        compile_model(linear_softmax(arena=size).lowered, name, tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message
    assert f"model does not fit {name}: L1 arena {size}" in message and memory in message
    assert list(tmp_path.iterdir()) == []


def _only(*names: str) -> list:
    return [param for param in RUNNABLE if param.values[0] in names]


@pytest.mark.parametrize("name", _only("host", "rv32"))
@pytest.mark.parametrize(
    "arena, shift, side", [(64, 0, "after"), (80, -4, "before")], ids=["past-end", "before-start"]
)
def test_a_write_outside_the_arena_trips_its_guard(name, arena, shift, side, build_dir):
    model = linear_softmax(arena=arena, shift=shift)  # the code writes 80 bytes from `shift`
    expected = rf"exit code 4 \(arena overrun\): harness: arena L1 overrun: the bytes {side} it"
    with pytest.raises(DriverError, match=expected):
        run_model(model.lowered, name, reference=model.reference, build_dir=build_dir)


def test_entry_signature_must_match_the_specs(tmp_path):
    model = linear_softmax()
    wrong = LoweredModel(
        **{**vars(model.lowered), "inputs": (TensorSpec("x", (8, 4), np.dtype(np.float32)),)}
    )
    with pytest.raises(DriverError, match=r"entry 'linear_softmax' takes \(\[4, 8\] float32"):
        compile_model(wrong, "host", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_pipeline
def test_pipeline_failure_is_one_toolchain_line(tmp_path):
    # A memory space left on a memref: finalize-memref-to-llvm leaves the op alone and
    # mlir-translate rejects it (the lowering must clear memory spaces first).
    module = parse(
        "func.func @bad(%x: memref<4xf32>, %y: memref<4xf32>) {\n"
        "  %c0 = arith.constant 0 : index\n"
        '  %buf = memref.alloca() : memref<4xf32, "L1">\n'
        "  %v = memref.load %x[%c0] : memref<4xf32>\n"
        '  memref.store %v, %buf[%c0] : memref<4xf32, "L1">\n'
        '  %w = memref.load %buf[%c0] : memref<4xf32, "L1">\n'
        "  memref.store %w, %y[%c0] : memref<4xf32>\n"
        "  func.return\n}\n"
    )
    spec = TensorSpec("x", (4,), np.dtype(np.float32))
    bad = LoweredModel(module, "bad", (spec,), (spec,), (), 0, 0)
    with pytest.raises(ToolchainError) as error:
        compile_model(bad, "rv32", tmp_path / "out")
    message = str(error.value)
    assert message.startswith("mlir-translate-22 failed lowering bad: 1-llvm.mlir:")
    assert "error: Dialect `memref' not found" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_index_width_follows_the_target():
    assert "--finalize-memref-to-llvm=index-bitwidth=64" in mlir_opt_args(get_target("host"))
    assert "--finalize-memref-to-llvm=index-bitwidth=32" in mlir_opt_args(get_target("rv32"))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": np.full((4, 8), 0.1, np.float64)},
            r"input 'x': float64 values that float32 does not hold exactly",
        ),
        ([np.zeros((8, 4), np.float32)], r"input 'x': expected float32 \[4, 8\], got float32 \[8"),
        ({}, r"the model takes 1 \(x\); got \[\]"),
    ],
    ids=["inexact", "shape", "count"],
)
def test_bad_inputs_are_one_line(arrays, message):
    with pytest.raises(DriverError, match=message):
        driver.match_inputs(arrays, linear_softmax().lowered.inputs)


def test_inputs_by_name_else_by_position():
    specs = linear_i8().lowered.inputs
    x = np.ones((4, 8), np.int8)
    assert driver.match_inputs({"arr_0": x}, specs)[0] is x  # np.savez's positional names
    with pytest.warns(ArraysNote, match="^ignoring 'junk': the model takes 1"):
        assert driver.match_inputs({"junk": np.zeros(3), "x": x}, specs)[0] is x


def test_random_inputs_cover_the_dtype():
    specs = [
        TensorSpec("q", (1000,), np.dtype(np.int8)),
        TensorSpec("f", (1000,), np.dtype(np.float32)),
    ]
    q, f = driver.random_inputs(specs, seed=1)
    assert q.dtype == np.int8 and q.min() < -120 and q.max() > 120
    assert f.dtype == np.float32 and abs(f.mean()) < 0.1 and 0.9 < f.std() < 1.1
    assert all(
        np.array_equal(a, b) for a, b in zip(driver.random_inputs(specs, 1), [q, f], strict=True)
    )


# The tools, in process (the one-line error contract) and once as installed scripts.


@pytest.fixture
def tensor_model(tmp_path):
    """A tensor-level .mlir: linear then softmax (the hand-written f32 model's computation)."""
    path = tmp_path / "softmax.mlir"
    path.write_text(TENSOR_SOFTMAX)
    return path


@pytest.mark.parametrize("name", _only("rv32"))
def test_run_tool_checks_against_the_interpreter(name, tensor_model, capsys):
    assert run_tool.main([str(tensor_model), "--target", name, "--json", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["match"] is True and report["instructions"] > 0 and report["macs"] == 160
    assert run_tool.main([str(tensor_model), "--target", name]) == 0
    assert "MAC/instruction" in capsys.readouterr().out


def _one_error_line(capsys, prog: str, message: str) -> None:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"{prog}: error: ") and message in captured.err


def test_run_tool_rejects_bad_inputs(tensor_model, tmp_path, capsys):
    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, x=np.zeros((2, 8), np.float32))
    assert run_tool.main([str(tensor_model), "--target", "host", "--inputs", str(bad_shape)]) == 2
    _one_error_line(capsys, "tinyattn-run", "input 'x': expected float32 [4, 8]")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    assert run_tool.main([str(tensor_model), "--target", "host", "--inputs", str(corrupt)]) == 2
    _one_error_line(capsys, "tinyattn-run", "corrupt.npz: not a readable .npz file")


def test_compile_tool_rejects_corrupt_onnx_and_bad_mlir(tmp_path, capsys):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    out = tmp_path / "out"
    assert compile_tool.main([str(corrupt), "--target", "rv32", "-o", str(out)]) == 2
    _one_error_line(capsys, "tinyattn-compile", "model.onnx: not an ONNX model")
    broken = tmp_path / "model.mlir"
    broken.write_text("func.func @main() -> tensor<4xf32> {\n  func.return %y : tensor<4xf32>\n}\n")
    assert compile_tool.main([str(broken), "--target", "rv32", "-o", str(out)]) == 2
    _one_error_line(capsys, "tinyattn-compile", "values used but not defined: [%y]")
    with pytest.raises(SystemExit) as exit_status:  # usage errors exit from argparse
        compile_tool.main([str(broken), "--target", "m0", "-o", str(out)])
    assert exit_status.value.code == 2
    _one_error_line(capsys, "tinyattn-compile", "invalid choice: 'm0'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mlir", "model.onnx"]


@needs_pipeline
def test_compile_tool_writes_the_outputs(tensor_model, tmp_path):
    out = tmp_path / "build" / "softmax"
    assert compile_tool.main([str(tensor_model), "--target", "cortex-m7", "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {
        *("model.o", "model.h", "model.ll", "report.json"),
        *("libtinyattn_rt.a", "tinyattn_rt.h", "tinyattn.ld", "tinyattn.cmake", "example"),
    }


def test_installed_script_fails_without_traceback(tmp_path):
    model = tmp_path / "x.onnx"
    model.write_bytes(b"junk")
    script = Path(sys.executable).parent / "tinyattn-compile"
    proc = subprocess.run(
        [script, str(model), "--target", "rv32", "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("tinyattn-compile: error: ") and proc.stderr.count("\n") == 1


def test_activations_too_large_for_the_target_is_one_line(tmp_path, capsys):
    model = tmp_path / "big.mlir"
    model.write_text(
        "func.func @main(%x: tensor<512x512xf32>) -> tensor<512x512xf32> {\n"
        "  %a = tinyattn.gelu %x : (tensor<512x512xf32>) -> tensor<512x512xf32>\n"
        "  %b = tinyattn.relu %a : (tensor<512x512xf32>) -> tensor<512x512xf32>\n"
        "  func.return %b : tensor<512x512xf32>\n"
        "}\n"
    )
    out = tmp_path / "out"
    assert compile_tool.main([str(model), "--target", "cortex-m4", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        "tinyattn-compile: error: cortex-m4: @main needs 1048576 bytes of L2 for its "
        "activations, but L2 has 655360 bytes\n"
    )
    assert not out.exists()


def test_run_tool_schedule_flags(capsys):
    """--schedule/--fuse-weights/--l1-bytes/--rows reach the lowering; a budget depth-first
    cannot fit falls back to layer-wise tiling with a remark, and one nothing fits is one line
    naming depth-first's minimum."""
    model = "models/ecg.onnx"
    common = ["--target", "rv32", "--json", "--fuse-weights", "never"]
    assert run_tool.main([model, *common, "--schedule", "depth-first", "--rows", "3"]) == 0
    tiled = json.loads(capsys.readouterr().out)
    assert run_tool.main([model, *common, "--schedule", "layerwise"]) == 0
    layerwise = json.loads(capsys.readouterr().out)
    assert tiled["match"] and layerwise["match"]
    assert 0 < tiled["dma_bytes"] < layerwise["dma_bytes"]
    assert tiled["activation_peak_bytes"] < layerwise["activation_peak_bytes"]
    assert run_tool.main([model, "--target", "rv32", "--l1-bytes", "4096"]) == 0
    assert capsys.readouterr().err.startswith(
        "remark: depth-first-tile: the attention (S=66 E=16 P=2) needs at least 6272 bytes of L1 "
        "with 1-row blocks, but l1-bytes=4096 (attention #0); scheduled by layerwise-tile "
        "instead, in "
    )
    assert run_tool.main([model, "--target", "rv32", "--l1-bytes", "128"]) == 2
    assert capsys.readouterr().err == (
        "tinyattn-run: error: rv32: depth-first-tile: the attention (S=66 E=16 P=2) needs at "
        "least 6272 bytes of L1 with 1-row blocks, but l1-bytes=128\n"
    )


def test_an_ill_shaped_mlir_model_is_one_line_with_its_position(tmp_path, capsys):
    model = tmp_path / "bad.mlir"
    model.write_text(
        "func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
        "  %y = tinyattn.softmax %x : (tensor<4xf32>) -> tensor<5xf32>\n"
        "  func.return %y : tensor<5xf32>\n"
        "}\n"
    )
    assert run_tool.main([str(model), "--target", "host"]) == 2
    assert capsys.readouterr().err == (
        f"tinyattn-run: error: {model}:2:3: 'tinyattn.softmax' op result dimension 0 must be 4 "
        "(shape of 'x' = [4]), got 5 (shape [5])\n"
    )
