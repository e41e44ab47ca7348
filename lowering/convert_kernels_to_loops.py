"""`convert-kernels-to-loops`: kernel ops -> a target's micro-kernels, else generic loop nests.

Each kernel op lowers through the lowering its target family registers for it
(`kernel_registry`), else through the generic loop nest of `loop_kernels` (`GENERIC_KERNELS`),
which always applies. Per-channel requantization tables become read-only globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from math import prod

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import (
    LAYER_ATTR,
    PROFILE,
    PROFILE_OUTSIDE,
    ProfileRegion,
    profile_marker,
)
from tinyattn.dialects.builder import LoopBuilder, ModuleGlobals
from tinyattn.lowering import (  # noqa: F401  (they register the targets' kernels)
    gap9_kernels,
    rv32_kernels,
    thumbv7em_kernels,
)
from tinyattn.lowering import loop_kernels as k
from tinyattn.lowering.kernel_registry import (
    KERNEL_TARGETS,
    KernelContext,
    KernelLowering,
    StackScratch,
    lowering_for,
)


def _shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())  # type: ignore[attr-defined]


def _matmul(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MatmulOp)
    m, n, depth = op.dims()
    rhs = k.Matrix.operand(op, 1)
    init = k.matmul_init(op)
    out = k.Matrix.operand(op, -1)
    k.matmul(
        ctx.builder,
        m,
        n,
        depth,
        k.Matrix.operand(op, 0),
        rhs.T() if op.transpose_rhs is not None else rhs,
        out.T() if op.transpose_out is not None else out,
        init,
        scale=None if op.scale is None else op.scale.value.data,
        requant=ctx.requant(op),
    )


def _softmax(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.SoftmaxOp)
    rows, cols = _shape(op.x)
    x, out = k.Matrix.operand(op, 0), k.Matrix.operand(op, -1)
    if op.itamax is not None:
        k.itamax_rows(ctx.builder, rows, cols, x, out)
    elif op.isoftmax is None:
        k.softmax_rows(ctx.builder, rows, cols, x, out)
    else:
        k.isoftmax(ctx.builder, op, partial(ctx.table, op))


def _layernorm(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.LayerNormOp)
    rows, cols = _shape(op.x)
    x, out = k.Matrix.operand(op, 0), k.Matrix.operand(op, -1)
    if op.ilayernorm is None:
        assert op.epsilon is not None
        k.layernorm_rows(ctx.builder, rows, cols, x, op.gamma, op.beta, op.epsilon.value.data, out)
    elif isinstance(op.ilayernorm, ta.QuantLibLayerNormAttr):
        shift = op.ilayernorm.shift.data
        k.quantlib_layernorm_rows(
            ctx.builder, rows, cols, x, op.gamma, op.beta, shift, out, ctx.requant(op)
        )
    else:
        k.ilayernorm_rows(
            ctx.builder, rows, cols, x, op.gamma, op.beta, op.ilayernorm, out, ctx.requant(op)
        )


def _rmsnorm(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.RMSNormOp)
    rows, cols = _shape(op.x)
    x, out = k.Matrix.operand(op, 0), k.Matrix.operand(op, -1)
    shift = op.shift.value.data
    k.irmsnorm_rows(ctx.builder, rows, cols, x, op.weight, shift, out, ctx.requant(op))


# The f32 map functions, as scalar code.
_FLOAT_FUNCTIONS: dict[str, Callable[[LoopBuilder, list[SSAValue]], SSAValue]] = {
    "sigmoid": lambda b, values: k.sigmoid(b, values[0]),
    "sqrt": lambda b, values: b.sqrt(values[0]),
    "round": lambda b, values: k.round_half_even(b, values[0]),
    "sub": lambda b, values: b.sub(values[0], values[1]),
    "mul": lambda b, values: b.mul(values[0], values[1]),
    "div": lambda b, values: b.div(values[0], values[1]),
    "max": lambda b, values: b.max(values[0], values[1]),  # NaN-propagating, as ONNX's
    "min": lambda b, values: b.min(values[0], values[1]),
}


def _map_function(op: kernel.MapOp) -> Callable[[LoopBuilder, list[SSAValue]], SSAValue]:
    fn, params = op.fn.data, op.igelu
    if fn in _FLOAT_FUNCTIONS:
        return _FLOAT_FUNCTIONS[fn]
    if fn == "add":
        return lambda b, values: b.add(values[0], values[1])
    if fn == "muladd":
        return lambda b, values: b.add(b.mul(values[0], values[1]), values[2])
    if fn == "relu":
        return lambda b, values: k.relu(b, values[0])
    if fn == "gelu" and params is not None:
        return lambda b, values: k.igelu(b, values[0], params)
    if fn == "gelu":
        return lambda b, values: k.gelu(b, values[0])
    return lambda b, values: values[0]  # copy


def _map(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MapOp)
    inputs = [(value, op.is_unsigned(index)) for index, value in enumerate(op.inputs)]
    k.elementwise(ctx.builder, inputs, op.output, _map_function(op), ctx.requant(op))


def _mean(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MeanOp)
    outer, axis, inner = _shape(op.x)
    k.mean_axis(
        ctx.builder, outer, axis, inner, op.x, op.output, ctx.requant(op), op.is_unsigned(0)
    )


def _window(op: kernel.ConvOp | kernel.MaxPoolOp | kernel.Im2ColOp, kernel_size) -> k.Window:
    strides, pads = op.strides.get_values(), op.pads.get_values()
    return k.Window(tuple(kernel_size), tuple(strides), tuple(pads))  # type: ignore[arg-type]


def _conv(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.ConvOp)
    window = _window(op, op.weight.type.get_shape()[2:])  # type: ignore[attr-defined]
    k.conv(
        ctx.builder, op.x, op.weight, op.bias, op.output, window, op.groups.value.data,
        ctx.requant(op), op.is_unsigned(0),
    )  # fmt: skip


def _im2col(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.Im2ColOp)
    k.im2col(ctx.builder, op.x, op.output, _window(op, op.kernel.get_values()))


def _maxpool(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.MaxPoolOp)
    window = _window(op, op.kernel.get_values())
    k.maxpool(ctx.builder, op.x, op.output, window, op.is_unsigned(0))


def _lookup(ctx: KernelContext, op: kernel.KernelOp) -> None:
    assert isinstance(op, kernel.LookupOp)
    rows, cols = _shape(op.x)
    k.lookup(ctx.builder, rows, cols, k.Matrix.operand(op, 0), op.table, k.Matrix.operand(op, -1))


GENERIC_KERNELS: dict[type[kernel.KernelOp], KernelLowering] = {
    kernel.MatmulOp: _matmul,
    kernel.SoftmaxOp: _softmax,
    kernel.LayerNormOp: _layernorm,
    kernel.RMSNormOp: _rmsnorm,
    kernel.MapOp: _map,
    kernel.MeanOp: _mean,
    kernel.LookupOp: _lookup,
    kernel.ConvOp: _conv,
    kernel.Im2ColOp: _im2col,
    kernel.MaxPoolOp: _maxpool,
}


def _label(op: kernel.KernelOp) -> tuple[str, int]:
    """A kernel op as a profile shows it (op, shape, what it computes) and its MACs."""
    if isinstance(op, kernel.MatmulOp):
        m, n, depth = op.dims()
        shape, macs = f"{m}x{n}x{depth}", m * n * depth
    elif isinstance(op, kernel.ConvOp):
        taps = prod(_shape(op.weight)[1:])
        shape, macs = "x".join(map(str, _shape(op.x))), prod(_shape(op.output)) * taps
    else:
        shape, macs = "x".join(map(str, _shape(op.operands[0]))), 0
    fn = f" {op.fn.data}" if isinstance(op, kernel.MapOp) else ""
    into = op.out.name_hint
    return f"{op.name.removeprefix('kernel.')}{fn} {shape}" + (f" -> %{into}" if into else ""), macs


def _instrument(module: ModuleOp, ops: list[kernel.KernelOp]) -> None:
    """Mark each kernel op's code as a profiling region (annotations.PROFILE): a call of its
    marker before, of its layer's between-kernels region after; the markers are external no-op
    functions. Code belongs to the layer (`tinyattn.layer`) of the last tagged top-level op of
    its function entered: a tagged op of another layer than the one before starts that layer's
    between-kernels region, and untagged ones (deallocs, moved constants) stay in it."""
    regions = [ProfileRegion(PROFILE_OUTSIDE, 0, None)]
    outside: dict[str | None, int] = {None: 0}  # layer -> its between-kernels region
    layer_of: dict[kernel.KernelOp, str | None] = {}
    for function in module.ops:
        if not isinstance(function, func.FuncOp) or function.is_declaration:
            continue
        layer = None
        for top in list(function.body.block.ops):
            tag = top.attributes.get(LAYER_ATTR)
            if isinstance(tag, StringAttr) and tag.data != layer:
                layer = tag.data
                if layer not in outside:
                    outside[layer] = len(regions)
                    regions.append(ProfileRegion(PROFILE_OUTSIDE, 0, layer))
                call = func.CallOp(profile_marker(outside[layer]), [], [])
                function.body.block.insert_op_before(call, top)
            layer_of.update((o, layer) for o in top.walk() if isinstance(o, kernel.KernelOp))
    for op in ops:
        layer = layer_of.get(op)
        regions.append(ProfileRegion(*_label(op), layer))
        block = op.parent_block()
        assert block is not None
        block.insert_op_before(func.CallOp(profile_marker(len(regions) - 1), [], []), op)
        block.insert_op_after(func.CallOp(profile_marker(outside[layer]), [], []), op)
    for region in range(len(regions)):
        module.body.block.add_op(func.FuncOp.external(profile_marker(region), [], []))
    module.attributes[PROFILE] = ArrayAttr(
        [
            DictionaryAttr(
                {"label": StringAttr(label), "macs": IntegerAttr(macs, i64)}
                | ({"layer": StringAttr(layer)} if layer is not None else {})
            )
            for label, macs, layer in regions
        ]
    )


@dataclass(frozen=True)
class ConvertKernelsToLoops(ModulePass):
    """Lower every kernel op through `target`'s kernels, falling back to loop nests;
    `profile` marks each kernel's code as a region the profiler counts on its own."""

    name = "convert-kernels-to-loops"

    target: str = "generic"
    profile: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.target not in KERNEL_TARGETS:
            raise PassFailedException(
                f"{self.name}: unknown target '{self.target}' (one of {', '.join(KERNEL_TARGETS)})"
            )
        module_globals, scratch = ModuleGlobals(op), StackScratch()
        kernel_ops = [o for o in op.walk() if isinstance(o, kernel.KernelOp)]
        if self.profile:
            _instrument(op, kernel_ops)
        for kernel_op in kernel_ops:
            context = KernelContext(
                LoopBuilder(InsertPoint.before(kernel_op)), module_globals, scratch
            )
            lowering_for(self.target, kernel_op, GENERIC_KERNELS)(context, kernel_op)
            kernel_op.detach()
            kernel_op.erase()
