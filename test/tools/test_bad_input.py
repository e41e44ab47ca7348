"""The bad-input corpus: every command line, given a model, option or file it cannot use, prints
ONE line `<prog>: error: ...` naming the user's path (or option) and the reason, exits with
status 2, prints no traceback and leaves no file behind (tools/cli.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tinyattn.tools import compile as compile_tool
from tinyattn.tools import import_onnx, opt, quantize
from tinyattn.tools import run as run_tool

TOOLS: dict[str, Callable[[list[str]], int]] = {
    "tinyattn-import": import_onnx.main,
    "tinyattn-opt": opt.main,
    "tinyattn-quantize": quantize.main,
    "tinyattn-compile": compile_tool.main,
    "tinyattn-run": run_tool.main,
}
RELU = """func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = tinyattn.relu %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
"""


def _onnx(
    path: Path, nodes, dims=(1, 4, 8), inits=(), opset=17, ir_version=None, out_dims=None
) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    out = list(dims if out_dims is None else out_dims)
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    onnx.save(model, path)
    return path


def _relu_onnx(path: Path, **kwargs) -> Path:
    return _onnx(path, [helper.make_node("Relu", ["x"], ["y"])], **kwargs)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _argv(tool: str, model: Path, out: Path) -> list[str]:
    """The usual command line of `tool` on `model`, its outputs under `out`."""
    calib = out.parent / "calib.npz"
    return {
        "tinyattn-import": [str(model), "-o", str(out / "m.mlir")],
        "tinyattn-opt": [str(model), "-o", str(out / "m.mlir")],
        "tinyattn-quantize": [str(model), "--calib", str(calib), "-o", str(out / "q.mlir")],
        "tinyattn-compile": [str(model), "--target", "host", "-o", str(out / "build")],
        "tinyattn-run": [str(model), "--target", "host"],
    }[tool]


def _expect_one_line(capsys, prog: str, status: int, *needles: str) -> None:
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"{prog}: error: "), err
    for needle in needles:
        assert needle in err, err


# (name, how to make the bad model in a directory, what the message says, tools that read it)
MODEL_CASES = [
    (
        "onnx-cycle",
        lambda d: _onnx(
            d / "cycle.onnx",
            [
                helper.make_node("Add", ["x", "r2"], ["r1"]),
                helper.make_node("Relu", ["r1"], ["r2"]),
            ],
        ),
        ["cycle.onnx", "reads 'r2' before any node computes it"],
    ),
    ("onnx-negative-dim", lambda d: _relu_onnx(d / "neg.onnx", dims=(1, -3, 8)), ["dimension -3"]),
    ("onnx-zero-dim", lambda d: _relu_onnx(d / "zero.onnx", dims=(1, 0, 8)), ["dimension 0"]),
    ("onnx-opset-99", lambda d: _relu_onnx(d / "o.onnx", opset=99), ["opset 99 is newer"]),
    ("onnx-ir-99", lambda d: _relu_onnx(d / "i.onnx", ir_version=99), ["IR version 99 is newer"]),
    (
        "onnx-duplicate-names",
        lambda d: _onnx(
            d / "dup.onnx",
            [
                helper.make_node("Relu", ["x"], ["a"], name="n"),
                helper.make_node("Relu", ["a"], ["y"], name="n"),
            ],
        ),
        ["two nodes are named 'n'"],
    ),
    (
        "onnx-matmul-shapes",
        lambda d: _onnx(
            d / "mm.onnx",
            [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
            inits=[helper.make_tensor("w", TensorProto.FLOAT, [5, 3], np.zeros(15))],
            out_dims=(1, 4, 3),
        ),
        ["node 'mm' (MatMul)", "must be 8"],
    ),
    (
        "onnx-nan-weight",
        lambda d: _onnx(
            d / "nan.onnx",
            [helper.make_node("Add", ["x", "w"], ["y"])],
            inits=[helper.make_tensor("w", TensorProto.FLOAT, [8], [np.nan] * 8)],
        ),
        ["initializer 'w' holds NaN"],
    ),
    ("onnx-truncated", lambda d: _write(d / "t.onnx", b"\x08\x07garbage"), ["not an ONNX model"]),
    ("onnx-empty", lambda d: _write(d / "empty.onnx", b""), ["empty.onnx"]),
    ("onnx-text", lambda d: _write(d / "text.onnx", b"hello, world\n"), ["text.onnx"]),
    ("onnx-symbolic-dim", lambda d: _relu_onnx(d / "sym.onnx", dims=(1, "N", 8)), ["'N'"]),
    (
        "onnx-unsupported-op",
        lambda d: _onnx(d / "sin.onnx", [helper.make_node("Sin", ["x"], ["y"], name="s")]),
        ["node 's' (Sin)"],
    ),
    ("mlir-empty", lambda d: _write(d / "empty.mlir", b""), ["empty.mlir"]),
    (
        "mlir-text",
        lambda d: _write(d / "text.mlir", b"hello, world\n"),
        ["text.mlir:1:", "not registered"],
    ),
    ("mlir-bad-first-character", lambda d: _write(d / "b.mlir", b"\x01\n"), ["b.mlir:1:1"]),
    ("mlir-empty-op", lambda d: _write(d / "e.mlir", b"func.func @main(\n"), ["e.mlir:"]),
    (
        "mlir-dynamic-dim",
        lambda d: _write(d / "dyn.mlir", RELU.replace("4x8", "?x8").encode()),
        ["dyn.mlir:2:3", "dynamic dimension"],
    ),
    (
        "mlir-zero-dim",
        lambda d: _write(d / "z.mlir", RELU.replace("4x8", "0x8").encode()),
        ["z.mlir:2:3", "size 0"],
    ),
    (
        "mlir-nan-constant",
        lambda d: _write(
            d / "nan.mlir",
            b"func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
            b'  %c = arith.constant dense<"0x0000C07F0000C07F0000807F0000803F"> : tensor<4xf32>\n'
            b"  %y = tinyattn.add %x, %c : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
            b"  func.return %y : tensor<4xf32>\n}\n",
        ),
        ["nan.mlir:2:", "NaN"],
    ),
    (
        "mlir-without-tensors",
        lambda d: _write(
            d / "memref.mlir",
            b"func.func @main(%x: memref<4x8xf32>, %y: memref<4x8xf32>) {\n  func.return\n}\n",
        ),
        ["@main takes no tensors"],
    ),
    ("missing-file", lambda d: d / "absent.onnx", ["absent.onnx"]),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize(
    ("make", "needles"), [case[1:] for case in MODEL_CASES], ids=[case[0] for case in MODEL_CASES]
)
def test_a_bad_model_is_one_line_exit_2_and_nothing_written(tool, make, needles, tmp_path, capsys):
    model = make(tmp_path)
    if tool == "tinyattn-import" and model.suffix == ".mlir":
        pytest.skip("tinyattn-import reads ONNX only")
    if tool == "tinyattn-opt" and model.name in ("nan.mlir", "memref.mlir"):
        pytest.skip("tinyattn-opt transforms any valid IR")
    np.savez(tmp_path / "calib.npz", x=np.zeros((2, 1, 4, 8), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    before = _files(tmp_path)
    status = TOOLS[tool](_argv(tool, model, out))
    _expect_one_line(capsys, tool, status, *needles)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    ("tool", "argv", "needles"),
    [
        ("tinyattn-run", ["--seed", "-1"], ["--seed: -1 is below 0"]),
        ("tinyattn-run", ["--l1-bytes", "0"], ["--l1-bytes: 0 is below 1"]),
        ("tinyattn-compile", ["--l1-bytes", "abc"], ["'abc' is not an integer"]),
        ("tinyattn-run", ["--target", "m0"], ["invalid choice: 'm0'"]),
        ("tinyattn-opt", ["-p", "depth-first-tile{rows=abc"], ["bad pass pipeline", "column 26"]),
        ("tinyattn-opt", ["--plan-memory=l2-bytes=-1"], ["l2-bytes must be positive, got -1"]),
        ("tinyattn-opt", ["--depth-first-tile=l1-bytes=0"], ["l1-bytes must be positive"]),
        ("tinyattn-opt", ["-p", "no-such-pass"], ["no-such-pass"]),
    ],
)
def test_a_bad_option_is_one_line_exit_2(tool, argv, needles, tmp_path, capsys):
    model = _write(tmp_path / "relu.mlir", RELU.encode())
    base = {"tinyattn-run": ["--target", "host"], "tinyattn-compile": ["--target", "host"]}
    args = [str(model), *base.get(tool, []), *argv]
    if tool == "tinyattn-compile":
        args += ["-o", str(tmp_path / "build")]
    try:
        status = TOOLS[tool](args)
    except SystemExit as exit_status:  # argparse's usage errors
        status = exit_status.code
    _expect_one_line(capsys, tool, status, *needles)
    assert _files(tmp_path) == {"relu.mlir"}


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (b"PK\x03\x04 not a zip", ["not a readable .npz file"]),
        (b"", ["not a readable .npz file"]),
        ("object", ["Object arrays"]),
        ("nan", ["input 'x' holds NaN"]),
        ("shape", ["input 'x': expected float32 [4, 8]"]),
    ],
    ids=["not-a-zip", "empty", "object-array", "nan", "shape"],
)
def test_a_bad_npz_is_one_line_exit_2(content, needles, tmp_path, capsys):
    """--inputs of tinyattn-run (and --calib of tinyattn-quantize for the archive's form)."""
    model = _write(tmp_path / "relu.mlir", RELU.encode())
    npz = tmp_path / "x.npz"
    if content == "object":
        np.savez(npz, x=np.array([object(), 1], dtype=object))
    elif content == "nan":
        np.savez(npz, x=np.full((4, 8), np.nan, np.float32))
    elif content == "shape":
        np.savez(npz, x=np.zeros((2, 8), np.float32))
    else:
        npz.write_bytes(content)
    status = run_tool.main([str(model), "--target", "host", "--inputs", str(npz)])
    _expect_one_line(capsys, "tinyattn-run", status, "error: ", *needles[:1])
    if content in ("object", b"PK\x03\x04 not a zip"):
        status = quantize.main([str(model), "--calib", str(npz), "-o", str(tmp_path / "q.mlir")])
        _expect_one_line(capsys, "tinyattn-quantize", status, str(npz))
    assert not (tmp_path / "q.mlir").exists()


def test_quantize_report_that_cannot_be_written_leaves_no_module(tmp_path, capsys):
    model = _write(tmp_path / "relu.mlir", RELU.encode())
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((2, 4, 8)))
    (tmp_path / "report").mkdir()
    out = tmp_path / "q.mlir"
    argv = [str(model), "--calib", str(tmp_path / "calib.npz"), "-o", str(out)]
    status = quantize.main([*argv, "--report", str(tmp_path / "report")])
    _expect_one_line(capsys, "tinyattn-quantize", status, f"{tmp_path / 'report'}: cannot write")
    assert _files(tmp_path) == {"relu.mlir", "calib.npz", "report"}


def test_opt_leaves_no_output_on_a_parse_error(tmp_path, capsys):
    model = _write(tmp_path / "bad.mlir", b"func.func @main(\n")
    status = opt.main([str(model), "-o", str(tmp_path / "out.mlir")])
    _expect_one_line(capsys, "tinyattn-opt", status, "bad.mlir:")
    assert _files(tmp_path) == {"bad.mlir"}


def test_opt_reads_onnx(tmp_path, capsys):
    model = _relu_onnx(tmp_path / "relu.onnx")
    assert opt.main([str(model), "-o", str(tmp_path / "relu.mlir")]) == 0
    assert "tinyattn.relu" in (tmp_path / "relu.mlir").read_text()


def test_a_plot_of_a_model_without_activation_buffers_is_drawn(tmp_path):
    model = _write(tmp_path / "relu.mlir", RELU.encode())
    argv = [
        str(model),
        "--target",
        "host",
        "-o",
        str(tmp_path / "b"),
        "--plot",
        str(tmp_path / "m.png"),
    ]
    assert compile_tool.main(argv) == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_a_plot_that_cannot_be_written_writes_nothing(tmp_path, capsys):
    model = _write(tmp_path / "relu.mlir", RELU.encode())
    plot = tmp_path / "no" / "m.png"
    argv = [str(model), "--target", "host", "-o", str(tmp_path / "b"), "--plot", str(plot)]
    _expect_one_line(capsys, "tinyattn-compile", compile_tool.main(argv), f"{plot}: no such")
    assert _files(tmp_path) == {"relu.mlir"}
