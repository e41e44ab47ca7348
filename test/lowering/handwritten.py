"""Hand-written memref-level models in the LoweredModel contract, with their numpy meaning, so
the upstream pipeline, harness and driver are tested independently of the tinyattn lowering;
and the skip marks for tests that need the LLVM/QEMU tools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from requires import needs_tools, target_param
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf
from xdsl.parser import Parser

from tinyattn.backend.targets import TARGETS
from tinyattn.driver.lowered_model import ArenaSpec, LoweredModel, TensorSpec

RNG = np.random.default_rng(1234)
W_F32 = RNG.uniform(-0.5, 0.5, (8, 5)).astype(np.float32)
B_F32 = RNG.uniform(-0.5, 0.5, 5).astype(np.float32)
W_I8 = RNG.integers(-128, 128, (8, 5), dtype=np.int8)
B_I32 = RNG.integers(-2000, 2000, 5, dtype=np.int32)
MUL, SHIFT = 77, 10  # requantization of the int8 model: (acc * MUL) >> SHIFT


def _dense(array: np.ndarray, element: str) -> str:
    return f"dense<{np.array2string(array, separator=', ', threshold=10**6, floatmode='unique')}> : tensor<{'x'.join(map(str, array.shape))}x{element}>"


def _global(name: str, array: np.ndarray, element: str) -> str:
    shape = "x".join(map(str, array.shape))
    return (
        f'"memref.global"() <{{sym_name = "{name}", sym_visibility = "private", '
        f"type = memref<{shape}x{element}>, initial_value = {_dense(array, element)}, constant}}> "
        ": () -> ()"
    )


# y = softmax(x @ W + b) over rows: the accumulators live in the L1 arena; exp comes from the
# polynomial approximation (on Cortex-M4 it needs the runtime's floorf).
LINEAR_SOFTMAX = f"""
{_global("w", W_F32, "f32")}
{_global("b", B_F32, "f32")}
func.func @linear_softmax(%x: memref<4x8xf32>, %y: memref<4x5xf32>, %arena: memref<ARENA_BYTESxi8>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -3.0e38 : f32
  %w = memref.get_global @w : memref<8x5xf32>
  %b = memref.get_global @b : memref<5xf32>
  %shift = arith.constant SHIFT : index
  %acc = memref.view %arena[%shift][] : memref<ARENA_BYTESxi8> to memref<4x5xf32>
  scf.for %i = %c0 to %c4 step %c1 {{
    %max = scf.for %k = %c0 to %c5 step %c1 iter_args(%m = %ninf) -> (f32) {{
      %bias = memref.load %b[%k] : memref<5xf32>
      %dot = scf.for %j = %c0 to %c8 step %c1 iter_args(%s = %bias) -> (f32) {{
        %xv = memref.load %x[%i, %j] : memref<4x8xf32>
        %wv = memref.load %w[%j, %k] : memref<8x5xf32>
        %p = arith.mulf %xv, %wv : f32
        %t = arith.addf %s, %p : f32
        scf.yield %t : f32
      }}
      memref.store %dot, %acc[%i, %k] : memref<4x5xf32>
      %m2 = arith.maximumf %m, %dot : f32
      scf.yield %m2 : f32
    }}
    %sum = scf.for %k = %c0 to %c5 step %c1 iter_args(%s = %zero) -> (f32) {{
      %v = memref.load %acc[%i, %k] : memref<4x5xf32>
      %d = arith.subf %v, %max : f32
      %e = math.exp %d : f32
      memref.store %e, %y[%i, %k] : memref<4x5xf32>
      %t = arith.addf %s, %e : f32
      scf.yield %t : f32
    }}
    scf.for %k = %c0 to %c5 step %c1 {{
      %e = memref.load %y[%i, %k] : memref<4x5xf32>
      %q = arith.divf %e, %sum : f32
      memref.store %q, %y[%i, %k] : memref<4x5xf32>
    }}
  }}
  func.return
}}
"""

# The same model at tensor level, as tinyattn-run reads it from a .mlir file.
TENSOR_SOFTMAX = f"""
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x5xf32> {{
  %w = arith.constant {_dense(W_F32, "f32")}
  %b = arith.constant {_dense(B_F32, "f32")}
  %h = tinyattn.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x5xf32>, tensor<5xf32>) -> tensor<4x5xf32>
  %s = tinyattn.softmax %h : (tensor<4x5xf32>) -> tensor<4x5xf32>
  func.return %s : tensor<4x5xf32>
}}
"""

# y = clamp(((x @ W + b) * MUL) >> SHIFT) as int8: x is first copied into the L2 arena with the
# runtime's DMA (32 bytes), the i32 accumulators live in the L1 arena.
LINEAR_I8 = f"""
{_global("w8", W_I8, "i8")}
{_global("b32", B_I32, "i32")}
func.func private @ta_dma_start_1d(memref<4x8xi8>, memref<4x8xi8>, index) -> i32
func.func private @ta_dma_wait(i32)
func.func @linear_i8(%x: memref<4x8xi8>, %y: memref<4x5xi8>, %l1: memref<80xi8>, %l2: memref<32xi8>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %c8 = arith.constant 8 : index
  %c32 = arith.constant 32 : index
  %mul = arith.constant {MUL} : i32
  %shift = arith.constant {SHIFT} : i32
  %lo = arith.constant -128 : i32
  %hi = arith.constant 127 : i32
  %w = memref.get_global @w8 : memref<8x5xi8>
  %b = memref.get_global @b32 : memref<5xi32>
  %xs = memref.view %l2[%c0][] : memref<32xi8> to memref<4x8xi8>
  %h = func.call @ta_dma_start_1d(%xs, %x, %c32) : (memref<4x8xi8>, memref<4x8xi8>, index) -> i32
  func.call @ta_dma_wait(%h) : (i32) -> ()
  %acc = memref.view %l1[%c0][] : memref<80xi8> to memref<4x5xi32>
  scf.for %i = %c0 to %c4 step %c1 {{
    scf.for %k = %c0 to %c5 step %c1 {{
      %bias = memref.load %b[%k] : memref<5xi32>
      memref.store %bias, %acc[%i, %k] : memref<4x5xi32>
      scf.for %j = %c0 to %c8 step %c1 {{
        %xv = memref.load %xs[%i, %j] : memref<4x8xi8>
        %wv = memref.load %w[%j, %k] : memref<8x5xi8>
        %xw = arith.extsi %xv : i8 to i32
        %ww = arith.extsi %wv : i8 to i32
        %p = arith.muli %xw, %ww : i32
        %s = memref.load %acc[%i, %k] : memref<4x5xi32>
        %t = arith.addi %s, %p : i32
        memref.store %t, %acc[%i, %k] : memref<4x5xi32>
      }}
      %a = memref.load %acc[%i, %k] : memref<4x5xi32>
      %m = arith.muli %a, %mul : i32
      %q = arith.shrsi %m, %shift : i32
      %q1 = arith.maxsi %q, %lo : i32
      %q2 = arith.minsi %q1, %hi : i32
      %r = arith.trunci %q2 : i32 to i8
      memref.store %r, %y[%i, %k] : memref<4x5xi8>
    }}
  }}
  func.return
}}
"""


def parse(text: str) -> builtin.ModuleOp:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, scf.Scf, memref.MemRef, math.Math):
        ctx.load_dialect(dialect)
    module = Parser(ctx, text).parse_module()
    module.verify()
    return module


@dataclass(frozen=True)
class Handwritten:
    """A LoweredModel and the numpy function it computes."""

    lowered: LoweredModel
    reference: Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


def softmax_reference(xs: Sequence[np.ndarray]) -> tuple[np.ndarray]:
    h = xs[0].astype(np.float64) @ W_F32 + B_F32
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return ((e / e.sum(axis=1, keepdims=True)).astype(np.float32),)


def linear_softmax(arena: int = 80, shift: int = 0) -> Handwritten:
    """The f32 model. Its code uses 80 bytes of arena from byte `shift`; `arena` declares another
    size (in the spec and the signature), to provoke overruns and overflows."""
    source = LINEAR_SOFTMAX.replace("ARENA_BYTES", str(arena)).replace("SHIFT", str(shift))
    lowered = LoweredModel(
        module=parse(source),
        entry="linear_softmax",
        inputs=(TensorSpec("x", (4, 8), np.dtype(np.float32)),),
        outputs=(TensorSpec("y", (4, 5), np.dtype(np.float32)),),
        arenas=(ArenaSpec("L1", arena),),
        params_bytes=W_F32.nbytes + B_F32.nbytes,
        macs=4 * 8 * 5,
    )
    return Handwritten(lowered, softmax_reference)


def linear_i8() -> Handwritten:
    def reference(xs):
        acc = xs[0].astype(np.int32) @ W_I8.astype(np.int32) + B_I32
        return (np.clip((acc * MUL) >> SHIFT, -128, 127).astype(np.int8),)

    lowered = LoweredModel(
        module=parse(LINEAR_I8),
        entry="linear_i8",
        inputs=(TensorSpec("x", (4, 8), np.dtype(np.int8)),),
        outputs=(TensorSpec("y", (4, 5), np.dtype(np.int8)),),
        arenas=(ArenaSpec("L1", 80), ArenaSpec("L2", 32)),
        params_bytes=W_I8.nbytes + B_I32.nbytes,
        macs=4 * 8 * 5,
    )
    return Handwritten(lowered, reference)


PIPELINE_TOOLS = ("mlir-opt-22", "mlir-translate-22", "opt-22", "llc-22", "llvm-size-22")


def runnable(name: str):
    """A pytest param for a runnable target, skipped when its tools are missing."""
    return target_param(name, *PIPELINE_TOOLS)


RUNNABLE = [runnable(t.name) for t in TARGETS.values() if t.runnable]
needs_pipeline = needs_tools(*PIPELINE_TOOLS)
