"""The C package of a compile, used as a firmware engineer uses it: copied away from the
project, its example built with its own Makefile (no project paths) and run under QEMU, the
printed outputs checked against the reference; two models under different names linked into
one firmware; a unit built for the wrong float ABI refused by model.h."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from requires import target_param

from tinyattn.api import LowerOptions, compile
from tinyattn.backend.targets import get_target
from tinyattn.backend.toolchain import qemu_command
from tinyattn.driver.lowered_model import TensorSpec
from tinyattn.driver.package import example_inputs, parse_example_output
from tinyattn.driver.run import compare, load_model
from tinyattn.frontend import quantize as q
from tinyattn.semantics.interpreter import evaluate

MODELS = Path(__file__).resolve().parent.parent.parent / "models"
RELU = """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.%OP% %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
"""


def _make(directory: Path, *goals: str) -> subprocess.CompletedProcess[str]:
    """`make` as a user runs it (not as a sub-make of `make test`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    command = ["make", "-s", "--no-print-directory", "-C", str(directory), *goals]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("target", [target_param("cortex-m4"), target_param("rv32")])
def test_the_example_builds_from_the_package_alone_and_matches(target, tmp_path):
    model = load_model(MODELS / "ecg.onnx")
    result = compile(model, target, tmp_path / "build")
    package = tmp_path / "elsewhere" / "ecg"
    shutil.copytree(tmp_path / "build", package)
    shutil.rmtree(tmp_path / "build")
    assert {"model.o", "model.h", "libtinyattn_rt.a", "tinyattn.ld", "tinyattn.cmake"} <= {
        p.name for p in package.iterdir()
    }
    run = _make(package / "example", "run")
    assert run.returncode == 0, run.stderr
    lowered = result.lowered
    outputs = parse_example_output(run.stdout + run.stderr, list(lowered.outputs))
    expected = evaluate(model, example_inputs(list(lowered.inputs)))
    for ours, reference in zip(outputs, expected, strict=True):
        assert compare(ours, np.asarray(reference, np.float32)).match
    # The same firmware through CMake and the package's tinyattn.cmake.
    build = package / "example" / "cmake-build"
    for step in (["-S", str(package / "example"), "-B", str(build)], ["--build", str(build)]):
        done = subprocess.run(["cmake", *step], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    elf = str(build / "example.elf")
    qemu = subprocess.run(qemu_command(get_target(target), elf), capture_output=True, text=True)
    again = parse_example_output(qemu.stdout + qemu.stderr, list(lowered.outputs))
    assert all(np.array_equal(a, b) for a, b in zip(again, outputs, strict=True))


@pytest.mark.parametrize("target", [target_param("cortex-m4")])
def test_two_models_link_into_one_firmware(target, tmp_path):
    """--name gives each model its own symbol and macros; one runtime library serves both."""
    for name, op in (("relu_model", "relu"), ("gelu_model", "gelu")):
        source = tmp_path / f"{op}.mlir"
        source.write_text(RELU.replace("%OP%", op))
        compile(load_model(source), target, tmp_path / name, options=LowerOptions(name=name))
    example = tmp_path / "relu_model" / "example"
    main = example / "main.c"
    second = '  gelu_model(in0, out0);\n  print_bytes("out1", out0, sizeof out0);\n'
    main.write_text(
        main.read_text()
        .replace('#include "model.h"', '#include "model.h"\n#include "../../gelu_model/model.h"')
        .replace("  return 0;", f"{second}  return 0;")
    )
    makefile = example / "Makefile"
    other = "../model.o ../../gelu_model/model.o"
    makefile.write_text(makefile.read_text().replace("../model.o", other))
    run = _make(example, "run")
    assert run.returncode == 0, run.stderr
    spec = TensorSpec("x", (4, 8), np.dtype(np.float32))
    (x,) = example_inputs([spec])
    relu, gelu = parse_example_output(run.stdout + run.stderr, [spec, spec])
    assert np.array_equal(relu, np.maximum(x, 0))
    assert compare(gelu, np.asarray(evaluate(load_model(tmp_path / "gelu.mlir"), [x])[0])).match


def test_a_unit_built_for_another_float_abi_is_refused(tmp_path):
    source = tmp_path / "relu.mlir"
    source.write_text(RELU.replace("%OP%", "relu"))
    compile(load_model(source), "cortex-m4", tmp_path / "out")
    unit = tmp_path / "unit.c"
    unit.write_text('#include "model.h"\n')
    flags = ["--target=thumbv7em-none-eabi", "-mcpu=cortex-m4", f"-I{tmp_path / 'out'}", "-c"]
    softfp = subprocess.run(
        ["clang-22", *flags, "-mfloat-abi=softfp", str(unit), "-o", str(tmp_path / "u.o")],
        capture_output=True,
        text=True,
    )
    assert softfp.returncode != 0 and "built for the -mfloat-abi=hard ABI" in softfp.stderr
    hard = subprocess.run(
        ["clang-22", *flags, "-mfloat-abi=hard", str(unit), "-o", str(tmp_path / "u.o")],
        capture_output=True,
        text=True,
    )
    assert hard.returncode == 0, hard.stderr


def test_model_h_states_the_stack_and_a_quantized_model_s_scales(tmp_path):
    source = tmp_path / "relu.mlir"
    source.write_text(RELU.replace("%OP%", "relu"))
    rng = np.random.default_rng(0)
    int8 = q.quantize(load_model(source), [[rng.standard_normal((4, 8)).astype(np.float32)]])
    result = compile(int8, "cortex-m4", tmp_path / "out")
    header = (tmp_path / "out" / "model.h").read_text()
    function = q.entry_function(int8)
    (scale_in,) = q.recorded_scales(function, q.INPUT_SCALES)
    (scale_out,) = q.recorded_scales(function, q.OUTPUT_SCALES)
    assert f"#define TINYATTN_MODEL_IN0_SCALE {scale_in!r}f" in header
    assert f"#define TINYATTN_MODEL_OUT0_SCALE {scale_out!r}f" in header
    assert "#define TINYATTN_MODEL_IN0_ZERO_POINT 0" in header
    stack = result.report["stack_bytes"]
    assert f"#define TINYATTN_MODEL_STACK_BYTES {stack}" in header
    float_model = compile(load_model(MODELS / "ecg.onnx"), "cortex-m4", tmp_path / "ecg")
    assert float_model.report["stack_bytes"] > 0
    assert "SCALE" not in (tmp_path / "ecg" / "model.h").read_text()


@pytest.mark.parametrize("target", [target_param("cortex-m4")])
def test_the_info_arrays_describe_the_tensors(target, tmp_path):
    """A program walks <entry>_inputs/_outputs; the example prints what they hold."""
    source = tmp_path / "relu.mlir"
    source.write_text(RELU.replace("%OP%", "relu"))
    rng = np.random.default_rng(0)
    int8 = q.quantize(load_model(source), [[rng.standard_normal((4, 8)).astype(np.float32)]])
    compile(int8, target, tmp_path / "out")
    example = tmp_path / "out" / "example"
    main = example / "main.c"
    walk = (
        "  for (unsigned t = 0; t < TINYATTN_MODEL_NUM_INPUTS; t++) {\n"
        "    const tinyattn_tensor_info *info = &tinyattn_model_inputs[t];\n"
        "    uint32_t facts[4] = {info->rank, info->shape[0], info->shape[1], info->bytes};\n"
        '    print_bytes("out9", facts, sizeof facts);\n'
        '    print_bytes("out8", &info->scale, sizeof info->scale);\n'
        "  }\n  return 0;"
    )
    main.write_text(main.read_text().replace("  return 0;", walk))
    run = _make(example, "run")
    assert run.returncode == 0, run.stderr
    console = run.stdout + run.stderr

    def printed(name: str, dtype) -> np.ndarray:
        lines = [line.split() for line in console.splitlines() if line.startswith(f"{name} ")]
        return np.frombuffer(bytes.fromhex("".join(parts[2] for parts in lines)), dtype)

    facts, scale = printed("out9", np.uint32), printed("out8", np.float32)
    assert facts.tolist() == [2, 4, 8, 32]
    (expected,) = q.recorded_scales(q.entry_function(int8), q.INPUT_SCALES)
    assert scale[0] == np.float32(expected)
