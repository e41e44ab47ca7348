"""Run a tensor-level tinyattn module on numpy inputs with xDSL's interpreter.

Values are numpy arrays holding true values in the storage dtype of their MLIR element type
(`ui8` -> uint8). This is the golden model that compiled code is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects import arith
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.interpreter import Interpreter, InterpreterFunctions, PythonValues, impl, register_impls
from xdsl.interpreters.func import FuncFunctions

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.dense import numpy_dtype, to_numpy
from tinyattn.semantics import reference as ref


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


def ilayernorm_of(attr: ta.ILayerNormAttr | None) -> ref.ILayerNorm | None:
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
    """numpy implementations of the tinyattn ops and of tensor-valued `arith.constant`."""

    @impl(arith.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: arith.ConstantOp, args: PythonValues):
        value = op.value
        interpreter.interpreter_assert(
            isinstance(value, DenseIntOrFPElementsAttr),
            f"arith.constant of {value} is not a tensor constant",
        )
        assert isinstance(value, DenseIntOrFPElementsAttr)
        return (to_numpy(value),)

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

    @impl(ta.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: ta.GeluOp, args: PythonValues):
        return (ref.gelu(args[0], igelu_of(op.igelu), requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.ReluOp)
    def run_relu(self, interpreter: Interpreter, op: ta.ReluOp, args: PythonValues):
        return (ref.relu(args[0]),)

    @impl(ta.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: ta.SoftmaxOp, args: PythonValues):
        return (ref.softmax(args[0], isoftmax_of(op.isoftmax)),)

    @impl(ta.MeanOp)
    def run_mean(self, interpreter: Interpreter, op: ta.MeanOp, args: PythonValues):
        result = op.result.type
        assert isinstance(result, TensorType)
        keepdims = len(result.get_shape()) == len(args[0].shape)
        axis = op.axis.value.data
        return (ref.mean(args[0], axis, keepdims, requant_of(op.requant), _result_dtype(op)),)

    @impl(ta.ReshapeOp)
    def run_reshape(self, interpreter: Interpreter, op: ta.ReshapeOp, args: PythonValues):
        result = op.result.type
        assert isinstance(result, TensorType)
        return (np.reshape(args[0], tuple(result.get_shape())),)


def evaluate(
    module: ModuleOp, inputs: Sequence[np.ndarray], entry: str = "main"
) -> tuple[np.ndarray, ...]:
    """Call function `entry` of `module` on `inputs`; returns its results as numpy arrays."""
    interpreter = Interpreter(module)
    interpreter.register_implementations(FuncFunctions())
    interpreter.register_implementations(TinyattnFunctions())
    return tuple(interpreter.call_op(entry, tuple(inputs)))
