"""Run a module of any stage of the compile pipeline on numpy inputs with xDSL's interpreter.

This is the golden model that compiled code is checked against, and the check that every pass
keeps the meaning of the module: the tensor level, the tiled schedule, kernel ops on memrefs,
their loop nests, planned arenas and runtime DMA calls all evaluate to the same outputs (bit for
bit in integers). Tensors are numpy arrays holding true values in the dtype of their element type
(`ui8` -> uint8). What ops compute is here (tinyattn and kernel ops through the numpy reference,
scalar arith and math); where memrefs live is `memref_interpreter`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from math import erf

import numpy as np
from xdsl.dialects import arith, func, llvm, math
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
)
from xdsl.interpreter import Interpreter, InterpreterFunctions, PythonValues, impl, register_impls
from xdsl.interpreters.arith import ArithFunctions
from xdsl.interpreters.func import FuncFunctions
from xdsl.interpreters.scf import ScfFunctions
from xdsl.ir import Attribute, Operation
from xdsl.utils.comparisons import to_signed, to_unsigned
from xdsl.utils.exceptions import InterpretationError

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import arena_bytes, tensor_signature
from tinyattn.dialects.builder import storage_type
from tinyattn.dialects.dense import numpy_dtype, to_numpy
from tinyattn.semantics import reference as ref
from tinyattn.semantics.memref_interpreter import Memory, MemrefFunctions, scalar


def requant_of(attr: ta.RequantAttr | None) -> ref.Requant | None:
    if attr is None:
        return None
    return ref.Requant(tuple(attr.mul.get_values()), tuple(attr.add.get_values()), attr.shift.data)


def isoftmax_of(attr: ta.ISoftmaxAttr | None) -> ref.ISoftmax | None:
    if attr is None:
        return None
    return ref.ISoftmax(*(param.data for param in attr.parameters))


def igelu_of(attr: ta.IGeluAttr | None) -> ref.IGelu | None:
    return None if attr is None else ref.IGelu(attr.b.data, attr.one.data)


def ilayernorm_of(
    attr: ta.ILayerNormAttr | ta.QuantLibLayerNormAttr | None,
) -> ref.ILayerNorm | ref.QuantLibLayerNorm | None:
    if isinstance(attr, ta.QuantLibLayerNormAttr):
        return ref.QuantLibLayerNorm(attr.shift.data)
    return None if attr is None else ref.ILayerNorm(attr.shift.data, attr.eps.data)


def _result_dtype(op) -> np.dtype:
    typ = op.results[0].type
    assert isinstance(typ, TensorType)
    return numpy_dtype(typ.get_element_type())


def attention_quant(op: ta.MHSAOp | ta.FusedMHSAOp) -> ref.AttentionQuant | None:
    """The reference's integer stages of an attention op (None for f32)."""
    if not op.is_integer():
        return None
    props = op.properties
    return ref.AttentionQuant(
        v=requant_of(op.v_requant),
        score=requant_of(op.score_requant),
        context=requant_of(op.context_requant),
        out=requant_of(op.out_requant),
        q=requant_of(props.get("q_requant")),
        k=requant_of(props.get("k_requant")),
        qk=requant_of(props.get("qk_requant")),
        isoftmax=isoftmax_of(op.isoftmax),
    )


@register_impls
class TinyattnFunctions(InterpreterFunctions):
    """The tinyattn ops on tensors: the reference's numpy functions."""

    @impl(ta.MHSAOp)
    def run_mhsa(self, interpreter: Interpreter, op: ta.MHSAOp, args: PythonValues):
        scale = None if op.scale is None else op.scale.value.data
        return (
            ref.mhsa(
                *args,
                scale=scale,
                softmax_scores=op.normalization.data == ta.SOFTMAX,
                quant=attention_quant(op),
                out_dtype=_result_dtype(op),
            ),
        )

    @impl(ta.FusedMHSAOp)
    def run_fused_mhsa(self, interpreter: Interpreter, op: ta.FusedMHSAOp, args: PythonValues):
        return (
            ref.fused_mhsa(
                *args,
                softmax_scores=op.normalization.data == ta.SOFTMAX,
                quant=attention_quant(op),
                out_dtype=_result_dtype(op),
            ),
        )

    @impl(ta.LinearOp)
    def run_linear(self, interpreter: Interpreter, op: ta.LinearOp, args: PythonValues):
        bias = args[2] if len(args) > 2 else None
        return (ref.linear(args[0], args[1], bias, requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.AddOp)
    def run_add(self, interpreter: Interpreter, op: ta.AddOp, args: PythonValues):
        return (ref.add(args[0], args[1], requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.MatMulOp)
    def run_matmul(self, interpreter: Interpreter, op: ta.MatMulOp, args: PythonValues):
        return (ref.matmul(*args, requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.MulAddOp)
    def run_muladd(self, interpreter: Interpreter, op: ta.MulAddOp, args: PythonValues):
        return (ref.muladd(*args, requant_of(op.requant), out_dtype=_result_dtype(op)),)

    @impl(ta.MapOp)
    def run_map(self, interpreter: Interpreter, op: ta.MapOp, args: PythonValues):
        shape = op.result.type.get_shape()  # type: ignore[attr-defined]
        return (np.broadcast_to(ref.float_map(op.fn.data, *args), shape).copy(),)

    @impl(ta.RequantOp)
    def run_requant(self, interpreter: Interpreter, op: ta.RequantOp, args: PythonValues):
        return (requant_of(op.requant)(args[0], _result_dtype(op)),)

    @impl(ta.LayerNormOp)
    def run_layernorm(self, interpreter: Interpreter, op: ta.LayerNormOp, args: PythonValues):
        return (
            ref.layernorm(
                *args,
                op.epsilon.value.data,
                ilayernorm_of(op.ilayernorm),
                requant_of(op.requant),
                _result_dtype(op),
            ),
        )

    @impl(ta.RMSNormOp)
    def run_rmsnorm(self, interpreter: Interpreter, op: ta.RMSNormOp, args: PythonValues):
        shift, requant = op.shift.value.data, requant_of(op.requant)
        return (ref.rmsnorm(args[0], args[1], shift, requant, _result_dtype(op)),)

    @impl(ta.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: ta.GeluOp, args: PythonValues):
        return (ref.gelu(args[0], igelu_of(op.igelu), requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.ReluOp)
    def run_relu(self, interpreter: Interpreter, op: ta.ReluOp, args: PythonValues):
        return (ref.relu(args[0]),)

    @impl(ta.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: ta.SoftmaxOp, args: PythonValues):
        return (ref.softmax(args[0], isoftmax_of(op.isoftmax), op.itamax is not None),)

    @impl(ta.MeanOp)
    def run_mean(self, interpreter: Interpreter, op: ta.MeanOp, args: PythonValues):
        result = op.result.type
        assert isinstance(result, TensorType)
        keepdims = len(result.get_shape()) == len(args[0].shape)
        axis = op.axis.value.data
        return (ref.mean(args[0], axis, keepdims, requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.LookupOp)
    def run_lookup(self, interpreter: Interpreter, op: ta.LookupOp, args: PythonValues):
        return (ref.lookup(args[0], args[1]).astype(_result_dtype(op)),)

    @impl(ta.ConvOp)
    def run_conv(self, interpreter: Interpreter, op: ta.ConvOp, args: PythonValues):
        _, strides, pads = op.window()
        bias = args[2] if len(args) > 2 else None
        return (
            ref.conv(
                args[0], args[1], bias, strides, pads, op.groups.value.data,
                requant_of(op.requant), _result_dtype(op),
            ),
        )  # fmt: skip

    @impl(ta.MaxPoolOp)
    def run_maxpool(self, interpreter: Interpreter, op: ta.MaxPoolOp, args: PythonValues):
        return (ref.maxpool(args[0], *op.window()),)

    @impl(ta.TransposeOp)
    def run_transpose(self, interpreter: Interpreter, op: ta.TransposeOp, args: PythonValues):
        return (np.ascontiguousarray(np.transpose(args[0], op.permutation())),)

    @impl(ta.ConcatOp)
    def run_concat(self, interpreter: Interpreter, op: ta.ConcatOp, args: PythonValues):
        return (np.concatenate(args, axis=op.axis.value.data),)

    @impl(ta.SliceOp)
    def run_slice(self, interpreter: Interpreter, op: ta.SliceOp, args: PythonValues):
        sizes = op.result.type.get_shape()  # type: ignore[attr-defined]
        starts, steps = op.starts.get_values(), op.steps.get_values()
        window = tuple(
            slice(start, start + size * step, step)
            for start, size, step in zip(starts, sizes, steps, strict=True)
        )
        return (np.ascontiguousarray(args[0][window]),)

    @impl(ta.ReshapeOp)
    def run_reshape(self, interpreter: Interpreter, op: ta.ReshapeOp, args: PythonValues):
        result = op.result.type
        assert isinstance(result, TensorType)
        return (np.reshape(args[0], tuple(result.get_shape())),)


# ---------------------------------------------------------------------------------------------
# Kernel ops: their operands are memref views; integer results are truncated to `out` as the
# loop nests' stores do.
# ---------------------------------------------------------------------------------------------


def _operand(op: kernel.KernelOp, args: PythonValues, index: int) -> np.ndarray:
    """Operand `index` of a kernel op with its true values (unsigned 8-bit data as uint8)."""
    return args[index].view(np.uint8) if op.is_unsigned(index) else args[index]


def _narrow_dtype(op: kernel.KernelOp, args: PythonValues) -> np.dtype:
    """The dtype an integer result is requantized to: `out`'s, uint8 if it holds unsigned data."""
    return np.dtype(np.uint8) if op.is_unsigned(-1) else args[-1].dtype


def _store(args: PythonValues, values: np.ndarray) -> PythonValues:
    """Write `values` into `out`, truncated to its element type as a store is."""
    out = args[-1]
    out[...] = np.asarray(values).astype(out.dtype)
    return ()


def _scaled_product(lhs: np.ndarray, rhs: np.ndarray, init: np.ndarray | None, scale: float):
    """`scale * (init + lhs · rhs)` in f64, rounded to f32 once (`ref.linear` has no scale)."""
    total = np.asarray(lhs, np.float64) @ np.asarray(rhs, np.float64)
    if init is not None:
        total = total + init
    return (total * scale).astype(np.float32)


def _mean_requant(requant: ref.Requant, outer: int, inner: int) -> ref.Requant:
    """`requant` with its values picked for each element of a flattened [outer, inner] mean, on
    the channel `loop_kernels.mean_axis` gives it: the index along the result's last axis (the
    column, or the row where the mean is over the last axis), modulo the channel count."""
    index = np.arange(inner)[None, :] if inner > 1 else np.arange(outer)[:, None]
    index = np.broadcast_to(index, (outer, inner)).ravel()

    def pick(values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(np.asarray(values)[index % len(values)].tolist())

    return ref.Requant(pick(requant.mul), pick(requant.add), requant.shift)


_MAPS: dict[str, Callable[..., np.ndarray]] = {
    "copy": lambda op, x: x,
    "add": lambda op, a, b: ref.add(a, b),
    "muladd": lambda op, x, m, a: ref.muladd(x, m, a, out_dtype=np.int32),
    **{
        fn: partial(lambda fn, op, *xs: ref.float_map(fn, *xs), fn)
        for fn in (*ta.MAP_UNARY, *ta.MAP_BINARY)
        if fn != "add"
    },
    "relu": lambda op, x: ref.relu(x),
    "gelu": lambda op, x: ref.gelu(x, igelu_of(op.igelu)),
}
"""`kernel.map`'s functions before the requant epilogue (integers: the i32 result)."""


@register_impls
class KernelFunctions(InterpreterFunctions):
    """The kernel ops, vectorised: the reference's math on the tiles, with the loop nests'
    integer semantics (i32 wrap, per-column requant, unsigned views)."""

    @impl(kernel.MatmulOp)
    def run_matmul(self, interpreter: Interpreter, op: kernel.MatmulOp, args: PythonValues):
        lhs, rhs = _operand(op, args, 0), _operand(op, args, 1)
        rhs = rhs.T if op.transpose_rhs is not None else rhs
        transposed = op.transpose_out is not None
        init = args[2] if len(args) == 4 else None  # bias [N] or partial sums (out's layout)
        if init is not None and transposed and op.acc is not None:
            init = init.T
        if op.scale is not None:
            product = _scaled_product(lhs, rhs, init, op.scale.value.data)
        else:
            product = ref.linear(lhs, rhs, init, requant_of(op.requant), _narrow_dtype(op, args))
        return _store(args, product.T if transposed else product)

    @impl(kernel.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: kernel.SoftmaxOp, args: PythonValues):
        x, ita = _operand(op, args, 0), op.itamax is not None
        return _store(args, ref.softmax(x, isoftmax_of(op.isoftmax), ita))

    @impl(kernel.LayerNormOp)
    def run_layernorm(self, interpreter: Interpreter, op: kernel.LayerNormOp, args: PythonValues):
        x, gamma, beta = _operand(op, args, 0), args[1], args[2]
        epsilon = 0.0 if op.epsilon is None else op.epsilon.value.data
        integer = ilayernorm_of(op.ilayernorm), requant_of(op.requant), _narrow_dtype(op, args)
        return _store(args, ref.layernorm(x, gamma, beta, epsilon, *integer))

    @impl(kernel.RMSNormOp)
    def run_rmsnorm(self, interpreter: Interpreter, op: kernel.RMSNormOp, args: PythonValues):
        shift, requant = op.shift.value.data, requant_of(op.requant)
        x = _operand(op, args, 0)
        return _store(args, ref.rmsnorm(x, args[1], shift, requant, _narrow_dtype(op, args)))

    @impl(kernel.MapOp)
    def run_map(self, interpreter: Interpreter, op: kernel.MapOp, args: PythonValues):
        inputs = [_operand(op, args, index) for index in range(len(args) - 1)]
        values = _MAPS[op.fn.data](op, *inputs)
        requant = requant_of(op.requant)
        return _store(args, values if requant is None else requant(values, _narrow_dtype(op, args)))

    @impl(kernel.ConvOp)
    def run_conv(self, interpreter: Interpreter, op: kernel.ConvOp, args: PythonValues):
        x = _operand(op, args, 0)
        bias = args[2] if len(args) == 4 else None
        strides, pads = op.strides.get_values(), op.pads.get_values()
        requant = requant_of(op.requant)
        values = ref.conv(
            x, args[1], bias, strides, pads, op.groups.value.data, requant, _narrow_dtype(op, args)
        )
        return _store(args, values)

    @impl(kernel.Im2ColOp)
    def run_im2col(self, interpreter: Interpreter, op: kernel.Im2ColOp, args: PythonValues):
        window = op.kernel.get_values(), op.strides.get_values(), op.pads.get_values()
        return _store(args, ref.im2col(args[0], *window))

    @impl(kernel.MaxPoolOp)
    def run_maxpool(self, interpreter: Interpreter, op: kernel.MaxPoolOp, args: PythonValues):
        window = op.kernel.get_values(), op.strides.get_values(), op.pads.get_values()
        return _store(args, ref.maxpool(_operand(op, args, 0), *window))

    @impl(kernel.LookupOp)
    def run_lookup(self, interpreter: Interpreter, op: kernel.LookupOp, args: PythonValues):
        return _store(args, ref.lookup(_operand(op, args, 0), args[1]))

    @impl(kernel.MeanOp)
    def run_mean(self, interpreter: Interpreter, op: kernel.MeanOp, args: PythonValues):
        x = _operand(op, args, 0)
        requant = requant_of(op.requant)
        if requant is None:
            return _store(args, ref.mean(x, axis=1, keepdims=False))
        outer, _, inner = x.shape
        total = ref.wrap_int32(np.asarray(x, np.int64).sum(axis=1)).ravel()
        narrowed = _mean_requant(requant, outer, inner)(total, _narrow_dtype(op, args))
        return _store(args, narrowed.reshape(outer, inner))


# ---------------------------------------------------------------------------------------------
# Scalars (the loop level): Python ints in their type's signed range, f32 as np.float32
# ---------------------------------------------------------------------------------------------


def _width(interpreter: Interpreter, typ: Attribute) -> int:
    return typ.width.data if isinstance(typ, IntegerType) else interpreter.index_bitwidth


def _unsigned(
    interpreter: Interpreter, op: Operation, args: PythonValues, fn: Callable[[int, int], int]
) -> PythonValues:
    """`fn` of two integers read as unsigned, the result wrapped to their width."""
    width = _width(interpreter, op.results[0].type)
    lhs, rhs = (to_unsigned(value, width) for value in args)
    if rhs == 0:
        raise InterpretationError(f"{op.name}: division by zero")
    return (to_signed(fn(lhs, rhs), width),)


@register_impls
class ScalarArithFunctions(ArithFunctions):
    """xDSL's arith, whose integer ops wrap to their width and whose float ops keep the
    operands' type (f32 held as np.float32 rounds as f32), with constants of every kind (dense
    tensors as arrays) and the ops the loop nests use that it lacks."""

    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp, args: PythonValues):
        value = op.value
        if isinstance(value, DenseIntOrFPElementsAttr):
            return (to_numpy(value),)
        if isinstance(value, IntegerAttr | FloatAttr):
            return (scalar(value.value.data, op.result.type),)
        raise InterpretationError(f"{op.name}: constants of {value} are not supported")

    @impl(arith.DivfOp)
    def run_divf(self, interpreter: Interpreter, op: arith.DivfOp, args: PythonValues):
        return (scalar(args[0] / args[1], op.result.type),)

    @impl(arith.MaxSIOp)
    def run_maxsi(self, interpreter: Interpreter, op: arith.MaxSIOp, args: PythonValues):
        return (max(args),)

    @impl(arith.MinSIOp)
    def run_minsi(self, interpreter: Interpreter, op: arith.MinSIOp, args: PythonValues):
        return (min(args),)

    @impl(arith.DivUIOp)
    def run_divui(self, interpreter: Interpreter, op: arith.DivUIOp, args: PythonValues):
        return _unsigned(interpreter, op, args, lambda a, b: a // b)

    @impl(arith.RemUIOp)
    def run_remui(self, interpreter: Interpreter, op: arith.RemUIOp, args: PythonValues):
        return _unsigned(interpreter, op, args, lambda a, b: a % b)

    @impl(arith.ExtSIOp)
    def run_extsi(self, interpreter: Interpreter, op: arith.ExtSIOp, args: PythonValues):
        return (to_signed(int(args[0]), _width(interpreter, op.input.type)),)

    @impl(arith.ExtUIOp)
    def run_extui(self, interpreter: Interpreter, op: arith.ExtUIOp, args: PythonValues):
        return (to_unsigned(int(args[0]), _width(interpreter, op.input.type)),)

    @impl(arith.FPToSIOp)
    def run_fptosi(self, interpreter: Interpreter, op: arith.FPToSIOp, args: PythonValues):
        return (int(np.trunc(np.float64(args[0]))),)

    @impl(arith.SIToFPOp)
    def run_sitofp(self, interpreter: Interpreter, op: arith.SIToFPOp, args: PythonValues):
        return (scalar(float(args[0]), op.result.type),)

    @impl(arith.BitcastOp)
    def run_bitcast(self, interpreter: Interpreter, op: arith.BitcastOp, args: PythonValues):
        """Between i32 and f32: the same 32 bits."""
        if isinstance(op.result.type, IntegerType):
            return (int(np.float32(args[0]).view(np.int32)),)
        return (np.int32(to_signed(to_unsigned(args[0], 32), 32)).view(np.float32),)

    @impl(arith.ShRUIOp)
    def run_shrui(self, interpreter: Interpreter, op: arith.ShRUIOp, args: PythonValues):
        width = _width(interpreter, op.result.type)
        return (to_signed(to_unsigned(args[0], width) >> args[1], width),)

    @impl(arith.TruncIOp)
    def run_trunci(self, interpreter: Interpreter, op: arith.TruncIOp, args: PythonValues):
        return (to_signed(int(args[0]), _width(interpreter, op.result.type)),)


def _halves(word: int) -> tuple[int, int]:
    """The two signed 16-bit halves (low, high) of a 32-bit word."""
    unsigned = to_unsigned(word, 32)
    return to_signed(unsigned & 0xFFFF, 16), to_signed(unsigned >> 16, 16)


def _bytes_0_2(word: int, signed: bool) -> int:
    """Bytes 0 and 2 of a word, each widened to 16 bits (`SXTB16` / `UXTB16`)."""
    unsigned = to_unsigned(word, 32)
    low, high = unsigned & 0xFF, (unsigned >> 16) & 0xFF
    if signed:
        low, high = to_signed(low, 8) & 0xFFFF, to_signed(high, 8) & 0xFFFF
    return to_signed(low | high << 16, 32)


_ARM_INTRINSICS: dict[str, Callable[..., int]] = {
    "llvm.arm.sxtb16": lambda x: _bytes_0_2(x, signed=True),
    "llvm.arm.uxtb16": lambda x: _bytes_0_2(x, signed=False),
    # SMLAD: acc + a.lo*b.lo + a.hi*b.hi, wrapping in 32 bits (the Q flag is not modelled)
    "llvm.arm.smlad": lambda a, b, acc: to_signed(
        to_unsigned(acc + sum(p * q for p, q in zip(_halves(a), _halves(b), strict=True)), 32), 32
    ),
}


def _lanes(word: int, signed: bool) -> list[int]:
    """The four bytes of a word, low first, each signed or unsigned."""
    raw = [(to_unsigned(word, 32) >> (8 * i)) & 0xFF for i in range(4)]
    return [to_signed(x, 8) for x in raw] if signed else raw


def _word(lanes: Sequence[int]) -> int:
    return to_signed(sum((x & 0xFF) << (8 * i) for i, x in enumerate(lanes)), 32)


def _dot4(a: int, b: int, a_signed: bool, b_signed: bool) -> int:
    """The sum of the products of the four bytes of `a` and `b` (each signed or unsigned)."""
    return sum(x * y for x, y in zip(_lanes(a, a_signed), _lanes(b, b_signed), strict=True))


# The byte-lane subtractions that set the GE flags (signed or not) and SEL, which reads them.
_SUB8 = {"llvm.arm.ssub8": True, "llvm.arm.usub8": False}


# CORE-V dot products (rD += rs1 · rs2 over four bytes): the signedness of rs1 and rs2.
_CORE_V_DOTS = {
    "cv.sdotsp.b": (True, True),
    "cv.sdotusp.b": (False, True),
    "cv.sdotup.b": (False, False),
}


@register_impls
class TargetInstructionFunctions(InterpreterFunctions):
    """The target instructions micro-kernels use: the Arm DSP intrinsics (thumbv7em,
    `llvm.call_intrinsic`) and the CORE-V dot products (gap9, `llvm.inline_asm`)."""

    # The APSR.GE flags of the four byte lanes, as the last SSUB8/USUB8 set them.
    ge: tuple[bool, ...] = (False,) * 4

    @impl(llvm.CallIntrinsicOp)
    def run_intrinsic(self, interpreter: Interpreter, op: llvm.CallIntrinsicOp, args):
        name, values = op.intrin.data, [int(a) for a in args]
        if name in _SUB8:
            a, b = (_lanes(value, _SUB8[name]) for value in values)
            self.ge = tuple(x >= y for x, y in zip(a, b, strict=True))
            return (_word([x - y for x, y in zip(a, b, strict=True)]),)
        if name == "llvm.arm.sel":
            a, b = (_lanes(value, False) for value in values)
            return (_word([x if ge else y for x, ge, y in zip(a, self.ge, b, strict=True)]),)
        semantics = _ARM_INTRINSICS.get(name)
        if semantics is None:
            raise InterpretationError(f"no interpretation of intrinsic {name}")
        return (semantics(*values),)

    @impl(llvm.InlineAsmOp)
    def run_inline_asm(self, interpreter: Interpreter, op: llvm.InlineAsmOp, args):
        mnemonic = op.asm_string.data.split()[0]
        if mnemonic not in _CORE_V_DOTS or op.constraints.data != "=r,r,r,0":
            raise InterpretationError(f"no interpretation of inline assembly {op.asm_string}")
        a, b, acc = (int(value) for value in args)
        total = acc + _dot4(a, b, *_CORE_V_DOTS[mnemonic])
        return (to_signed(to_unsigned(total, 32), 32),)


@register_impls
class ScalarMathFunctions(InterpreterFunctions):
    """math in f64, rounded to the result type (xDSL's own return unrounded Python floats)."""

    @impl(math.ExpOp)
    def run_exp(self, interpreter: Interpreter, op: math.ExpOp, args: PythonValues):
        return (scalar(np.exp(np.float64(args[0])), op.result.type),)

    @impl(math.FmaOp)
    def run_fma(self, interpreter: Interpreter, op: math.FmaOp, args: PythonValues):
        a, b, c = (np.float64(value) for value in args)
        return (scalar(a * b + c, op.result.type),)

    @impl(math.SqrtOp)
    def run_sqrt(self, interpreter: Interpreter, op: math.SqrtOp, args: PythonValues):
        return (scalar(np.sqrt(np.float64(args[0])), op.result.type),)

    @impl(math.ErfOp)
    def run_erf(self, interpreter: Interpreter, op: math.ErfOp, args: PythonValues):
        return (scalar(erf(float(args[0])), op.result.type),)

    @impl(math.CountLeadingZerosOp)
    def run_ctlz(self, interpreter: Interpreter, op: math.CountLeadingZerosOp, args: PythonValues):
        width = _width(interpreter, op.result.type)
        return (width - to_unsigned(args[0], width).bit_length(),)


# ---------------------------------------------------------------------------------------------
# Calling a function of any stage
# ---------------------------------------------------------------------------------------------


def _dtypes(typ: Attribute) -> tuple[np.dtype, np.dtype]:
    """The numpy dtypes of a tensor type's values and of the memref that stores them."""
    assert isinstance(typ, TensorType)
    element = typ.get_element_type()
    return numpy_dtype(element), numpy_dtype(storage_type(element))


def evaluate(
    module: ModuleOp, inputs: Sequence[np.ndarray], entry: str = "main"
) -> tuple[np.ndarray, ...]:
    """Call function `entry` of `module` on `inputs`; returns its results as numpy arrays. A
    memref function (any stage after bufferization: inputs, outputs, then arenas) is called on
    copies of the inputs, fresh outputs and arenas as its `tinyattn.tensor_signature` and
    `tinyattn.arena_bytes` say; its outputs are returned in their tensor-level dtypes."""
    memory = Memory()
    interpreter = Interpreter(module)
    for functions in (
        FuncFunctions(),
        ScfFunctions(),
        ScalarArithFunctions(),
        ScalarMathFunctions(),
        TargetInstructionFunctions(),
        TinyattnFunctions(),
        KernelFunctions(),
        MemrefFunctions(memory),
    ):
        interpreter.register_implementations(functions)
    function = interpreter.get_op_for_symbol(entry)
    assert isinstance(function, func.FuncOp)
    signature = tensor_signature(function)
    if signature == function.function_type:
        return tuple(interpreter.call_op(function, tuple(inputs)))
    args = []
    for index, (x, typ) in enumerate(zip(inputs, signature.inputs, strict=True)):
        values, storage = _dtypes(typ)
        x = np.array(x, values)
        if x.shape != typ.get_shape():
            raise InterpretationError(f"input {index} has shape {list(x.shape)}, expected {typ}")
        args.append(memory.hold(x.view(storage)))
    outputs = [memory.allocate(typ.get_shape(), _dtypes(typ)[1]) for typ in signature.outputs]
    arenas = [memory.allocate((size,), np.int8) for size in arena_bytes(function).values()]
    args += [*outputs, *arenas]
    if len(args) != len(function.args):
        raise InterpretationError(
            f"@{entry} takes {len(function.args)} arguments, but its tensor signature and "
            f"arenas give {len(args)}"
        )
    interpreter.call_op(function, tuple(args))
    return tuple(
        out.view(_dtypes(typ)[0]) for out, typ in zip(outputs, signature.outputs, strict=True)
    )
