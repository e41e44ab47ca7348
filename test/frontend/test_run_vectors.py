"""Stored test vectors through the tools: `tinyattn-run --expect` compares the program's outputs
with stored ones, int64 vectors feed 8-bit model inputs, and `tinyattn-import --inputs` gives an
integer graph's inputs their signedness."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx_graphs import GraphBuilder, int_linear, linear, requant_shift
from requires import target_param

from tinyattn.driver import run as driver
from tinyattn.driver.lowered_model import TensorSpec
from tinyattn.driver.run import DriverError, run_model
from tinyattn.frontend.onnx_import import import_model
from tinyattn.semantics.interpreter import evaluate
from tinyattn.tools import import_onnx
from tinyattn.tools import run as run_tool

SEQ, EMBED = 4, 8


def _one_error_line(capsys, prog: str, message: str) -> None:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"{prog}: error: ") and message in captured.err, captured.err


@pytest.fixture
def vectors(tmp_path):
    """A float model, its inputs and the outputs the interpreter computes from them, as files
    keyed like Deeploy's (`input_0`, `output_0`: by position, not by the graph's names)."""
    b = GraphBuilder([1, SEQ, EMBED])
    model = b.model(b.op("Relu", linear(b, "x", EMBED, 5)))
    onnx.save(model, tmp_path / "network.onnx")
    x = np.random.default_rng(4).standard_normal((1, SEQ, EMBED)).astype(np.float32)
    (y,) = evaluate(import_model(model), [x])
    np.savez(tmp_path / "inputs.npz", input_0=x)
    np.savez(tmp_path / "outputs.npz", output_0=y)
    return tmp_path, y


def _run(directory, expect: str, *extra: str) -> int:
    return run_tool.main(
        [
            str(directory / "network.onnx"),
            "--inputs",
            str(directory / "inputs.npz"),
            "--expect",
            str(directory / expect),
            *extra,
        ]
    )


@pytest.mark.parametrize("target", [target_param("host")])
def test_expect_match_and_mismatch(target, vectors, capsys):
    directory, y = vectors
    assert _run(directory, "outputs.npz", "--target", target, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["match"] is True and report["max_abs_error"] < 1e-4
    y[0, 1, 2] += 0.5  # one element off: a mismatch, exit status 1
    np.savez(directory / "wrong.npz", output_0=y)
    assert _run(directory, "wrong.npz", "--target", target, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["match"] is False and report["max_abs_error"] == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({}, "expect: the model returns 1 (/Relu_4_output_0); got []"),
        (
            {"output_0": np.zeros((SEQ, 5))},
            "expect: output '/Relu_4_output_0' is float32 [1, 4, 5]; got float64 [4, 5]",
        ),
        (
            {"output_0": np.full((1, SEQ, 5), "x")},
            "expect: output '/Relu_4_output_0' is float32 [1, 4, 5]; got <U1 [1, 4, 5]",
        ),
    ],
    ids=["count", "shape", "not_numbers"],
)
def test_bad_expect_file_is_one_line(arrays, message, vectors, capsys):
    directory, _ = vectors
    np.savez(directory / "bad.npz", **arrays)
    assert _run(directory, "bad.npz", "--target", "host") == 2
    _one_error_line(capsys, "tinyattn-run", message)


def test_expect_needs_inputs_and_a_readable_file(vectors, capsys):
    directory, _ = vectors
    model = str(directory / "network.onnx")
    expect = str(directory / "outputs.npz")
    assert run_tool.main([model, "--target", "host", "--expect", expect]) == 2
    _one_error_line(capsys, "tinyattn-run", "--expect needs the --inputs it was computed from")
    (directory / "corrupt.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert _run(directory, "corrupt.npz", "--target", "host") == 2
    _one_error_line(capsys, "tinyattn-run", "corrupt.npz: not a readable .npz file")


def test_expect_and_a_reference_exclude_each_other(vectors):
    directory, y = vectors
    with pytest.raises(DriverError, match="^pass a reference or expected outputs, not both$"):
        run_model(directory / "network.onnx", "host", reference=lambda _: [y], expect=[y])


@pytest.mark.parametrize(
    ("dtype", "values"), [(np.int8, [-128, 0, 127]), (np.uint8, [0, 128, 255])]
)
def test_int64_vectors_feed_8bit_inputs(dtype, values):
    spec = TensorSpec("x", (3,), np.dtype(dtype))
    (x,) = driver.match_inputs({"input_0": np.array(values, np.int64)}, [spec])
    assert x.dtype == dtype and x.tolist() == values


@pytest.mark.parametrize(
    ("dtype", "values", "message"),
    [
        (np.uint8, [-1, 0, 254], r"input 'x': values in \[-1, 254\] do not fit uint8 \[0, 255\]"),
        (np.int8, [0, 128, 5], r"input 'x': values in \[0, 128\] do not fit int8 \[-128, 127\]"),
        (
            np.int8,
            [0.0, 1.5, 2.0],
            r"input 'x': float64 values that are not integers; the input is int8",
        ),
        (
            np.float32,
            [0.1, 1.0, 2.0],
            r"input 'x': float64 values that float32 does not hold exactly",
        ),
        (np.float32, [2**24 + 1, 0, 1], r"input 'x': int64 values that float32 does not hold exactly"),
    ],
    ids=["negative_unsigned", "beyond_int8", "fraction", "inexact_float", "inexact_integer"],
)
def test_vectors_that_do_not_fit_are_one_line(dtype, values, message):
    spec = TensorSpec("x", (3,), np.dtype(dtype))
    with pytest.raises(DriverError, match=f"^{message}$"):
        driver.match_inputs([np.array(values)], [spec])


@pytest.fixture
def integer_model(tmp_path):
    b = GraphBuilder([1, SEQ, EMBED])
    path = tmp_path / "network.onnx"
    onnx.save(b.model(requant_shift(b, int_linear(b, "x", EMBED, 4), 3)), path)
    return path


def test_import_inputs_give_the_signedness(integer_model, tmp_path, capsys):
    unsigned = tmp_path / "unsigned.npz"
    np.savez(unsigned, np.random.default_rng(5).integers(0, 255, (1, SEQ, EMBED)))
    assert import_onnx.main([str(integer_model), "--inputs", str(unsigned)]) == 0
    assert "@main(%x: tensor<1x4x8xui8> {tinyattn.onnx_name = \"x\"}) -> (tensor<1x4x4xi8>" in (
        capsys.readouterr().out
    )
    assert import_onnx.main([str(integer_model)]) == 0
    assert "@main(%x: tensor<1x4x8xi8> {tinyattn.onnx_name = \"x\"}) -> (tensor<1x4x4xi8>" in (
        capsys.readouterr().out
    )


def test_import_bad_inputs_are_one_line(integer_model, tmp_path, capsys):
    missing = tmp_path / "missing.npz"
    assert import_onnx.main([str(integer_model), "--inputs", str(missing)]) == 2
    _one_error_line(capsys, "tinyattn-import", f"{missing}: no such file")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, np.zeros((SEQ, EMBED), np.int64))
    assert import_onnx.main([str(integer_model), "--inputs", str(wrong)]) == 2
    _one_error_line(
        capsys,
        "tinyattn-import",
        f"{integer_model}: input 'x': the sample has shape [4, 8]; the model says [1, 4, 8]",
    )
