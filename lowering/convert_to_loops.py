"""`convert-tinyattn-to-loops`: tensor-level tinyattn functions -> memref functions of loop nests.

This is the plain layer-by-layer schedule (the baseline the tiling passes improve on):

* the function takes its inputs and then its outputs as memrefs (destination passing) and returns
  nothing; the op producing a result writes straight into that output;
* tensor constants become `memref.global` constants (read-only data: flash on an MCU);
* every other tensor becomes a `memref.alloc`, freed (`memref.dealloc`) right after its last use,
  so buffer lifetimes are explicit for `plan-memory`; `tinyattn.reshape` is a reinterpreting view;
* attention materializes Q, K, V [H, S, P], the whole score map [H, S, S] and the head-interleaved
  context [S, H, P] (which is the concatenated layout the output projection reads).

Integer (int8) ops are not lowered yet: they end in a diagnostic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from math import prod

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
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint
from xdsl.utils.exceptions import PassFailedException

from tinyattn.dialects import tinyattn as ta
from tinyattn.lowering import kernels as k
from tinyattn.lowering.layer_report import LAYER_ATTR, tag
from tinyattn.lowering.loops import LoopBuilder

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


@dataclass
class _Lowering:
    """The state of converting one function: where ops go and how to make scratch buffers."""

    builder: LoopBuilder

    def alloc(self, shape: Sequence[int], element: Attribute) -> SSAValue:
        return self.builder.insert(
            memref.AllocOp.get(storage_type(element), ALIGNMENT, list(shape))
        )


OpLowering = Callable[[_Lowering, Operation, list[SSAValue], SSAValue], None]


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, TensorType | MemRefType)
    return tuple(typ.get_shape())


def _rows(b: LoopBuilder, ref: SSAValue) -> tuple[SSAValue, int, int]:
    """`ref` seen as a matrix [rows, last axis]."""
    shape = _shape(ref)
    rows, cols = prod(shape[:-1]), shape[-1]
    return reshaped(b, ref, (rows, cols)), rows, cols


def _flat(b: LoopBuilder, ref: SSAValue) -> SSAValue:
    return reshaped(b, ref, (prod(_shape(ref)),))


def _lower_linear(low: _Lowering, op: ta.LinearOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, depth = _rows(b, refs[0])
    y, _, cols = _rows(b, out)
    init = k.vector_init(refs[2]) if len(refs) > 2 else None
    k.matmul(b, rows, cols, depth, k.Matrix(x), k.Matrix(refs[1]), k.Matrix(y), init)


def _lower_add(low: _Lowering, op: ta.AddOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    flat = [_flat(b, ref) for ref in (*refs, out)]
    k.elementwise(b, prod(_shape(out)), flat[:2], flat[2], lambda bi, v: bi.add(v[0], v[1]))


def _unary(fn: Callable[[LoopBuilder, SSAValue], SSAValue]) -> OpLowering:
    def lower(low: _Lowering, op: Operation, refs: list[SSAValue], out: SSAValue):
        b = low.builder
        k.elementwise(
            b, prod(_shape(out)), [_flat(b, refs[0])], _flat(b, out), lambda bi, v: fn(bi, v[0])
        )

    return lower


def _lower_layernorm(low: _Lowering, op: ta.LayerNormOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, cols = _rows(b, refs[0])
    y, _, _ = _rows(b, out)
    k.layernorm_rows(
        b, rows, cols, k.Matrix(x), refs[1], refs[2], op.epsilon.value.data, k.Matrix(y)
    )


def _lower_softmax(low: _Lowering, op: ta.SoftmaxOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    x, rows, cols = _rows(b, refs[0])
    y, _, _ = _rows(b, out)
    k.softmax_rows(b, rows, cols, k.Matrix(x), k.Matrix(y))


def _lower_mean(low: _Lowering, op: ta.MeanOp, refs: list[SSAValue], out: SSAValue):
    b = low.builder
    shape = _shape(refs[0])
    axis = op.axis.value.data
    outer, inner = prod(shape[:axis]), prod(shape[axis + 1 :])
    x = reshaped(b, refs[0], (outer, shape[axis], inner))
    k.mean_axis(b, outer, shape[axis], inner, x, reshaped(b, out, (outer, inner)))


def _lower_attention(
    low: _Lowering, op: ta.MHSAOp | ta.FusedMHSAOp, refs: list[SSAValue], out: SSAValue
):
    b = low.builder
    s, e, p, h = op.dims()
    x = refs[0]
    *score_weights, wv, bv, wo, bo = refs[1:]

    def per_head(body: Callable[[LoopBuilder, SSAValue], None]) -> None:
        def step(bh: LoopBuilder, head: SSAValue, _):
            body(bh, head)
            return ()

        b.for_range(h, step)

    def project(weight: SSAValue, bias: SSAValue, width: int) -> SSAValue:
        """[H, S, width] = X W[h] + b[h] for every head."""
        result = low.alloc((h, s, width), ta.f32)
        per_head(
            lambda bh, head: k.matmul(
                bh,
                s,
                width,
                e,
                k.Matrix(x),
                k.Matrix(weight, ((0, head),)),
                k.Matrix(result, ((0, head),)),
                k.vector_init(bias, (head,)),
            )
        )
        return result

    scores = low.alloc((h, s, s), ta.f32)
    if isinstance(op, ta.FusedMHSAOp):
        qk = project(*score_weights, e)
        per_head(
            lambda bh, head: k.matmul(
                bh,
                s,
                s,
                e,
                k.Matrix(qk, ((0, head),)),
                k.Matrix(x).T(),
                k.Matrix(scores, ((0, head),)),
            )
        )
    else:
        wq, bq, wk, bk = score_weights
        q, key = project(wq, bq, p), project(wk, bk, p)
        scale = op.scale.value.data
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
            )
        )
    if op.normalization.data == ta.SOFTMAX:
        per_head(
            lambda bh, head: k.softmax_rows(
                bh, s, s, k.Matrix(scores, ((0, head),)), k.Matrix(scores, ((0, head),))
            )
        )
    v = project(wv, bv, p)
    context = low.alloc((s, h, p), ta.f32)
    per_head(
        lambda bh, head: k.matmul(
            bh,
            s,
            p,
            s,
            k.Matrix(scores, ((0, head),)),
            k.Matrix(v, ((0, head),)),
            k.Matrix(context, ((1, head),)),
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
        k.Matrix(out),
        k.vector_init(bo),
    )


LOWERINGS: dict[type[Operation], OpLowering] = {
    ta.MHSAOp: _lower_attention,
    ta.FusedMHSAOp: _lower_attention,
    ta.LinearOp: _lower_linear,
    ta.AddOp: _lower_add,
    ta.GeluOp: _unary(k.gelu),
    ta.ReluOp: _unary(k.relu),
    ta.LayerNormOp: _lower_layernorm,
    ta.SoftmaxOp: _lower_softmax,
    ta.MeanOp: _lower_mean,
}


def _is_integer_op(op: Operation) -> bool:
    return any(
        isinstance(v.type, TensorType) and isinstance(v.type.get_element_type(), IntegerType)
        for v in (*op.operands, *op.results)
    )


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
        low = _Lowering(LoopBuilder(InsertPoint.at_end(block)))
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
            self.refs[op.result] = self._global(b, op.result, op.value)
            return
        if isinstance(op, bufferization.ToBufferOp):
            op.memref.replace_all_uses_with(self.refs[op.tensor])
            return
        if isinstance(op, bufferization.ToTensorOp):
            self._bind_result(b, op.tensor, op.memref, destinations)
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
        if lowering is None or _is_integer_op(op):
            kind = "integer " if lowering is not None else ""
            raise PassFailedException(f"cannot lower {kind}'{op.name}' to loops yet")
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
            out = _flat(b, reshaped(b, destinations[tensor], _shape(tensor)))
            k.elementwise(b, count, [_flat(b, buffer)], out, lambda bi, v: v[0])

    def _symbol(self, hint: str) -> str:
        """A fresh module-level symbol named after a weight (weights keep their model names)."""
        base = "".join(c if c.isalnum() or c in "_." else "_" for c in hint)
        name, suffix = base, 0
        while name in self.symbols:
            suffix += 1
            name = f"{base}_{suffix}"
        self.symbols.add(name)
        return name

    def _global(self, b: LoopBuilder, value: SSAValue, data: DenseIntOrFPElementsAttr):
        typ = memref_type(value.type)
        name = self._symbol(value.name_hint or "const")
        glob = memref.GlobalOp.get(
            StringAttr(name), typ, data, constant=UnitAttr(), alignment=ALIGNMENT
        )
        self.module.body.block.insert_op_before(glob, self.old)
        ref = b.insert(memref.GetGlobalOp(name, typ))
        if value.name_hint:
            ref.name_hint = value.name_hint
        return ref


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
