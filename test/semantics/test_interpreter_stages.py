"""Every stage of the compile pipeline means what the tensor-level module means: the interpreter
runs the module after tiling, at kernel level, through its loop nests, with planned arenas and
with runtime DMA calls, and each gives the outputs of the tensor-level module after fuse-weights
(int8 bit for bit, f32 to rounding). The bundled models skip the loop nests, which interpret
slowly; small models go through all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, func, math, memref, scf
from xdsl.dialects.builtin import Builtin, ModuleOp, TensorType, f32, i32
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.parser import Parser
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import InterpretationError

import tinyattn.models
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import from_numpy
from tinyattn.frontend import quantize as q
from tinyattn.frontend.onnx_import import import_model
from tinyattn.lowering.convert_kernels_to_loops import ConvertKernelsToLoops
from tinyattn.lowering.convert_tinyattn_to_kernels import ConvertTinyattnToKernels
from tinyattn.lowering.lower_dma import LowerDMA
from tinyattn.models.generate import calibration_set, spec_named
from tinyattn.passes.depth_first_tile import DepthFirstTile
from tinyattn.passes.fuse_weights import FuseWeights
from tinyattn.passes.layerwise_tile import LayerwiseTile
from tinyattn.passes.plan_memory import PlanMemory
from tinyattn.semantics.interpreter import evaluate

TILINGS = {"depth-first": DepthFirstTile, "layerwise": LayerwiseTile}
CALIBRATION = 8
# Several row blocks per attention (S = 66, 81, 32, 64).
ROWS = {"ecg": 22, "eeg": 27, "radar": 8, "cct": 16}


def check_stages(
    module: ModuleOp, inputs: Sequence[np.ndarray], fuse: str, tile: ModulePass, loops: bool
) -> None:
    """The module after fuse-weights, then after each later pass, evaluates to the same."""
    module = module.clone()
    FuseWeights(mode=fuse).apply(Context(), module)
    expected = evaluate(module, inputs)
    loop_nests = [ConvertKernelsToLoops()] if loops else []
    passes = [tile, ConvertTinyattnToKernels(), *loop_nests, PlanMemory(), LowerDMA()]
    for stage in passes:
        stage.apply(Context(), module)
        outputs = evaluate(module, inputs)
        for got, want in zip(outputs, expected, strict=True):
            message = f"after {stage.name}"
            assert (got.dtype, got.shape) == (want.dtype, want.shape), message
            if np.issubdtype(want.dtype, np.integer):
                np.testing.assert_array_equal(got, want, err_msg=message)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=message)


# ---------------------------------------------------------------------------------------------
# The bundled models
# ---------------------------------------------------------------------------------------------


@cache
def bundled(model: str, precision: str) -> tuple[ModuleOp, list[np.ndarray]]:
    """A bundled model (f32, or quantized on a prefix of its calibration set) and an input."""
    source = Path(tinyattn.models.__file__).parent / f"{model}.onnx"
    samples = [[x] for x in calibration_set(spec_named(model), CALIBRATION)["x"]]
    module = import_model(source)
    if precision == "f32":
        return module, samples[-1]
    module = q.quantize(module, samples)
    return module, q.quantize_inputs(q.entry_function(module), samples[-1])


@pytest.mark.parametrize("dma", [True, False], ids=["dma", "in-place"])
@pytest.mark.parametrize("fuse", ["never", "always"])
@pytest.mark.parametrize("schedule", TILINGS)
@pytest.mark.parametrize("precision", ["f32", "int8"])
@pytest.mark.parametrize("model", sorted(ROWS))
def test_bundled_model_means_the_same_at_every_stage(model, precision, schedule, fuse, dma):
    module, inputs = bundled(model, precision)
    tile = TILINGS[schedule](l1_bytes=128 * 1024, rows=ROWS[model], dma=dma)
    check_stages(module, inputs, fuse, tile, loops=False)


# ---------------------------------------------------------------------------------------------
# Small models, through the loop nests
# ---------------------------------------------------------------------------------------------

S, E, P, H = 4, 8, 4, 2
Emit = Callable[[Operation], SSAValue]


def tensor_module(
    arg_types: Sequence[Attribute], build: Callable[[Emit, Sequence[SSAValue]], Sequence[SSAValue]]
) -> ModuleOp:
    """`func.func @main` over `arg_types` whose body `build` emits, returning what it returns."""
    block = Block(arg_types=arg_types)

    def emit(op: Operation) -> SSAValue:
        block.add_op(op)
        return op.results[0]

    results = build(emit, block.args)
    block.add_op(func.ReturnOp(*results))
    types = (list(arg_types), [value.type for value in results])
    module = ModuleOp([func.FuncOp("main", types, Region(block))])
    module.verify()
    return module


def encoder() -> ModuleOp:
    """A tiny f32 encoder block with two heads: attention (S=4, E=8, P=4, H=2) and a residual
    add, layer norms, a GELU feed-forward; a softmax pooled over the sequence into a linear;
    a relu averaged over the last axis."""
    rng = np.random.default_rng(0)

    def build(emit: Emit, args: Sequence[SSAValue]) -> list[SSAValue]:
        def const(*shape: int) -> SSAValue:
            values = (0.5 * rng.standard_normal(shape)).astype(np.float32)
            return emit(arith.ConstantOp(from_numpy(values)))

        (x,) = args
        projections = [(const(H, E, P), const(H, P)) for _ in "qkv"]
        output = (const(H, P, E), const(E))
        attended = emit(ta.MHSAOp(x, *projections, output, num_heads=H, scale=P**-0.5))
        norm = emit(ta.LayerNormOp(emit(ta.AddOp(x, attended)), const(E), const(E), epsilon=1e-5))
        hidden = emit(ta.GeluOp(emit(ta.LinearOp(norm, const(E, 2 * E), const(2 * E)))))
        residual = emit(ta.AddOp(norm, emit(ta.LinearOp(hidden, const(2 * E, E), const(E)))))
        out = emit(ta.LayerNormOp(residual, const(E), const(E), epsilon=1e-5))
        pooled = emit(ta.MeanOp(emit(ta.SoftmaxOp(out)), axis=0))
        head = emit(ta.LinearOp(pooled, const(E, 3), const(3)))
        return [head, emit(ta.MeanOp(emit(ta.ReluOp(out)), axis=1))]

    return tensor_module([TensorType(f32, [S, E])], build)


def integer_edges() -> ModuleOp:
    """Integer ops the quantizer does not emit: per-channel requants of i32 to i8 and ui8 (one
    whose product wraps), the per-channel mean over the last axis (a channel per row) and over
    the first, the i32 mean rounding half up, an add of i8 narrowed to ui8, a relu and an i32
    add that wraps."""
    rng = np.random.default_rng(1)

    def rq(channels: int, scale: float, offset: float = 0.0, shift: int = 16) -> ta.RequantAttr:
        """About `x * scale + offset`, with jittered per-channel values."""
        muls = np.round(scale * 2**shift * rng.uniform(0.8, 1.2, channels))
        adds = np.round((offset + rng.uniform(-0.5, 0.5, channels)) * 2**shift)
        return ta.RequantAttr(muls.astype(int).tolist(), adds.astype(int).tolist(), shift)

    def build(emit: Emit, args: Sequence[SSAValue]) -> list[SSAValue]:
        u, w = args
        weight = emit(arith.ConstantOp(from_numpy(rng.integers(-128, 128, (6, 6), np.int8))))
        wide = emit(ta.LinearOp(u, weight, result_type=TensorType(i32, [S, 6])))
        narrowed = emit(ta.RequantOp(wide, rq(6, 60 / 26_600), ta.i8))
        unsigned = emit(ta.RequantOp(w, rq(6, 2**-24, 63, shift=25), ta.ui8))
        positive = emit(ta.ReluOp(narrowed))
        summed = TensorType(ta.ui8, [S, 6])
        return [
            emit(ta.MeanOp(unsigned, axis=1, requant=rq(S, 1 / 6, -100), element_type=ta.i8)),
            emit(ta.MeanOp(u, axis=0, requant=rq(6, 1 / S), element_type=ta.ui8)),
            emit(ta.MeanOp(narrowed, axis=0, element_type=i32)),
            emit(ta.AddOp(narrowed, positive, result_type=summed, requant=rq(1, 0.7, 60))),
            emit(ta.AddOp(w, w)),
        ]

    return tensor_module([TensorType(ta.ui8, [S, 6]), TensorType(i32, [S, 6])], build)


@cache
def small(name: str) -> tuple[ModuleOp, list[np.ndarray]]:
    """A small model and an input: the encoder in f32 or quantized, or the integer edges."""
    rng = np.random.default_rng(2)
    if name == "integer-edges":
        u = rng.integers(0, 256, (S, 6), np.uint8)
        return integer_edges(), [u, rng.integers(-(2**31), 2**31, (S, 6), np.int32)]
    samples = [[rng.standard_normal((S, E)).astype(np.float32)] for _ in range(CALIBRATION)]
    if name == "encoder-f32":
        return encoder(), samples[-1]
    module = q.quantize(encoder(), samples)
    return module, q.quantize_inputs(q.entry_function(module), samples[-1])


@pytest.mark.parametrize("dma", [True, False], ids=["dma", "in-place"])
@pytest.mark.parametrize("schedule", TILINGS)
@pytest.mark.parametrize("name", ["encoder-f32", "encoder-int8", "integer-edges"])
def test_small_model_means_the_same_through_its_loop_nests(name, schedule, dma):
    module, inputs = small(name)
    check_stages(module, inputs, "auto", TILINGS[schedule](rows=2, dma=dma), loops=True)


def test_an_op_without_semantics_is_an_interpretation_error_naming_it():
    ctx = Context()
    for dialect in (Builtin, func.Func, arith.Arith, scf.Scf, memref.MemRef, math.Math):
        ctx.load_dialect(dialect)
    module = Parser(
        ctx,
        """
        func.func @main(%x: memref<4xf32>) {
          %c0 = arith.constant 0 : index
          %c1 = arith.constant 1 : index
          %c4 = arith.constant 4 : index
          scf.for %i = %c0 to %c4 step %c1 {
            %v = memref.load %x[%i] : memref<4xf32>
            %t = math.tanh %v : f32
            memref.store %t, %x[%i] : memref<4xf32>
          }
          func.return
        }
        """,
    ).parse_module()
    with pytest.raises(InterpretationError, match="math.tanh"):
        evaluate(module, [np.zeros(4, np.float32)])
