"""tinyattn's dialects in upstream MLIR: `tinyattn-opt --emit-irdl` loads into
`mlir-opt-22 --irdl-file`, which parses and verifies every stage `--mlir-interop` prints, and
tinyattn-opt reads back what mlir-opt prints of it, unchanged; IR breaking a constraint the IRDL
states is refused by mlir-opt."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from requires import needs_tools, target_param
from xdsl.context import Context

from tinyattn.backend import toolchain
from tinyattn.driver.parsing import LocatingParser, register_dialects
from tinyattn.tools import opt
from tinyattn.tools import run as run_tool

pytestmark = needs_tools("mlir-opt-22")

TEST = Path(__file__).resolve().parent.parent
MODELS = TEST.parent / "models"

# (name, input, tinyattn-opt flags): every stage of bundled models (tensor, tiled, kernel, loops,
# planned), and every op of our dialects in its f32 and int8 forms.
STAGES = [
    ("ecg-tensor", MODELS / "ecg.onnx", []),
    ("ecg-tiled", MODELS / "ecg.onnx", ["--fuse-weights", "--depth-first-tile"]),
    (
        "ecg-kernels",
        MODELS / "ecg.onnx",
        ["--fuse-weights", "--depth-first-tile", "--convert-tinyattn-to-kernels"],
    ),
    (
        "eeg-layerwise-kernels",
        MODELS / "eeg.onnx",
        ["--layerwise-tile", "--convert-tinyattn-to-kernels"],
    ),
    (
        "ecg-loops",
        MODELS / "ecg.onnx",
        [
            "--fuse-weights", "--depth-first-tile", "--convert-tinyattn-to-kernels",
            "--convert-kernels-to-loops=target=thumbv7em",
        ],
    ),  # fmt: skip
    (
        "ecg-planned",
        MODELS / "ecg.onnx",
        [
            "--fuse-weights", "--depth-first-tile", "--convert-tinyattn-to-kernels",
            "--convert-kernels-to-loops=target=rv32", "--plan-memory", "--lower-dma",
        ],
    ),  # fmt: skip
    # a conv tokenizer; its kernel.map inputs differ in layout
    ("cct-kernels", MODELS / "cct.onnx", ["--depth-first-tile", "--convert-tinyattn-to-kernels"]),
    ("tinyattn-ops", TEST / "dialects" / "ops.mlir", []),
    ("kernel-ops", TEST / "dialects" / "kernel.mlir", []),
]


@pytest.fixture(scope="module")
def irdl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("irdl") / "tinyattn.irdl.mlir"
    assert opt.main(["--emit-irdl", str(path)]) == 0
    return path


def mlir_opt(irdl: Path, text: str) -> subprocess.CompletedProcess[str]:
    """mlir-opt-22 with our dialects, printing the generic form tinyattn-opt reads."""
    command = [toolchain.tool("mlir-opt-22"), f"--irdl-file={irdl}", "--mlir-print-op-generic"]
    return subprocess.run(command, input=text, capture_output=True, text=True)


def parse(text: str):
    ctx = Context()
    register_dialects(ctx)
    return LocatingParser(ctx, text, "test").parse_module()


@pytest.mark.parametrize("name, source, flags", STAGES, ids=[stage[0] for stage in STAGES])
def test_a_stage_round_trips_through_mlir_opt(name, source, flags, irdl, tmp_path):
    stage, interop, back = (
        tmp_path / f"{name}{suffix}.mlir" for suffix in ("", "-interop", "-back")
    )
    assert opt.main([str(source), *flags, "-o", str(stage)]) == 0
    assert opt.main([str(stage), "--mlir-interop", "-o", str(interop)]) == 0

    upstream = mlir_opt(irdl, interop.read_text())
    assert upstream.returncode == 0, upstream.stderr
    back.write_text(upstream.stdout)
    assert opt.main([str(back), "-o", str(tmp_path / "reread.mlir")]) == 0  # parses, verifies

    original, returned = parse(stage.read_text()), parse(upstream.stdout)
    assert original.is_structurally_equivalent(returned)


def test_emit_irdl_writes_standard_output(irdl, capsys):
    assert opt.main(["--emit-irdl", "-"]) == 0
    assert capsys.readouterr().out == irdl.read_text()


def test_emit_irdl_takes_no_input(irdl, capsys):
    assert opt.main(["--emit-irdl", "-", str(TEST / "dialects" / "ops.mlir")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["tinyattn-opt: error: --emit-irdl FILE writes the dialects only: no input "
                     "file, no -o"]  # fmt: skip


MATMUL = """func.func @f(%x: memref<4x8xi8>, %w: memref<8x3xi8>, %y: memref<4x3xi8>) {{
  "kernel.matmul"(%x, %w, %y) {{operandSegmentSizes = array<i32: 1, 1, 0, 0, 1>, requant = {requant}}} : (memref<4x8xi8>, memref<8x3xi8>, memref<4x3xi8>) -> ()
  func.return
}}
"""
REQUANT = "#tinyattn.requant_attr<array<i64: 3>, array<i64: 0>, 5 : i64>"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            MATMUL.format(requant=REQUANT).replace('"kernel.matmul"', '"kernel.map"'),
            'attribute "fn" is expected but not provided',
        ),
        (
            MATMUL.format(requant=REQUANT)
            .replace("operandSegmentSizes", 'fn = "frobnicate", operandSegmentSizes')
            .replace('"kernel.matmul"', '"kernel.map"'),
            '"frobnicate"\' does not satisfy the constraint',
        ),
        (
            MATMUL.format(requant="#tinyattn.requant_attr<3 : i64, array<i64: 0>, 5 : i64>"),
            "expected base attribute 'builtin.dense_array' but got 'builtin.integer'",
        ),
        (
            'func.func @f(%t: tensor<4x3xf32>) {\n  %k = "dma.start"(%t, %t) : '
            "(tensor<4x3xf32>, tensor<4x3xf32>) -> !dma.token\n  func.return\n}\n",
            "expected base type 'builtin.memref' but got 'builtin.tensor'",
        ),
    ],
    ids=["missing-attribute", "unknown-map-function", "requant-parameter-kind", "dma-of-tensors"],
)
def test_mlir_opt_refuses_what_the_irdl_forbids(text, message, irdl):
    upstream = mlir_opt(irdl, text)
    assert upstream.returncode != 0
    assert message in upstream.stderr, upstream.stderr


def test_mlir_opt_accepts_the_valid_counterpart(irdl):
    """The refusals above are about the constraint each breaks: the op itself passes."""
    upstream = mlir_opt(irdl, MATMUL.format(requant=REQUANT))
    assert upstream.returncode == 0, upstream.stderr
    assert REQUANT in upstream.stdout


@pytest.mark.parametrize("target", [target_param("host")])
def test_every_tool_reads_what_mlir_opt_prints(target, irdl, tmp_path):
    """The kernel stage, through mlir-opt-22 and back, runs and matches its reference."""
    stage, interop = tmp_path / "stage.mlir", tmp_path / "interop.mlir"
    flags = ["--fuse-weights", "--depth-first-tile", "--convert-tinyattn-to-kernels"]
    assert opt.main([str(MODELS / "ecg.onnx"), *flags, "-o", str(stage)]) == 0
    assert opt.main([str(stage), "--mlir-interop", "-o", str(interop)]) == 0
    upstream = mlir_opt(irdl, interop.read_text())
    assert upstream.returncode == 0, upstream.stderr
    back = tmp_path / "back.mlir"
    back.write_text(upstream.stdout)
    assert run_tool.main([str(back), "--target", target]) == 0


LINEAR = """func.func @f(%x: tensor<4x8xi8>, %w: tensor<8x2xi8>, %b: tensor<2xi32>) -> tensor<4x2xi8> {{
  %y = "tinyattn.linear"(%x, %w, %b) {{requant = #tinyattn.requant_attr<{parameters}>}} : (tensor<4x8xi8>, tensor<8x2xi8>, tensor<2xi32>) -> tensor<4x2xi8>
  func.return %y : tensor<4x2xi8>
}}
"""


@pytest.mark.parametrize(
    "parameters, reason",
    [
        ("array<i64: 3, 4>, array<i64: 0, 1>, 99 : i64", "requant shift must be in [0, 31], got 99"),
        (
            'array<i64: 3, 4>, array<i64: 0, 1>, "x"',
            """parameter 'shift' does not verify: "x" should be of base attribute builtin.int""",
        ),
        ("array<i64: 3, 4>", "#tinyattn.requant_attr takes 3 parameters"),
    ],
    ids=["range", "kind", "count"],
)
def test_a_bad_interop_attribute_is_one_line(parameters, reason, tmp_path, capsys):
    source = tmp_path / "bad.mlir"
    source.write_text(LINEAR.format(parameters=parameters))
    assert opt.main([str(source)]) == 2
    assert capsys.readouterr().err == f"tinyattn-opt: error: {source}:2:71: {reason}\n"
