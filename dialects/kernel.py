"""The `kernel` dialect: the compute of one tile, destination-style on memrefs.

This is the level between the schedule and the instructions. The tiling passes (and
`convert-tinyattn-to-kernels` for the untiled ops) decide which tiles exist, where they live and
when they move; a kernel op says what is computed on them; `convert-kernels-to-loops` decides
how, per target, with a generic loop nest as the fallback (docs/architecture.md).

Every op reads its inputs and writes its `out` operand (which may be one of its inputs where the
op says so); it returns nothing. Operands are 2-D row-major views (strided subviews included)
unless the op says otherwise. Element types: f32 throughout, or integer: 8-bit data (i8 memrefs,
which also hold ui8 data), i32 biases and accumulators. An 8-bit operand holding unsigned data
is listed in `unsigned` (operand indices), as memrefs hold signless integers. An integer op whose
`out` is 8-bit narrows its i32 result with a `requant` epilogue (per tensor, or per column).

Upstream `linalg` named ops were considered and not used: `linalg.matmul` has no requant
epilogue, no accumulator other than `out` and no notion of unsigned 8-bit storage, and linalg
has no softmax/layer-norm of the integer (I-BERT) kind; wrapping them in generics would hide the
op a target wants to match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import prod

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    UnitAttr,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    traits_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from tinyattn.dialects.tinyattn import (
    MAP_BINARY,
    MAP_UNARY,
    IGeluAttr,
    ILayerNormAttr,
    ISoftmaxAttr,
    QuantLibLayerNormAttr,
    RequantAttr,
    StaticShapes,
    check_integer_layernorm,
    check_squares_fit,
    window_output,
)

MAP_FUNCTIONS = (
    "copy", "add", "relu", "gelu", "muladd", "sigmoid", "sqrt", "round", "sub", "mul", "div",
    "max", "min",
)  # fmt: skip
# The number of inputs of each map function (others: 1).
_MAP_ARITY = {"add": 2, "sub": 2, "mul": 2, "div": 2, "max": 2, "min": 2, "muladd": 3}
# The map functions of f32 data only: `tinyattn.map`'s, but `add`, which integers have too.
_FLOAT_MAPS = tuple(fn for fn in (*MAP_UNARY, *MAP_BINARY) if fn != "add")


class KernelOp(IRDLOperation):
    """What every kernel op has: the 8-bit operands holding unsigned data, and `out`."""

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(StaticShapes())

    unsigned = opt_prop_def(DenseArrayBase[I64])

    @property
    def out(self) -> SSAValue:
        return self.operands[-1]

    def is_unsigned(self, index: int) -> bool:
        """Whether operand `index` (negative: from the end, -1 is `out`) holds unsigned data."""
        if self.unsigned is None:
            return False
        return index % len(self.operands) in self.unsigned.get_values()

    def is_integer(self) -> bool:
        return isinstance(_element(self.out), IntegerType)

    def _verify_unsigned(self) -> None:
        if self.unsigned is None:
            return
        for index in self.unsigned.get_values():
            if not 0 <= index < len(self.operands):
                raise VerifyException(f"unsigned operand index {index} out of range")
            if _element(self.operands[index]) != IntegerType(8):
                raise VerifyException(f"unsigned operand {index} must hold 8-bit data (i8)")


Role = str | int  # an operand by name ("lhs", "x", "out", ...) or, for map inputs, position


def _properties(
    roles: Sequence[Role | None], unsigned: Iterable[Role], **optional: Attribute | None
) -> dict[str, Attribute]:
    """An op's properties: `unsigned`, the operands whose role (in operand order, absent
    operands None) is in `unsigned` (roles, not values: an op may read and write one buffer
    with different signedness, as the integer softmax in place), and the optional ones set."""
    wanted = set(unsigned)
    present = [role for role in roles if role is not None]
    indices = [index for index, role in enumerate(present) if role in wanted]
    properties: dict[str, Attribute] = (
        {"unsigned": DenseArrayBase.from_list(i64, indices)} if indices else {}
    )
    properties.update({name: value for name, value in optional.items() if value is not None})
    return properties


def _memref(value: SSAValue, what: str, rank: int | None = 2) -> MemRefType[Attribute]:
    typ = value.type
    if not isinstance(typ, MemRefType):
        raise VerifyException(f"{what} must be a memref, got {typ}")
    if rank is not None and len(typ.get_shape()) != rank:
        raise VerifyException(f"{what} must have rank {rank}, got {list(typ.get_shape())}")
    return typ


def _element(value: SSAValue) -> Attribute:
    typ = value.type
    assert isinstance(typ, MemRefType)
    return typ.get_element_type()


def _shape(value: SSAValue) -> tuple[int, ...]:
    typ = value.type
    assert isinstance(typ, MemRefType)
    return tuple(typ.get_shape())


def _expect_shape(value: SSAValue, what: str, shape: Sequence[int]) -> None:
    if _shape(value) != tuple(shape):
        raise VerifyException(f"{what} must have shape {list(shape)}, got {list(_shape(value))}")


def _expect_element(value: SSAValue, what: str, allowed: Sequence[Attribute]) -> None:
    if _element(value) not in allowed:
        names = " or ".join(str(t) for t in allowed)
        raise VerifyException(f"{what} must hold {names}, got {_element(value)}")


def _check_narrowing(op: KernelOp, channels: int) -> None:
    """An integer `out` is the i32 result, or 8 bits narrowed by a `requant` whose per-channel
    values (if any) are one per column (per output channel of a convolution)."""
    requant = op.properties.get("requant")
    narrow = _element(op.out) == IntegerType(8)
    if narrow and requant is None:
        raise VerifyException("an 8-bit 'out' needs a 'requant' epilogue")
    if requant is not None:
        if not narrow:
            raise VerifyException("'requant' narrows to an 8-bit 'out'")
        assert isinstance(requant, RequantAttr)
        if requant.channels() not in (1, channels):
            raise VerifyException(
                f"'requant' has {requant.channels()} channels, expected 1 or {channels}"
            )


@irdl_op_definition
class MatmulOp(KernelOp):
    """`out = epilogue(init + lhs · rhs)`: lhs [M, K]; rhs [K, N], or [N, K] with
    `transpose_rhs` (a row-major K read as Kᵀ: no transpose is ever copied); out [M, N], or
    [N, M] holding the product transposed with `transpose_out` (V computed as Vᵀ, so that A·V
    reads it depth-contiguous).

    The accumulator starts at zero, at `bias` [N] broadcast over the product's rows, or at
    `acc` (partial sums in `out`'s layout, possibly `out` itself). f32: the epilogue is the
    optional `scale`. Integer: 8-bit lhs/rhs, i32 bias/acc, the i32 sum wraps; an 8-bit `out`
    needs `requant`.
    """

    name = "kernel.matmul"

    lhs = operand_def(MemRefType)
    rhs = operand_def(MemRefType)
    bias = opt_operand_def(MemRefType)
    acc = opt_operand_def(MemRefType)
    output = operand_def(MemRefType)

    transpose_rhs = opt_prop_def(Attribute)  # a UnitAttr
    transpose_out = opt_prop_def(Attribute)  # a UnitAttr
    scale = opt_prop_def(FloatAttr[Float32Type])
    requant = opt_prop_def(RequantAttr)

    irdl_options = (ParsePropInAttrDict(), AttrSizedOperandSegments(as_property=True))

    assembly_format = (
        "$lhs `,` $rhs (`bias` $bias^)? (`acc` $acc^)? `into` $output attr-dict `:` "
        "type($lhs) `,` type($rhs) (`bias` type($bias)^)? (`acc` type($acc)^)? "
        "`into` type($output)"
    )

    def __init__(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        out: SSAValue,
        *,
        bias: SSAValue | None = None,
        acc: SSAValue | None = None,
        transpose_rhs: bool = False,
        transpose_out: bool = False,
        scale: float | None = None,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["lhs", "rhs", "bias" if bias else None, "acc" if acc else None, "out"],
            unsigned,
            transpose_rhs=UnitAttr() if transpose_rhs else None,
            transpose_out=UnitAttr() if transpose_out else None,
            scale=None if scale is None else FloatAttr(scale, f32),
            requant=requant,
        )
        super().__init__(
            operands=[lhs, rhs, [bias] if bias else [], [acc] if acc else [], out],
            properties=properties,
        )

    def dims(self) -> tuple[int, int, int]:
        """(M, N, K): rows, columns and depth of the product."""
        m, k = _shape(self.lhs)
        rows, cols = _shape(self.rhs)
        return m, rows if self.transpose_rhs is not None else cols, k

    def verify_(self) -> None:
        for name in ("lhs", "rhs", "output"):
            _memref(getattr(self, name), f"operand '{name}'")
        self._verify_unsigned()
        m, k = _shape(self.lhs)
        rhs_rows, rhs_cols = _shape(self.rhs)
        if (rhs_cols if self.transpose_rhs is not None else rhs_rows) != k:
            raise VerifyException(
                f"operand 'rhs' {list(_shape(self.rhs))} does not have the depth {k} of 'lhs'"
            )
        _, n, _ = self.dims()
        out_shape = (n, m) if self.transpose_out is not None else (m, n)
        _expect_shape(self.output, "operand 'out'", out_shape)
        if self.bias is not None and self.acc is not None:
            raise VerifyException("the accumulator starts at 'bias' or at 'acc', not both")
        if self.bias is not None:
            _memref(self.bias, "operand 'bias'", 1)
            _expect_shape(self.bias, "operand 'bias'", (n,))
        if self.acc is not None:
            _expect_shape(self.acc, "operand 'acc'", out_shape)
        wide = [v for v in (self.bias, self.acc) if v is not None]
        if _element(self.lhs) == f32:
            for value, what in ((self.rhs, "rhs"), (self.output, "out")):
                _expect_element(value, f"operand '{what}'", (f32,))
            for value in wide:
                _expect_element(value, "the accumulator init", (f32,))
            if self.requant is not None:
                raise VerifyException("'requant' applies to integer matmuls")
            return
        for value, what in ((self.lhs, "lhs"), (self.rhs, "rhs")):
            _expect_element(value, f"operand '{what}'", (IntegerType(8),))
        for value in wide:
            _expect_element(value, "the accumulator init", (i32,))
        _expect_element(self.output, "operand 'out'", (i32, IntegerType(8)))
        if self.scale is not None:
            raise VerifyException("'scale' applies to f32 matmuls (integers fold it in 'requant')")
        _check_narrowing(self, n)


@irdl_op_definition
class SoftmaxOp(KernelOp):
    """Softmax of each row of `x` [R, C] into `out` (may be `x`: each row is read before it is
    written). f32: max-subtracted. Integer (`isoftmax`): I-BERT's softmax of 8-bit `x` into
    unsigned 8-bit `out`, with an i32 `scratch` row [C] for the exponentials; or (`itamax`)
    ITA's, which needs no scratch."""

    name = "kernel.softmax"

    x = operand_def(MemRefType)
    scratch = opt_operand_def(MemRefType)
    output = operand_def(MemRefType)

    isoftmax = opt_prop_def(ISoftmaxAttr)
    itamax = opt_prop_def(UnitAttr)

    assembly_format = (
        "$x (`scratch` $scratch^)? `into` $output attr-dict `:` type($x) "
        "(`scratch` type($scratch)^)? `into` type($output)"
    )

    def __init__(
        self,
        x: SSAValue,
        out: SSAValue,
        *,
        isoftmax: ISoftmaxAttr | None = None,
        itamax: bool = False,
        scratch: SSAValue | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["x", "scratch" if scratch else None, "out"],
            unsigned,
            isoftmax=isoftmax,
            itamax=UnitAttr() if itamax else None,
        )
        super().__init__(operands=[x, [scratch] if scratch else [], out], properties=properties)

    def verify_(self) -> None:
        _memref(self.x, "operand 'x'")
        _memref(self.output, "operand 'out'")
        self._verify_unsigned()
        _expect_shape(self.output, "operand 'out'", _shape(self.x))
        cols = _shape(self.x)[1]
        if self.isoftmax is None and self.itamax is None:
            _expect_element(self.x, "operand 'x'", (f32,))
            _expect_element(self.output, "operand 'out'", (f32,))
            if self.scratch is not None:
                raise VerifyException("only the integer softmax takes a 'scratch' row")
            return
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        _expect_element(self.output, "operand 'out'", (IntegerType(8),))
        if self.itamax is not None:
            if self.isoftmax is not None or self.scratch is not None:
                raise VerifyException("'itamax' takes neither 'isoftmax' nor a 'scratch' row")
            return
        if self.scratch is None:
            raise VerifyException("the integer softmax needs an i32 'scratch' row")
        _memref(self.scratch, "operand 'scratch'", 1)
        _expect_shape(self.scratch, "operand 'scratch'", (cols,))
        _expect_element(self.scratch, "operand 'scratch'", (i32,))


@irdl_op_definition
class LayerNormOp(KernelOp):
    """Layer norm of each row of `x` [R, C] with `gamma`, `beta` [C] into `out`. f32: `epsilon`.
    Integer (`ilayernorm`): I-BERT's or QuantLib's layer norm of 8-bit `x` with i32
    gamma/beta (`tinyattn.layernorm`); an 8-bit `out` needs `requant`."""

    name = "kernel.layernorm"

    x = operand_def(MemRefType)
    gamma = operand_def(MemRefType)
    beta = operand_def(MemRefType)
    output = operand_def(MemRefType)

    epsilon = opt_prop_def(FloatAttr[Float32Type])
    ilayernorm = opt_prop_def(ILayerNormAttr | QuantLibLayerNormAttr)
    requant = opt_prop_def(RequantAttr)

    assembly_format = (
        "$x `,` $gamma `,` $beta `into` $output attr-dict `:` type($x) `,` type($gamma) `,` "
        "type($beta) `into` type($output)"
    )

    def __init__(
        self,
        x: SSAValue,
        gamma: SSAValue,
        beta: SSAValue,
        out: SSAValue,
        *,
        epsilon: float | None = None,
        ilayernorm: ILayerNormAttr | QuantLibLayerNormAttr | None = None,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["x", "gamma", "beta", "out"],
            unsigned,
            epsilon=None if epsilon is None else FloatAttr(epsilon, f32),
            ilayernorm=ilayernorm,
            requant=requant,
        )
        super().__init__(operands=[x, gamma, beta, out], properties=properties)

    def verify_(self) -> None:
        _memref(self.x, "operand 'x'")
        _memref(self.output, "operand 'out'")
        self._verify_unsigned()
        _expect_shape(self.output, "operand 'out'", _shape(self.x))
        cols = _shape(self.x)[1]
        for name in ("gamma", "beta"):
            _memref(getattr(self, name), f"operand '{name}'", 1)
            _expect_shape(getattr(self, name), f"operand '{name}'", (cols,))
        if self.ilayernorm is None:
            if self.epsilon is None:
                raise VerifyException("the f32 layer norm needs 'epsilon'")
            for name in ("x", "gamma", "beta", "output"):
                _expect_element(getattr(self, name), f"operand '{name}'", (f32,))
            return
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        for name in ("gamma", "beta"):
            _expect_element(getattr(self, name), f"operand '{name}'", (i32,))
        _expect_element(self.output, "operand 'out'", (i32, IntegerType(8)))
        _check_narrowing(self, cols)
        check_integer_layernorm(self.ilayernorm, cols)


@irdl_op_definition
class RMSNormOp(KernelOp):
    """Integer RMS norm of each row of 8-bit `x` [R, C] with i32 `weight` [C] into `out`
    (`tinyattn.rmsnorm`); an 8-bit `out` needs `requant`."""

    name = "kernel.rmsnorm"

    x = operand_def(MemRefType)
    weight = operand_def(MemRefType)
    output = operand_def(MemRefType)

    shift = prop_def(IntegerAttr[I64])
    requant = opt_prop_def(RequantAttr)

    assembly_format = (
        "$x `,` $weight `into` $output attr-dict `:` type($x) `,` type($weight) `into` "
        "type($output)"
    )

    def __init__(
        self,
        x: SSAValue,
        weight: SSAValue,
        out: SSAValue,
        *,
        shift: int,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["x", "weight", "out"], unsigned, shift=IntegerAttr(shift, i64), requant=requant
        )
        super().__init__(operands=[x, weight, out], properties=properties)

    def verify_(self) -> None:
        _memref(self.x, "operand 'x'")
        _memref(self.output, "operand 'out'")
        _memref(self.weight, "operand 'weight'", 1)
        self._verify_unsigned()
        _expect_shape(self.output, "operand 'out'", _shape(self.x))
        cols = _shape(self.x)[1]
        _expect_shape(self.weight, "operand 'weight'", (cols,))
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        _expect_element(self.weight, "operand 'weight'", (i32,))
        _expect_element(self.output, "operand 'out'", (i32, IntegerType(8)))
        _check_narrowing(self, cols)
        check_squares_fit(cols)


@irdl_op_definition
class MapOp(KernelOp):
    """`out[i, j] = fn(inputs[0][i, j], ...)`, all [R, C] (or all of one other shape, whose
    last axis is the channel): `copy` (one input), `add` (two), `muladd` (three: x * m + a; a
    broadcast operand is a view with stride 0), `relu`, `gelu` (one; integer GELU with `igelu`);
    f32 only: `sigmoid`, `sqrt`, `round` (one), `sub`, `mul`, `div`, `max`, `min` (two).
    Integers compute in i32 and an 8-bit `out` is narrowed by `requant` (per tensor or per
    column). `out` may be an input."""

    name = "kernel.map"

    fn = prop_def(StringAttr)
    inputs = var_operand_def(MemRefType)
    output = operand_def(MemRefType)

    igelu = opt_prop_def(IGeluAttr)
    requant = opt_prop_def(RequantAttr)

    assembly_format = "$fn $inputs `into` $output attr-dict `:` type($inputs) `into` type($output)"

    def __init__(
        self,
        fn: str,
        inputs: Sequence[SSAValue],
        out: SSAValue,
        *,
        igelu: IGeluAttr | None = None,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            [*range(len(inputs)), "out"],
            unsigned,
            fn=StringAttr(fn),
            igelu=igelu,
            requant=requant,
        )
        super().__init__(operands=[list(inputs), out], properties=properties)

    def verify_(self) -> None:
        fn = self.fn.data
        if fn not in MAP_FUNCTIONS:
            raise VerifyException(f"fn must be one of {', '.join(MAP_FUNCTIONS)}, got '{fn}'")
        arity = _MAP_ARITY.get(fn, 1)
        if len(self.inputs) != arity:
            raise VerifyException(f"'{fn}' takes {arity} inputs, got {len(self.inputs)}")
        if not _memref(self.output, "operand 'out'", None).get_shape():
            raise VerifyException("operand 'out' must have rank >= 1")
        self._verify_unsigned()
        for index, value in enumerate(self.inputs):
            _memref(value, f"input {index}", None)
            _expect_shape(value, f"input {index}", _shape(self.output))
        if self.igelu is not None and fn != "gelu":
            raise VerifyException("'igelu' belongs to 'gelu'")
        floats = [_element(v) == f32 for v in (*self.inputs, self.output)]
        if fn in _FLOAT_MAPS and not all(floats):
            raise VerifyException(f"'{fn}' maps f32 data")
        if all(floats):
            if self.requant is not None or self.igelu is not None:
                raise VerifyException("'requant' and 'igelu' apply to integer maps")
            return
        if any(floats):
            raise VerifyException("inputs and 'out' must all be f32 or all integers")
        if fn == "gelu" and self.igelu is None:
            raise VerifyException("the integer gelu needs 'igelu'")
        # copy and relu of 8-bit data stay within 8 bits: they narrow nothing.
        keeps_range = fn in ("copy", "relu") and _element(self.inputs[0]) == _element(self.output)
        if self.requant is not None or not keeps_range:
            _check_narrowing(self, _shape(self.output)[-1])


@irdl_op_definition
class MeanOp(KernelOp):
    """`out[o, i] = mean_a x[o, a, i]`: x [O, A, I], out [O, I]. Integers sum in i32; the mean
    is `requant(sum)` (per tensor, or per channel of the result's last axis) or, without one,
    the sum divided by A rounding half up (into 8 bits, or the i32 the tensor level states)."""

    name = "kernel.mean"

    x = operand_def(MemRefType)
    output = operand_def(MemRefType)

    requant = opt_prop_def(RequantAttr)

    assembly_format = "$x `into` $output attr-dict `:` type($x) `into` type($output)"

    def __init__(
        self,
        x: SSAValue,
        out: SSAValue,
        *,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(["x", "out"], unsigned, requant=requant)
        super().__init__(operands=[x, out], properties=properties)

    def verify_(self) -> None:
        _memref(self.x, "operand 'x'", 3)
        _memref(self.output, "operand 'out'")
        self._verify_unsigned()
        outer, _, inner = _shape(self.x)
        _expect_shape(self.output, "operand 'out'", (outer, inner))
        if _element(self.x) == f32:
            _expect_element(self.output, "operand 'out'", (f32,))
            if self.requant is not None:
                raise VerifyException("'requant' applies to integer means")
            return
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        if self.requant is not None:
            _expect_element(self.output, "operand 'out'", (IntegerType(8),))
        else:
            _expect_element(self.output, "operand 'out'", (IntegerType(8), i32))


def _window_output(op: KernelOp, x: SSAValue, kernel: Sequence[int]) -> list[int]:
    """The [OH, OW] a valid 2-D window (2 kernel sizes, 2 strides >= 1, 4 pads >= 0) over
    x [C, H, W] produces, at least 1 x 1."""
    _memref(x, "operand 'x'", 3)
    strides, pads = op.strides.get_values(), op.pads.get_values()  # type: ignore[attr-defined]
    if len(kernel) != 2 or len(strides) != 2 or len(pads) != 4:
        raise VerifyException("a 2-D window: 2 kernel sizes, 2 strides, 4 pads")
    if min(kernel) < 1 or min(strides) < 1 or min(pads) < 0:
        raise VerifyException("kernel sizes and strides must be positive, pads non-negative")
    out = window_output(_shape(x)[1:], kernel, strides, pads)
    if min(out) < 1:
        raise VerifyException(f"the window leaves no output ({out})")
    return out


def _check_window_3d(op: KernelOp, x: SSAValue, kernel: Sequence[int], channels: int) -> None:
    """x [C, H, W] and out [channels, OH, OW], the window's output."""
    out_h, out_w = _window_output(op, x, kernel)
    _memref(op.out, "operand 'out'", 3)
    if _shape(op.out) != (channels, out_h, out_w):
        raise VerifyException(
            f"operand 'out' must be [{channels}, {out_h}, {out_w}], got {list(_shape(op.out))}"
        )


@irdl_op_definition
class ConvOp(KernelOp):
    """2-D convolution (dilation 1, zero padding) of x [C_in, H, W] with weight
    [C_out, C_in/groups, KH, KW] and an optional bias [C_out] into out [C_out, OH, OW]; integer:
    8-bit x, i8 weight, i32 bias, an i32 sum narrowed into 8 bits by a `requant` per tensor or
    per output channel (the first axis of `out`)."""

    name = "kernel.conv"

    x = operand_def(MemRefType)
    weight = operand_def(MemRefType)
    bias = opt_operand_def(MemRefType)
    output = operand_def(MemRefType)

    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    groups = prop_def(IntegerAttr[I64])
    requant = opt_prop_def(RequantAttr)

    assembly_format = (
        "$x `,` $weight (`bias` $bias^)? `into` $output attr-dict `:` type($x) `,` "
        "type($weight) (`bias` type($bias)^)? `into` type($output)"
    )

    def __init__(
        self,
        x: SSAValue,
        weight: SSAValue,
        out: SSAValue,
        *,
        bias: SSAValue | None = None,
        strides: Sequence[int],
        pads: Sequence[int],
        groups: int,
        requant: RequantAttr | None = None,
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["x", "weight", "bias" if bias else None, "out"],
            unsigned,
            strides=DenseArrayBase.from_list(i64, list(strides)),
            pads=DenseArrayBase.from_list(i64, list(pads)),
            groups=IntegerAttr(groups, i64),
            requant=requant,
        )
        super().__init__(operands=[x, weight, [bias] if bias else [], out], properties=properties)

    def verify_(self) -> None:
        weight = _memref(self.weight, "operand 'weight'", 4)
        c_out, per_group = weight.get_shape()[:2]
        _check_window_3d(self, self.x, weight.get_shape()[2:], c_out)
        self._verify_unsigned()
        groups = self.groups.value.data
        if groups < 1 or per_group * groups != _shape(self.x)[0] or c_out % groups:
            raise VerifyException(
                f"weight [C_out, C_in/groups, KH, KW] does not fit x with groups={groups}"
            )
        if self.bias is not None:
            _memref(self.bias, "operand 'bias'", 1)
            _expect_shape(self.bias, "operand 'bias'", (c_out,))
        if _element(self.x) == f32:
            _expect_element(self.weight, "operand 'weight'", (f32,))
            if self.bias is not None:
                _expect_element(self.bias, "operand 'bias'", (f32,))
            _expect_element(self.output, "operand 'out'", (f32,))
            if self.requant is not None:
                raise VerifyException("'requant' applies to integer convolutions")
            return
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        _expect_element(self.weight, "operand 'weight'", (IntegerType(8),))
        if self.bias is not None:
            _expect_element(self.bias, "operand 'bias'", (i32,))
        _expect_element(self.output, "operand 'out'", (i32, IntegerType(8)))
        _check_narrowing(self, c_out)


class _WindowOp(KernelOp):
    """An op of a 2-D window over x [C, H, W] into `out`: kernel (KH, KW), strides, pads
    (top, left, bottom, right)."""

    x = operand_def(MemRefType)
    output = operand_def(MemRefType)

    kernel = prop_def(DenseArrayBase[I64])
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])

    assembly_format = "$x `into` $output attr-dict `:` type($x) `into` type($output)"

    def __init__(
        self,
        x: SSAValue,
        out: SSAValue,
        *,
        kernel: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        unsigned: Iterable[Role] = (),
    ):
        properties = _properties(
            ["x", "out"],
            unsigned,
            kernel=DenseArrayBase.from_list(i64, list(kernel)),
            strides=DenseArrayBase.from_list(i64, list(strides)),
            pads=DenseArrayBase.from_list(i64, list(pads)),
        )
        super().__init__(operands=[x, out], properties=properties)


@irdl_op_definition
class Im2ColOp(_WindowOp):
    """The patches of the window, one row per output position:
    `out[oy*OW + ox, (c*KH + ky)*KW + kx] = x[c, oy*sy + ky - top, ox*sx + kx - left]`, zero in
    the padding; out [OH*OW, C*KH*KW]. A convolution is then a matmul of these rows with the
    weights [C_out, C*KH*KW] (the target's matmul kernel)."""

    name = "kernel.im2col"

    def verify_(self) -> None:
        kernel = self.kernel.get_values()
        out_h, out_w = _window_output(self, self.x, kernel)
        _memref(self.output, "operand 'out'")
        self._verify_unsigned()
        channels = _shape(self.x)[0]
        _expect_shape(self.output, "operand 'out'", (out_h * out_w, channels * prod(kernel)))
        _expect_element(self.output, "operand 'out'", (_element(self.x),))


@irdl_op_definition
class MaxPoolOp(_WindowOp):
    """2-D max pooling into out [C, OH, OW]; padding never wins."""

    name = "kernel.maxpool"

    def verify_(self) -> None:
        _check_window_3d(self, self.x, self.kernel.get_values(), _shape(self.x)[0])
        self._verify_unsigned()
        _expect_element(self.output, "operand 'out'", (_element(self.x),))


@irdl_op_definition
class LookupOp(KernelOp):
    """`out[i, j] = table[x[i, j] - lowest]`: x 8-bit [R, C] (`lowest` -128, or 0 where x is
    unsigned), table [256] of `out`'s element type (i8 or i32)."""

    name = "kernel.lookup"

    x = operand_def(MemRefType)
    table = operand_def(MemRefType)
    output = operand_def(MemRefType)

    assembly_format = (
        "$x `,` $table `into` $output attr-dict `:` type($x) `,` type($table) `into` "
        "type($output)"
    )

    def __init__(self, x: SSAValue, table: SSAValue, out: SSAValue, *, unsigned=()):
        properties = _properties(["x", "table", "out"], unsigned)
        super().__init__(operands=[x, table, out], properties=properties)

    def verify_(self) -> None:
        _memref(self.x, "operand 'x'")
        _memref(self.output, "operand 'out'")
        _memref(self.table, "operand 'table'", 1)
        self._verify_unsigned()
        _expect_shape(self.output, "operand 'out'", _shape(self.x))
        _expect_shape(self.table, "operand 'table'", (256,))
        _expect_element(self.x, "operand 'x'", (IntegerType(8),))
        _expect_element(self.table, "operand 'table'", (IntegerType(8), i32))
        _expect_element(self.output, "operand 'out'", (_element(self.table),))


KERNEL_OPS: tuple[type[Operation], ...] = (
    MatmulOp,
    SoftmaxOp,
    LayerNormOp,
    RMSNormOp,
    MapOp,
    MeanOp,
    LookupOp,
    ConvOp,
    Im2ColOp,
    MaxPoolOp,
)

Kernel = Dialect("kernel", list(KERNEL_OPS), [])
