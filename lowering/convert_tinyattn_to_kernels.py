"""`convert-tinyattn-to-kernels`: tensor-level tinyattn functions -> memref functions of kernel
ops, one pattern per op.

* the function takes its inputs and then its outputs as memrefs (destination passing) and returns
  nothing; the op producing a result writes straight into that output; the tensor-level
  signature is kept in `tinyattn.tensor_signature` (input/output element types, ui8 included);
* tensor constants become `memref.global` constants (read-only data: flash on an MCU);
* every other tensor becomes a `memref.alloc`, freed (`memref.dealloc`) right after its last use,
  so buffer lifetimes are explicit for `plan-memory`; `tinyattn.reshape` is a reinterpreting view;
* each op becomes one kernel op on its buffers seen as matrices (`linear` a `kernel.matmul`,
  elementwise ops a `kernel.map`, ...); attention must have been scheduled by a tiling pass,
  whose kernel ops and transfers this pass carries over and whose tensor boundary
  (`bufferization.to_buffer`/`to_tensor`, ui8 casts) it resolves.

Memrefs hold signless integers, ui8 data as i8: a kernel op lists its operands that hold unsigned
data. The integer semantics are the kernel ops' (dialects/kernel.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from math import prod

from xdsl.context import Context
from xdsl.dialects import arith, bufferization, func, memref
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FunctionType,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
    StridedLayoutAttr,
    TensorType,
    UnrealizedConversionCastOp,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import kernel
from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.annotations import LAYER_ATTR, TENSOR_SIGNATURE, tag
from tinyattn.dialects.builder import (
    LoopBuilder,
    ModuleGlobals,
    memref_type,
    reshaped,
    storage_type,
    subview,
)
from tinyattn.dialects.dense import from_numpy, numpy_dtype, to_numpy
from tinyattn.dialects.memory import ALIGNMENT


def _is_unsigned(value: SSAValue) -> bool:
    typ = value.type
    assert isinstance(typ, TensorType)
    element = typ.get_element_type()
    return isinstance(element, IntegerType) and element.signedness.data == Signedness.UNSIGNED


@dataclass
class _Lowering:
    """Where the kernel ops of one function go, how to make scratch buffers, and which weight
    tensors are held packed (transposed, [N, K])."""

    builder: LoopBuilder
    packed: set[SSAValue] = field(default_factory=set)

    def alloc(self, shape: Sequence[int], element: Attribute) -> SSAValue:
        return self.builder.insert(
            memref.AllocOp.get(storage_type(element), ALIGNMENT, list(shape))
        )

    def emit(self, op: Operation) -> None:
        self.builder.builder.insert(op)


OpLowering = Callable[[_Lowering, Operation, list[SSAValue], SSAValue], None]


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType | MemRefType)
    return tuple(typ.get_shape())


def _matrix(b: LoopBuilder, ref: SSAValue, cols: int | None = None) -> SSAValue:
    """`ref` seen as a matrix [rows, cols]; `cols` is the last axis unless given."""
    shape = _shape(ref)
    count = prod(shape)
    cols = cols or (shape[-1] if shape else 1)
    return reshaped(b, ref, (count // cols, cols))


def _unsigned(roles: Sequence[tuple[kernel.Role, SSAValue]]) -> list[kernel.Role]:
    """The kernel op's operand roles (of (role, tensor) pairs) whose tensor is unsigned."""
    return [role for role, tensor in roles if _is_unsigned(tensor)]


def _lower_linear(low: _Lowering, op: ta.LinearOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, y = _matrix(b, refs[0]), _matrix(b, out)
    low.emit(
        kernel.MatmulOp(
            x,
            refs[1],
            y,
            bias=refs[2] if len(refs) > 2 else None,
            transpose_rhs=op.weight in low.packed,
            requant=op.requant,
            unsigned=_unsigned([("lhs", op.x), ("out", op.result)]),
        )
    )


def _lower_matmul(low: _Lowering, op: ta.MatMulOp, refs: list[SSAValue], out: SSAValue):
    """One `kernel.matmul` per batch element, in a loop over the batch (flattened), on 2-D
    views of the operands; a plain-matrix operand is shared by every batch."""
    b = low.builder
    batch = prod(op.batch_shape())
    unsigned = _unsigned([("lhs", op.lhs), ("rhs", op.rhs), ("out", op.result)])

    def stacked(ref: SSAValue) -> SSAValue | None:
        shape = _shape(ref)
        return None if len(shape) == 2 else reshaped(b, ref, (batch, *shape[-2:]))

    lhs, rhs, y = (stacked(ref) for ref in (*refs, out))

    def body(bb: LoopBuilder, index: SSAValue, _: tuple) -> tuple:
        def matrix(stack: SSAValue | None, ref: SSAValue) -> SSAValue:
            if stack is None:
                return ref
            rows, cols = _shape(stack)[1:]
            return subview(bb, stack, [index, 0, 0], [1, rows, cols], squeeze=(0,))

        bb.builder.insert(
            kernel.MatmulOp(
                matrix(lhs, refs[0]),
                matrix(rhs, refs[1]),
                matrix(y, out),
                requant=op.requant,
                unsigned=unsigned,
            )
        )
        return ()

    b.for_range(batch, body)


def _lower_map(fn: str) -> OpLowering:
    """An elementwise op: `kernel.map` of `fn` over its operands, narrowed by its `requant`."""

    def lower(low: _Lowering, op: Operation, refs: list[SSAValue], out: SSAValue):
        b = low.builder
        (result,) = op.results
        requant = op.properties.get("requant")
        # One flat row, unless a per-channel requant needs the channel (the column).
        per_channel = isinstance(requant, ta.RequantAttr) and requant.channels() > 1
        cols = None if per_channel else prod(_shape(out))
        inputs = [_matrix(b, ref, cols) for ref in refs]
        y = _matrix(b, out, cols)
        low.emit(
            kernel.MapOp(
                fn,
                inputs,
                y,
                igelu=op.properties.get("igelu"),
                requant=requant,
                unsigned=_unsigned([*enumerate(op.operands), ("out", result)]),
            )
        )

    return lower


def _strided_view(
    b: LoopBuilder, ref: SSAValue, offset: int, sizes: Sequence[int], strides: Sequence[int]
) -> SSAValue:
    """A view of contiguous `ref` with its own offset, sizes and strides (in elements)."""
    typ = ref.type
    assert isinstance(typ, MemRefType)
    view = MemRefType(
        typ.get_element_type(), list(sizes), StridedLayoutAttr(list(strides), offset),
        typ.memory_space,
    )  # fmt: skip
    return b.insert(
        memref.ReinterpretCastOp(ref, [], [], [], [offset], list(sizes), list(strides), view)
    )


def _row_major_strides(shape: Sequence[int]) -> list[int]:
    return [prod(shape[axis + 1 :]) for axis in range(len(shape))]


def _broadcast(b: LoopBuilder, ref: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`ref` (contiguous) seen with `shape` it broadcasts to: a view whose broadcast axes have
    stride 0, so every element of the view reads the one it is a copy of."""
    own = _shape(ref)
    if own == tuple(shape):
        return ref
    aligned = (1,) * (len(shape) - len(own)) + own
    strides = _row_major_strides(aligned)
    broadcast = [0 if dim == 1 else stride for dim, stride in zip(aligned, strides, strict=True)]
    return _strided_view(b, ref, 0, shape, broadcast)


def _as_2d_window(b: LoopBuilder, ref: SSAValue, one_d: bool) -> SSAValue:
    """A 1-D window operand [C, L] (or weight [O, I, K]) seen as 2-D, [C, 1, L]."""
    shape = _shape(ref)
    return reshaped(b, ref, (*shape[:-1], 1, shape[-1])) if one_d else ref


def _window_2d(strides: Sequence[int], pads: Sequence[int]) -> tuple[list[int], list[int]]:
    """1-D strides and pads as those of the 2-D window of height 1."""
    if len(strides) == 2:
        return list(strides), list(pads)
    return [1, strides[0]], [0, pads[0], 0, pads[1]]


# The largest im2col buffer a convolution may take to run as a matmul (the target's kernel),
# else it runs as the generic window loop.
IM2COL_BYTES = 64 * 1024


def _lower_conv(low: _Lowering, op: ta.ConvOp, refs: list[SSAValue], out: SSAValue):
    """A convolution of one group as `kernel.im2col` into a scratch [OH*OW, C*KH*KW] and a
    `kernel.matmul` of its rows with the weights [C_out, C*KH*KW] (read along the depth, the
    product stored transposed: [C_out, OH*OW] is the output's layout), so the target's matmul
    kernel computes it; a grouped one, or one whose patches would exceed `IM2COL_BYTES`, as
    `kernel.conv`."""
    b = low.builder
    kernel_size, strides, pads = op.window()
    one_d = len(kernel_size) == 1
    x, weight, y = (_as_2d_window(b, ref, one_d) for ref in (refs[0], refs[1], out))
    strides2, pads2 = _window_2d(strides, pads)
    bias = refs[2] if len(refs) > 2 else None
    c_out, per_group, kh, kw = _shape(weight)
    positions, depth = prod(_shape(y)[1:]), per_group * kh * kw
    element = storage_type(_shape_type(op.x).get_element_type())
    x_unsigned = _is_unsigned(op.x)
    if op.groups.value.data == 1 and positions * depth * _bytes(element) <= IM2COL_BYTES:
        patches = low.alloc((positions, depth), element)
        low.emit(
            kernel.Im2ColOp(
                x, patches, kernel=(kh, kw), strides=strides2, pads=pads2,
                unsigned=["x", "out"] if x_unsigned else [],
            )
        )  # fmt: skip
        low.emit(
            kernel.MatmulOp(
                patches, reshaped(b, weight, (c_out, depth)), reshaped(b, y, (c_out, positions)),
                bias=bias, transpose_rhs=True, transpose_out=True, requant=op.requant,
                unsigned=_unsigned([("lhs", op.x), ("out", op.result)]),
            )
        )  # fmt: skip
        return
    low.emit(
        kernel.ConvOp(
            x,
            weight,
            y,
            bias=bias,
            strides=strides2,
            pads=pads2,
            groups=op.groups.value.data,
            requant=op.requant,
            unsigned=_unsigned([("x", op.x), ("out", op.result)]),
        )
    )


def _shape_type(value: SSAValue) -> TensorType:
    typ = value.type
    assert isinstance(typ, TensorType)
    return typ


def _bytes(element: Attribute) -> int:
    return numpy_dtype(element).itemsize


def _lower_maxpool(low: _Lowering, op: ta.MaxPoolOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    kernel_size, strides, pads = op.window()
    one_d = len(kernel_size) == 1
    x, y = (_as_2d_window(b, ref, one_d) for ref in (refs[0], out))
    strides2, pads2 = _window_2d(strides, pads)
    size = [1, *kernel_size] if one_d else list(kernel_size)
    low.emit(
        kernel.MaxPoolOp(
            x, y, kernel=size, strides=strides2, pads=pads2,
            unsigned=_unsigned([("x", op.x), ("out", op.result)]),
        )
    )  # fmt: skip


def _lower_float_map(low: _Lowering, op: ta.MapOp, refs: list[SSAValue], out: SSAValue):
    """`kernel.map` of the same function, its operands broadcast by views with stride 0."""
    b = low.builder
    shape = _shape(out)
    low.emit(kernel.MapOp(op.fn.data, [_broadcast(b, ref, shape) for ref in refs], out))


def _lower_transpose(low: _Lowering, op: ta.TransposeOp, refs: list[SSAValue], out: SSAValue):
    """A copy from a view of `x` (contiguous) whose strides are permuted: the view reads the
    transposed tensor in place."""
    shape, strides = _shape(refs[0]), _row_major_strides(_shape(refs[0]))
    perm = op.permutation()
    sizes, permuted = [shape[axis] for axis in perm], [strides[axis] for axis in perm]
    view = _strided_view(low.builder, refs[0], 0, sizes, permuted)
    low.emit(kernel.MapOp("copy", [view], out, unsigned=_unsigned([(0, op.x), ("out", op.result)])))


def _lower_concat(low: _Lowering, op: ta.ConcatOp, refs: list[SSAValue], out: SSAValue):
    """Each operand copied into its part of `out`, a view at its offset along the axis."""
    b = low.builder
    axis, shape = op.axis.value.data, _shape(out)
    strides = _row_major_strides(shape)
    start = 0
    for value, ref in zip(op.inputs, refs, strict=True):
        sizes = _shape(ref)
        part = _strided_view(b, out, start * strides[axis], sizes, strides)
        unsigned = _unsigned([(0, value), ("out", value)])
        low.emit(kernel.MapOp("copy", [ref], part, unsigned=unsigned))
        start += sizes[axis]


def _lower_slice(low: _Lowering, op: ta.SliceOp, refs: list[SSAValue], out: SSAValue):
    """A copy from the view of `x` the slice reads (offset, strides times steps)."""
    b = low.builder
    strides = _row_major_strides(_shape(refs[0]))
    starts, steps = op.starts.get_values(), op.steps.get_values()
    offset = sum(start * stride for start, stride in zip(starts, strides, strict=True))
    scaled = [stride * step for stride, step in zip(strides, steps, strict=True)]
    view = _strided_view(b, refs[0], offset, _shape(out), scaled)
    unsigned = _unsigned([(0, op.x), ("out", op.result)])
    low.emit(kernel.MapOp("copy", [view], out, unsigned=unsigned))


def _lower_muladd(low: _Lowering, op: ta.MulAddOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    shape = _shape(out)
    x, m, a = (_broadcast(b, ref, shape) for ref in refs)
    low.emit(
        kernel.MapOp(
            "muladd",
            [x, m, a],
            out,
            requant=op.requant,
            unsigned=_unsigned([*enumerate(op.operands), ("out", op.result)]),
        )
    )


def _lower_layernorm(low: _Lowering, op: ta.LayerNormOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, y = _matrix(b, refs[0]), _matrix(b, out)
    low.emit(
        kernel.LayerNormOp(
            x,
            refs[1],
            refs[2],
            y,
            epsilon=None if op.ilayernorm else op.epsilon.value.data,
            ilayernorm=op.ilayernorm,
            requant=op.requant,
            unsigned=_unsigned([("x", op.x), ("out", op.result)]),
        )
    )


def _lower_rmsnorm(low: _Lowering, op: ta.RMSNormOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, y = _matrix(b, refs[0]), _matrix(b, out)
    low.emit(
        kernel.RMSNormOp(
            x,
            refs[1],
            y,
            shift=op.shift.value.data,
            requant=op.requant,
            unsigned=_unsigned([("x", op.x), ("out", op.result)]),
        )
    )


def _lower_softmax(low: _Lowering, op: ta.SoftmaxOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, y = _matrix(b, refs[0]), _matrix(b, out)
    scratch = None if op.isoftmax is None else low.alloc((_shape(x)[1],), i32)
    low.emit(
        kernel.SoftmaxOp(
            x,
            y,
            isoftmax=op.isoftmax,
            itamax=op.itamax is not None,
            scratch=scratch,
            unsigned=_unsigned([("x", op.x), ("out", op.result)]),
        )
    )


def _lower_mean(low: _Lowering, op: ta.MeanOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    shape = _shape(refs[0])
    axis = op.axis.value.data
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    x = reshaped(b, refs[0], (outer, shape[axis], inner))
    y = reshaped(b, out, (outer, inner))
    low.emit(
        kernel.MeanOp(
            x, y, requant=op.requant, unsigned=_unsigned([("x", op.x), ("out", op.result)])
        )
    )


def _lower_lookup(low: _Lowering, op: ta.LookupOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    count = prod(_shape(out))
    x, y = _matrix(b, refs[0], count), _matrix(b, out, count)
    low.emit(kernel.LookupOp(x, refs[1], y, unsigned=_unsigned([("x", op.x)])))


def _refuse_attention(low: _Lowering, op: Operation, refs: list[SSAValue], out: SSAValue):
    raise PassFailedException(
        f"'{op.name}' must be scheduled first: run depth-first-tile or layerwise-tile"
    )


LOWERINGS: dict[type[Operation], OpLowering] = {
    ta.MHSAOp: _refuse_attention,
    ta.FusedMHSAOp: _refuse_attention,
    ta.LinearOp: _lower_linear,
    ta.MatMulOp: _lower_matmul,
    ta.AddOp: _lower_map("add"),
    ta.MulAddOp: _lower_muladd,
    ta.MapOp: _lower_float_map,
    ta.TransposeOp: _lower_transpose,
    ta.ConcatOp: _lower_concat,
    ta.SliceOp: _lower_slice,
    ta.ConvOp: _lower_conv,
    ta.MaxPoolOp: _lower_maxpool,
    ta.GeluOp: _lower_map("gelu"),
    ta.ReluOp: _lower_map("relu"),
    ta.LayerNormOp: _lower_layernorm,
    ta.RMSNormOp: _lower_rmsnorm,
    ta.SoftmaxOp: _lower_softmax,
    ta.MeanOp: _lower_mean,
    ta.RequantOp: _lower_map("copy"),
    ta.LookupOp: _lower_lookup,
}


class _FunctionConverter:
    def __init__(self, module_globals: ModuleGlobals, old: func.FuncOp, pack_weights: bool):
        self.globals = module_globals
        self.old = old
        self.pack_weights = pack_weights
        self.refs: dict[SSAValue, SSAValue] = {}

    def convert(self) -> func.FuncOp:
        old = self.old
        returned = self._returned_values()
        inputs = [memref_type(t) for t in old.function_type.inputs]
        outputs = [memref_type(t) for t in old.function_type.outputs]
        block = Block(arg_types=[*inputs, *outputs])
        builder = LoopBuilder(InsertPoint.at_end(block))
        low = _Lowering(builder)
        for arg, new_arg in zip(old.body.block.args, block.args, strict=False):
            self.refs[arg] = new_arg
            if arg.name_hint:
                new_arg.name_hint = arg.name_hint
        out_args = block.args[len(inputs) :]
        for index, out_arg in enumerate(out_args):
            out_arg.name_hint = f"out{index}" if len(out_args) > 1 else "out"
        destinations = {root: out_args[index] for root, index in returned.items()}
        for op in list(old.body.block.ops):
            self._convert_op(low, op, destinations)
        low.builder.insert(func.ReturnOp())
        names = [
            *(old.arg_attrs.data if old.arg_attrs else [DictionaryAttr({})] * len(inputs)),
            *(old.res_attrs.data if old.res_attrs else [DictionaryAttr({})] * len(outputs)),
        ]
        new = func.FuncOp(
            old.sym_name.data,
            FunctionType.from_lists([*inputs, *outputs], []),
            Region(block),
            arg_attrs=ArrayAttr(names) if old.arg_attrs or old.res_attrs else None,
        )
        if old.sym_visibility is not None:
            new.sym_visibility = old.sym_visibility
        new.attributes[TENSOR_SIGNATURE] = old.function_type
        _insert_deallocs(block)
        return new

    def _returned_values(self) -> dict[SSAValue, int]:
        """The value that computes each result, looking through reshapes, by result index."""
        ret = self.old.body.block.last_op
        assert isinstance(ret, func.ReturnOp)
        roots: dict[SSAValue, int] = {}
        for index, value in enumerate(ret.arguments):
            while isinstance(value.owner, ta.ReshapeOp):
                value = value.owner.x
            computed = isinstance(value.owner, bufferization.ToTensorOp) or (
                isinstance(value.owner, Operation) and value.owner.dialect_name() == "tinyattn"
            )
            if not computed:
                raise PassFailedException(
                    f"result {index} of @{self.old.sym_name.data} is not computed by a tinyattn op"
                )
            if value in roots:
                raise PassFailedException(
                    f"results {roots[value]} and {index} of @{self.old.sym_name.data} are the "
                    "same tensor"
                )
            roots[value] = index
        return roots

    def _convert_op(self, low: _Lowering, op: Operation, destinations: dict[SSAValue, SSAValue]):
        b = low.builder
        if isinstance(op, func.ReturnOp):
            return
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, DenseIntOrFPElementsAttr):
            data = op.value
            if self.pack_weights and _only_linear_weight(op.result):
                data = from_numpy(to_numpy(data).T, data.get_element_type())
                low.packed.add(op.result)
            self.refs[op.result] = self.globals.constant(b, op.result.name_hint, data, self.old)
            return
        if isinstance(op, bufferization.ToBufferOp):
            op.memref.replace_all_uses_with(self.refs[op.tensor])
            return
        if isinstance(op, bufferization.ToTensorOp):
            self._bind_result(b, op.tensor, op.memref, destinations)
            return
        if _is_storage_view(op):  # ui8 <-> i8 at a tiling pass's tensor boundary: same bytes
            op.results[0].replace_all_uses_with(op.operands[0])
            return
        if op.dialect_name() != "tinyattn":  # memref code a tiling pass already wrote
            op.detach()
            b.builder.insert(op)
            return
        if isinstance(op, ta.ReshapeOp):
            if any(not isinstance(use.operation, func.ReturnOp) for use in op.result.uses):
                self.refs[op.result] = reshaped(b, self.refs[op.x], _shape(op.result))
            return
        lowering = LOWERINGS.get(type(op))
        if lowering is None:
            raise PassFailedException(f"cannot lower '{op.name}' to loops yet")
        (result,) = op.results
        block = b.builder.insertion_point.block
        before = block.last_op
        if result in destinations:
            out = reshaped(b, destinations[result], _shape(result))
        else:
            out = low.alloc(_shape(result), result.type.get_element_type())
            out.name_hint = result.name_hint
        lowering(low, op, [self.refs[v] for v in op.operands], out)
        self.refs[result] = out
        emitted = block.ops if before is None else _ops_after(before)
        tag(list(emitted), op.attributes.get(LAYER_ATTR))

    def _bind_result(
        self,
        b: LoopBuilder,
        tensor: SSAValue,
        buffer: SSAValue,
        destinations: dict[SSAValue, SSAValue],
    ) -> None:
        """`tensor` is held in `buffer`; a function result is copied to its output."""
        self.refs[tensor] = buffer
        if tensor in destinations:
            count = prod(_shape(tensor))
            source = _matrix(b, buffer, count)
            out = _matrix(b, reshaped(b, destinations[tensor], _shape(tensor)), count)
            b.builder.insert(kernel.MapOp("copy", [source], out))


def _only_linear_weight(value: SSAValue) -> bool:
    """An int8 2-D constant used only as the weight of `tinyattn.linear`s: it may be stored
    packed, [N, K], for kernels that read the rhs by words (f32 kernels read any layout)."""
    typ = value.type
    uses = list(value.uses)
    return (
        isinstance(typ, TensorType)
        and len(typ.get_shape()) == 2
        and isinstance(typ.get_element_type(), IntegerType)
        and bool(uses)
        and all(isinstance(u.operation, ta.LinearOp) and u.index == 1 for u in uses)
    )


def _is_storage_view(op: Operation) -> bool:
    """A cast of a memref to one of the same shape and storage type (ui8 <-> i8)."""
    one_to_one = len(op.operands) == len(op.results) == 1
    if not isinstance(op, UnrealizedConversionCastOp) or not one_to_one:
        return False
    source, view = op.operands[0].type, op.results[0].type
    return (
        isinstance(source, MemRefType)
        and isinstance(view, MemRefType)
        and source.get_shape() == view.get_shape()
        and storage_type(source.element_type) == storage_type(view.element_type)
    )


def _ops_after(op: Operation) -> Iterator[Operation]:
    while (op := op.next_op) is not None:
        yield op


def _insert_deallocs(block: Block) -> None:
    """Free each top-level alloc right after the last top-level op that uses it (or a view)."""
    position = {op: index for index, op in enumerate(block.ops)}
    ops = list(block.ops)
    for alloc in [op for op in ops if isinstance(op, memref.AllocOp)]:
        users = [_top_level(user, block) for user in _users(alloc.memref)]
        last = max(position[user] for user in users if user is not None)
        ops[last].parent_block().insert_op_after(memref.DeallocOp.get(alloc.memref), ops[last])


def _users(value: SSAValue) -> list[Operation]:
    """Every op using `value`, directly or through views of it."""
    users: list[Operation] = []
    for use in value.uses:
        users.append(use.operation)
        if isinstance(use.operation, memref.ReinterpretCastOp | memref.ViewOp | memref.SubviewOp):
            users.extend(_users(use.operation.results[0]))
    return users


def _top_level(op: Operation, block: Block) -> Operation | None:
    """The op of `block` that contains `op`; None for a use outside it (the old function's
    boundary ops, which go away with it)."""
    while op.parent_block() is not block:
        parent = op.parent_op()
        if parent is None:
            return None
        op = parent
    return op


@dataclass(frozen=True)
class ConvertTinyattnToKernels(ModulePass):
    """Bufferize tensor-level tinyattn functions into memref functions of kernel ops;
    `pack-weights` stores constant int8 `linear` weights transposed ([N, K], read by rows:
    `transpose_rhs`), the layout of word-loading kernels."""

    name = "convert-tinyattn-to-kernels"

    pack_weights: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        module_globals = ModuleGlobals(op)
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if not any(
                isinstance(t, TensorType) for t in function.function_type.inputs
            ) and not any(
                isinstance(o, Operation) and o.dialect_name() == "tinyattn" for o in function.walk()
            ):
                continue
            new = _FunctionConverter(module_globals, function, self.pack_weights).convert()
            op.body.block.insert_op_before(new, function)
            op.body.block.erase_op(function)
