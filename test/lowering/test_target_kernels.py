"""Every target's micro-kernel computes what its kernel op means: random operands of
awkward shapes (odd rows and columns, depths with a remainder), every signedness, every
accumulator start, transposed results, per-channel requantization to i8 and ui8, and f32; the
kernel-level module and its loop level after each target's lowering evaluate to the same
outputs (int8 bit for bit; f32 within rounding). gap9 cannot run under QEMU, so this is where
its kernels are checked; thumbv7em and rv32 also run in the e2e matrices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from requires import target_param
from xdsl.context import Context

from tinyattn.api import run
from tinyattn.driver.parsing import parse_module
from tinyattn.lowering.convert_kernels_to_loops import ConvertKernelsToLoops
from tinyattn.semantics.interpreter import evaluate

TARGETS = ("thumbv7em", "rv32", "gap9")


def _text(array: np.ndarray) -> str:
    return np.array2string(array, separator=", ", threshold=10**6).replace("\n", "")


def _module(m: int, n: int, depth: int, x_type: str, w_type: str, init: str, out: str) -> str:
    """A kernel-level function: x [M, K] (input) times the global W [N, K] (read as Kᵀ) into
    out (output), starting from zero, a bias, the output itself, or transposed."""
    rng = np.random.default_rng(m * 100 + n * 10 + depth)
    integer = x_type != "f32"
    storage, wide = ("i8", "i32") if integer else ("f32", "f32")
    if not integer:
        w, bias = rng.standard_normal((n, depth)), rng.standard_normal(n)
    elif w_type == "ui8":  # unsigned data, stored as the i8 bytes it is
        w, bias = (
            rng.integers(0, 256, (n, depth)).astype(np.uint8).view(np.int8),
            rng.integers(-999, 999, n),
        )
    else:
        w, bias = rng.integers(-128, 128, (n, depth)), rng.integers(-999, 999, n)
    narrow = out in ("i8", "ui8")
    out_storage = "i8" if narrow else wide
    out_shape = f"{n}x{m}" if init == "transposed" else f"{m}x{n}"
    roles = [
        "lhs",
        "rhs",
        *(["bias"] if init == "bias" else []),
        *(["acc"] if init == "acc" else []),
        "out",
    ]
    unsigned = [
        roles.index(role)
        for role, t in (("lhs", x_type), ("rhs", w_type), ("out", out))
        if t == "ui8"
    ]
    operands = "%x, %w" + {"bias": " bias %b", "acc": " acc %out"}.get(init, "")
    types = f"memref<{m}x{depth}x{storage}>, memref<{n}x{depth}x{storage}>" + {
        "bias": f" bias memref<{n}x{wide}>",
        "acc": f" acc memref<{out_shape}x{out_storage}>",
    }.get(init, "")
    props = ["transpose_rhs", *(["transpose_out"] if init == "transposed" else [])]
    if narrow:
        muls = ", ".join(str(v) for v in rng.integers(1, 50, n))
        props.append(f"requant = #tinyattn.requant<mul = [{muls}], add = 3, shift = 12>")
    if unsigned:
        props.insert(0, f"unsigned = array<i64: {', '.join(map(str, unsigned))}>")
    return f"""
"memref.global"() <{{sym_name = "w", type = memref<{n}x{depth}x{storage}>, initial_value = dense<{_text(w)}> : tensor<{n}x{depth}x{storage}>, sym_visibility = "private", constant, alignment = 16 : i64}}> : () -> ()
"memref.global"() <{{sym_name = "b", type = memref<{n}x{wide}>, initial_value = dense<{_text(bias)}> : tensor<{n}x{wide}>, sym_visibility = "private", constant, alignment = 16 : i64}}> : () -> ()
func.func @main(%x: memref<{m}x{depth}x{storage}>, %out: memref<{out_shape}x{out_storage}>) attributes {{tinyattn.tensor_signature = (tensor<{m}x{depth}x{x_type}>) -> tensor<{out_shape}x{out if narrow else wide}>}} {{
  %w = memref.get_global @w : memref<{n}x{depth}x{storage}>
  %b = memref.get_global @b : memref<{n}x{wide}>
  kernel.matmul {operands} into %out {{{", ".join(props)}}} : {types} into memref<{out_shape}x{out_storage}>
  func.return
}}
"""


CASES = [
    *itertools.product(
        # depths: words with a remainder of 1 (9, 13), none (8, 4), a last pair alone (2) or
        # after words (30, whose 70 columns span two panels of the Cortex-M kernel's widened
        # rhs); 345 is too deep for its stack scratch (scalar blocks)
        [(5, 7, 9), (4, 6, 8), (1, 3, 4), (3, 1, 13), (6, 5, 2), (3, 70, 30), (2, 3, 345)],
        ["i8", "ui8"],
        ["i8", "ui8"],
        ["zero", "bias", "transposed"],
        ["i32", "i8", "ui8"],
    ),
    ((5, 7, 9), "i8", "i8", "acc", "i32"),
    ((5, 7, 9), "f32", "f32", "bias", "f32"),
    ((4, 3, 10), "f32", "f32", "transposed", "f32"),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("dims", "x_type", "w_type", "init", "out"), CASES)
def test_kernel_matches_the_op(target, dims, x_type, w_type, init, out):
    text = _module(*dims, x_type, w_type, init, out)
    m, _, depth = dims
    rng = np.random.default_rng(1)
    if x_type == "f32":
        x = rng.standard_normal((m, depth)).astype(np.float32)
    else:
        dtype = np.uint8 if x_type == "ui8" else np.int8
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, (m, depth), dtype, endpoint=True)
    expected = evaluate(parse_module(text, "kernel.mlir"), [x])[0]
    lowered = parse_module(text, "kernel.mlir")
    ConvertKernelsToLoops(target=target).apply(Context(), lowered)
    got = evaluate(lowered, [x])[0]
    if x_type == "f32":
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, expected)


ISOFTMAX = """
func.func @main(%x: memref<4x{cols}xi8>, %out: memref<4x{cols}xi8>) attributes {{tinyattn.tensor_signature = (tensor<4x{cols}x{x_type}>) -> tensor<4x{cols}xui8>}} {{
  %row = memref.alloc() : memref<{cols}xi32>
  kernel.softmax %x scratch %row into %out {{unsigned = array<i64: {unsigned}>, isoftmax = #tinyattn.isoftmax<coeff_a = 1, coeff_b = 173, coeff_c = 15599, log2 = 127, n_levels = 256>}} : memref<4x{cols}xi8> scratch memref<{cols}xi32> into memref<4x{cols}xi8>
  memref.dealloc %row : memref<{cols}xi32>
  func.return
}}
"""


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("cols", [3, 4, 11])
@pytest.mark.parametrize("x_type", ["i8", "ui8"])
def test_integer_softmax_kernel_matches_the_op(target, cols, x_type):
    """Row maxima four lanes at a time (Cortex-M) and the rest: rows holding the type's
    extremes, a maximum in the last (remainder) column, and random rows."""
    unsigned = "0, 2" if x_type == "ui8" else "2"
    text = ISOFTMAX.format(cols=cols, x_type=x_type, unsigned=unsigned)
    dtype = np.uint8 if x_type == "ui8" else np.int8
    info = np.iinfo(dtype)
    rng = np.random.default_rng(cols)
    x = rng.integers(info.min, info.max, (4, cols), dtype, endpoint=True)
    x[0] = info.min
    x[1, :] = info.min
    x[1, -1] = info.max
    expected = evaluate(parse_module(text, "softmax.mlir"), [x])[0]
    lowered = parse_module(text, "softmax.mlir")
    ConvertKernelsToLoops(target=target).apply(Context(), lowered)
    np.testing.assert_array_equal(evaluate(lowered, [x])[0], expected)


SOFTMAX = """
func.func @main(%x: tensor<6x40xf32>) -> tensor<6x40xf32> {
  %s = tinyattn.softmax %x : (tensor<6x40xf32>) -> tensor<6x40xf32>
  func.return %s : tensor<6x40xf32>
}
"""


@pytest.mark.parametrize("target", [target_param("host"), target_param("cortex-m4")])
def test_softmax_exponential_over_its_whole_range(target, build_dir):
    """`exp_nonpositive` against numpy: score spreads from 1e-3 to 300 (terms down to e^-300,
    below the smallest float, and rows dominated by one score), on the host and the M4."""
    rng = np.random.default_rng(4)
    spreads = np.array([1e-3, 1.0, 10.0, 80.0, 150.0, 300.0], np.float32)[:, None]
    x = (rng.uniform(-1, 0, (6, 40)) * spreads).astype(np.float32)
    report = run(parse_module(SOFTMAX, "softmax.mlir"), target, inputs=[x], build_dir=build_dir)
    assert report.match, report.format()
