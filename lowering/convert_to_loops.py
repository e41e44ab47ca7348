"""`convert-tinyattn-to-loops`: tensor-level tinyattn functions -> memref functions of loop nests.

This is the plain layer-by-layer schedule (the baseline the tiling passes improve on):

* the function takes its inputs and then its outputs as memrefs (destination passing) and returns
  nothing; the op producing a result writes straight into that output;
* tensor constants become `memref.global` constants (read-only data: flash on an MCU);
* every other tensor becomes a `memref.alloc`, freed (`memref.dealloc`) right after its last use,
  so buffer lifetimes are explicit for `plan-memory`; `tinyattn.reshape` is a reinterpreting view;
* attention materializes Q, K, V [H, S, P], the whole score map [H, S, S] and the head-interleaved
  context [S, H, P] (which is the concatenated layout the output projection reads).

Integer ops compute bit-exactly what `dialects/reference.py` computes:

* memrefs hold signless integers, ui8 data as i8: loads from an i8 tensor sign-extend to i32
  (`arith.extsi`), from a ui8 tensor zero-extend (`arith.extui`); stores truncate (`arith.trunci`);
* products, sums and biases are i32 (`arith.muli`, `arith.addi`), never widened to i64: the
  targets are 32-bit, and like the deployed kernels (and the reference) an overflow wraps modulo
  2^32, so an accumulator that crosses 2^31 gives the same wrapped value everywhere;
* a requantization is `muli`, `addi` of `add + 2^(shift-1)` (the rounding term folded into the
  addend, the same sum modulo 2^32), `arith.shrsi` (ties round toward +inf: -63.5 -> -63) and a
  clip with `arith.maxsi`/`arith.minsi` to the result type's range, per tensor or per channel of
  the last axis (per-channel values are i32 globals);
* the integer softmax is computed in i32 with an unsigned division (`arith.divui`) per element;
  its coefficients must keep every intermediate within 32 bits (checked at compile time, a
  diagnostic otherwise), where i32 arithmetic equals the reference's unbounded integers;
* an integer mean is the i32 sum, requantized, or divided rounding half up
  (`arith.floordivsi` of `sum + n // 2`);
* the integer GELU is elementwise i32 ring arithmetic (`muli`, `subi`, `addi`), `minsi` for
  the clamp, `select` for the sign and one `shrsi`; it needs no check: the reference wraps
  every step to int32 as i32 arithmetic does;
* the integer layer norm takes a row's i32 sum, centres and shifts each element (`shrsi`), sums
  the squares from `eps`, takes the integer Newton square root in an `scf.while` (started from
  `math.ctlz`, divided with `arith.divui`), then `c*gamma / std + beta` with `arith.divsi`; the
  op verifier keeps the sum of squares within int32, so every step is exact or wraps as the
  reference does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from math import prod

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, bufferization, func, memref
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FunctionType,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    UnitAttr,
    UnrealizedConversionCastOp,
    i32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import tinyattn as ta
from tinyattn.dialects.builder import LoopBuilder
from tinyattn.dialects.dense import from_numpy
from tinyattn.driver.layer_report import LAYER_ATTR, tag
from tinyattn.lowering import kernels as k

ALIGNMENT = 16


def storage_type(element: Attribute) -> Attribute:
    """Memrefs hold signless integers (arith needs them); ui8 data is stored as i8."""
    if isinstance(element, IntegerType) and element.signedness.data != Signedness.SIGNLESS:
        return IntegerType(element.width.data)
    return element


def memref_type(tensor: Attribute) -> MemRefType[Attribute]:
    assert isinstance(tensor, TensorType)
    return MemRefType(storage_type(tensor.get_element_type()), tensor.get_shape())


def reshaped(b: LoopBuilder, ref: SSAValue, shape: Sequence[int]) -> SSAValue:
    """`ref` (contiguous, row-major) seen with another static shape."""
    typ = ref.type
    assert isinstance(typ, MemRefType)
    if tuple(typ.get_shape()) == tuple(shape):
        return ref
    strides = [prod(shape[i + 1 :]) for i in range(len(shape))]
    return b.insert(
        memref.ReinterpretCastOp(
            ref, [], [], [], [0], list(shape), strides, MemRefType(typ.get_element_type(), shape)
        )
    )


def _is_unsigned(value: SSAValue) -> bool:
    typ = value.type
    assert isinstance(typ, TensorType)
    element = typ.get_element_type()
    return isinstance(element, IntegerType) and element.signedness.data == Signedness.UNSIGNED


def _element(value: SSAValue) -> Attribute:
    typ = value.type
    assert isinstance(typ, TensorType)
    return typ.get_element_type()


@dataclass
class _Lowering:
    """The state of converting one function: where ops go, how to make scratch buffers and
    read-only globals (`constant(name_hint, data)`)."""

    builder: LoopBuilder
    constant: Callable[[str | None, DenseIntOrFPElementsAttr], SSAValue]

    def alloc(self, shape: Sequence[int], element: Attribute) -> SSAValue:
        return self.builder.insert(
            memref.AllocOp.get(storage_type(element), ALIGNMENT, list(shape))
        )

    def requant(
        self, op: Operation, name: str, result: Attribute, channels: int
    ) -> k.Requant | None:
        """`requant_epilogue` with per-channel values as globals."""
        return requant_epilogue(op, name, result, channels, self.constant)


def requant_epilogue(
    op: Operation,
    name: str,
    result: Attribute,
    channels: int,
    constant: Callable[[str | None, DenseIntOrFPElementsAttr], SSAValue],
) -> k.Requant | None:
    """The epilogue of `op`'s requant property `name` (None if absent) narrowing to element type
    `result` over a last axis of `channels`; `constant(name_hint, data)` makes the buffer of
    per-channel values."""
    attr = op.properties.get(name)
    if attr is None:
        return None
    assert isinstance(attr, ta.RequantAttr)
    if attr.channels() not in (1, channels):
        raise PassFailedException(
            f"'{op.name}' {name} has {attr.channels()} channels, expected 1 or {channels}"
        )

    def table(what: str, values: Sequence[int]) -> SSAValue:
        return constant(f"{name}_{what}", from_numpy(np.array(values, np.int32), i32))

    return k.Requant.of(attr, result, table)


OpLowering = Callable[[_Lowering, Operation, list[SSAValue], SSAValue], None]


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType | MemRefType)
    return tuple(typ.get_shape())


def _rows(b: LoopBuilder, ref: SSAValue, cols: int | None = None) -> tuple[SSAValue, int, int]:
    """`ref` seen as a matrix [rows, cols]; `cols` is the last axis unless given."""
    shape = _shape(ref)
    count = prod(shape)
    cols = cols or (shape[-1] if shape else 1)
    return reshaped(b, ref, (count // cols, cols)), count // cols, cols


def _matrix(
    b: LoopBuilder, ref: SSAValue, tensor: SSAValue, cols: int | None = None
) -> tuple[k.Matrix, int, int]:
    """`ref`, which holds the value of `tensor`, as a matrix [rows, cols] (`_rows`)."""
    view, rows, cols = _rows(b, ref, cols)
    return k.Matrix(view, unsigned=_is_unsigned(tensor)), rows, cols


def _lower_linear(low: _Lowering, op: ta.LinearOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, depth = _matrix(b, refs[0], op.x)
    y, _, cols = _matrix(b, out, op.result)
    init = k.vector_init(refs[2]) if len(refs) > 2 else None
    requant = low.requant(op, "requant", _element(op.result), cols)
    k.matmul(b, rows, cols, depth, x, k.Matrix(refs[1]), y, init, requant=requant)


def _elementwise(fn: Callable[[LoopBuilder, list[SSAValue]], SSAValue]) -> OpLowering:
    """An op computing `fn` of its operands' elements, narrowed by its `requant` if any."""

    def lower(low: _Lowering, op: Operation, refs: list[SSAValue], out: SSAValue):
        b = low.builder
        (result,) = op.results
        shape = _shape(out)
        requant = low.requant(op, "requant", _element(result), shape[-1] if shape else 1)
        # One flat row, unless a per-channel requant needs the channel (the column).
        cols = None if requant is not None and requant.channels > 1 else prod(shape)
        inputs = [_matrix(b, r, v, cols)[0] for r, v in zip(refs, op.operands, strict=True)]
        y, rows, cols = _matrix(b, out, result, cols)
        k.elementwise(b, rows, cols, inputs, y, fn, requant)

    return lower


def _unary(fn: Callable[[LoopBuilder, SSAValue], SSAValue]) -> OpLowering:
    return _elementwise(lambda b, values: fn(b, values[0]))


def _lower_gelu(low: _Lowering, op: ta.GeluOp, refs: list[SSAValue], out: SSAValue):
    params = op.igelu
    fn = k.gelu if params is None else (lambda b, x: k.igelu(b, x, params))
    _unary(fn)(low, op, refs, out)


def _lower_layernorm(low: _Lowering, op: ta.LayerNormOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, cols = _matrix(b, refs[0], op.x)
    y, _, _ = _matrix(b, out, op.result)
    _, gamma, beta = refs
    if op.ilayernorm is None:
        k.layernorm_rows(b, rows, cols, x, gamma, beta, op.epsilon.value.data, y)
        return
    requant = low.requant(op, "requant", _element(op.result), cols)
    k.ilayernorm_rows(b, rows, cols, x, gamma, beta, op.ilayernorm, y, requant)


def _lower_softmax(low: _Lowering, op: ta.SoftmaxOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, cols = _matrix(b, refs[0], op.x)
    y, _, _ = _matrix(b, out, op.result)
    if op.isoftmax is None:
        k.softmax_rows(b, rows, cols, x, y)
    else:
        k.isoftmax_rows(b, rows, cols, x, y, op.isoftmax, low.alloc((cols,), i32))


def _lower_mean(low: _Lowering, op: ta.MeanOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    shape = _shape(refs[0])
    axis = op.axis.value.data
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    x = reshaped(b, refs[0], (outer, shape[axis], inner))
    result = _shape(op.result)
    requant = low.requant(op, "requant", _element(op.result), result[-1] if result else 1)
    y = reshaped(b, out, (outer, inner))
    k.mean_axis(b, outer, shape[axis], inner, x, y, requant, _is_unsigned(op.x))


def _lower_attention(
    low: _Lowering, op: ta.MHSAOp | ta.FusedMHSAOp, refs: list[SSAValue], out: SSAValue
):
    b = low.builder
    s, e, p, h = op.dims()
    x = refs[0]
    *score_weights, wv, bv, wo, bo = refs[1:]
    # Integer attention keeps every intermediate activation in i8 (each stage requantized).
    activation = ta.i8 if op.is_integer() else ta.f32
    x_view = k.Matrix(x, unsigned=_is_unsigned(op.x))

    def requant(name: str, channels: int, result: Attribute = ta.i8) -> k.Requant | None:
        return low.requant(op, name, result, channels)

    def per_head(body: Callable[[LoopBuilder, SSAValue], None]) -> None:
        def step(bh: LoopBuilder, head: SSAValue, _):
            body(bh, head)
            return ()

        b.for_range(h, step)

    def project(weight: SSAValue, bias: SSAValue, width: int, requant_name: str) -> SSAValue:
        """[H, S, width] = X W[h] + b[h] for every head."""
        result = low.alloc((h, s, width), activation)
        epilogue = requant(requant_name, width)
        per_head(
            lambda bh, head: k.matmul(
                bh,
                s,
                width,
                e,
                x_view,
                k.Matrix(weight, ((0, head),)),
                k.Matrix(result, ((0, head),)),
                k.vector_init(bias, (head,)),
                requant=epilogue,
            )
        )
        return result

    scores = low.alloc((h, s, s), activation)
    score_requant = requant("score_requant", s)
    if isinstance(op, ta.FusedMHSAOp):
        qk = project(*score_weights, e, "qk_requant")
        per_head(
            lambda bh, head: k.matmul(
                bh,
                s,
                s,
                e,
                k.Matrix(qk, ((0, head),)),
                x_view.T(),
                k.Matrix(scores, ((0, head),)),
                requant=score_requant,
            )
        )
    else:
        wq, bq, wk, bk = score_weights
        q, key = project(wq, bq, p, "q_requant"), project(wk, bk, p, "k_requant")
        scale = None if op.scale is None else op.scale.value.data
        per_head(
            lambda bh, head: k.matmul(
                bh,
                s,
                s,
                p,
                k.Matrix(q, ((0, head),)),
                k.Matrix(key, ((0, head),)).T(),
                k.Matrix(scores, ((0, head),)),
                scale=scale,
                requant=score_requant,
            )
        )
    # Integer probabilities are unsigned: the softmax rewrites the i8 scores in place as ui8.
    probabilities_unsigned = op.isoftmax is not None
    if op.normalization.data == ta.SOFTMAX:
        isoftmax = op.isoftmax
        scratch = None if isoftmax is None else low.alloc((s,), i32)

        def normalize(bh: LoopBuilder, head: SSAValue) -> None:
            view = k.Matrix(scores, ((0, head),))
            if isoftmax is None:
                k.softmax_rows(bh, s, s, view, view)
            else:
                probs = k.Matrix(scores, ((0, head),), unsigned=True)
                k.isoftmax_rows(bh, s, s, view, probs, isoftmax, scratch)

        per_head(normalize)
    v = project(wv, bv, p, "v_requant")
    context = low.alloc((s, h, p), activation)
    context_requant = requant("context_requant", p)
    per_head(
        lambda bh, head: k.matmul(
            bh,
            s,
            p,
            s,
            k.Matrix(scores, ((0, head),), unsigned=probabilities_unsigned),
            k.Matrix(v, ((0, head),)),
            k.Matrix(context, ((1, head),)),
            requant=context_requant,
        )
    )
    concatenated = reshaped(b, context, (s, h * p))
    k.matmul(
        b,
        s,
        e,
        h * p,
        k.Matrix(concatenated),
        k.Matrix(reshaped(b, wo, (h * p, e))),
        k.Matrix(out, unsigned=_is_unsigned(op.result)),
        k.vector_init(bo),
        requant=requant("out_requant", e, _element(op.result)),
    )


LOWERINGS: dict[type[Operation], OpLowering] = {
    ta.MHSAOp: _lower_attention,
    ta.FusedMHSAOp: _lower_attention,
    ta.LinearOp: _lower_linear,
    ta.AddOp: _elementwise(lambda b, values: b.add(values[0], values[1])),
    ta.GeluOp: _lower_gelu,
    ta.ReluOp: _unary(k.relu),
    ta.LayerNormOp: _lower_layernorm,
    ta.SoftmaxOp: _lower_softmax,
    ta.MeanOp: _lower_mean,
    ta.RequantOp: _elementwise(lambda b, values: values[0]),
}


class _FunctionConverter:
    def __init__(self, module: ModuleOp, old: func.FuncOp):
        self.module = module
        self.old = old
        self.refs: dict[SSAValue, SSAValue] = {}
        self.symbols = {op.sym_name.data for op in module.ops if hasattr(op, "sym_name")}

    def convert(self) -> func.FuncOp:
        old = self.old
        returned = self._returned_values()
        inputs = [memref_type(t) for t in old.function_type.inputs]
        outputs = [memref_type(t) for t in old.function_type.outputs]
        block = Block(arg_types=[*inputs, *outputs])
        builder = LoopBuilder(InsertPoint.at_end(block))
        low = _Lowering(builder, lambda hint, data: self._global(builder, hint, data))
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
        new = func.FuncOp(
            old.sym_name.data, FunctionType.from_lists([*inputs, *outputs], []), Region(block)
        )
        if old.sym_visibility is not None:
            new.sym_visibility = old.sym_visibility
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
            self.refs[op.result] = self._global(b, op.result.name_hint, op.value)
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
            source, rows, cols = _rows(b, buffer, count)
            out, _, _ = _rows(b, reshaped(b, destinations[tensor], _shape(tensor)), count)
            k.elementwise(b, rows, cols, [k.Matrix(source)], k.Matrix(out), lambda bi, v: v[0])

    def _symbol(self, hint: str) -> str:
        """A fresh module-level symbol named after a weight (weights keep their model names)."""
        base = "".join(c if c.isalnum() or c in "_." else "_" for c in hint)
        name, suffix = base, 0
        while name in self.symbols:
            suffix += 1
            name = f"{base}_{suffix}"
        self.symbols.add(name)
        return name

    def _global(self, b: LoopBuilder, name: str | None, data: DenseIntOrFPElementsAttr) -> SSAValue:
        """A read-only global holding `data` (in its storage type) named after `name`, and a
        reference to it."""
        typ = memref_type(data.type)
        if typ.get_element_type() != data.get_element_type():
            data = DenseIntOrFPElementsAttr(
                TensorType(typ.get_element_type(), typ.get_shape()), data.data
            )
        symbol = self._symbol(name or "const")
        glob = memref.GlobalOp.get(
            StringAttr(symbol), typ, data, constant=UnitAttr(), alignment=ALIGNMENT
        )
        self.module.body.block.insert_op_before(glob, self.old)
        ref = b.insert(memref.GetGlobalOp(symbol, typ))
        if name:
            ref.name_hint = name
        return ref


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
class ConvertTinyattnToLoops(ModulePass):
    """Lower tensor-level tinyattn functions to memref functions of scf loop nests."""

    name = "convert-tinyattn-to-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if not any(
                isinstance(t, TensorType) for t in function.function_type.inputs
            ) and not any(
                isinstance(o, Operation) and o.dialect_name() == "tinyattn" for o in function.walk()
            ):
                continue
            new = _FunctionConverter(op, function).convert()
            op.body.block.insert_op_before(new, function)
            op.body.block.erase_op(function)
