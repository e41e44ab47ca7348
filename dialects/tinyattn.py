"""The `tinyattn` dialect: a transformer encoder block at tensor level.

Element types: `f32`, or integer-only int8 deployment where activations are `i8` (signed) or
`ui8` (unsigned, zero point 0), weights `i8`, biases and accumulators `i32`. An integer op that
narrows its int32 accumulator back to 8 bits carries a `#tinyattn.requant` attribute; the
signedness of its result type picks the clip range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    AnyFloat,
    DenseArrayBase,
    Float32Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    Signedness,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import OpTrait, Pure
from xdsl.utils.exceptions import VerifyException

i8 = IntegerType(8)
ui8 = IntegerType(8, Signedness.UNSIGNED)


class StaticShapes(OpTrait):
    """Every tensor or memref the op reads or writes has a static shape of positive
    dimensions: the compiler plans every byte of memory before the program runs."""

    def verify(self, op: Operation) -> None:
        for kind, values in (("operand", op.operands), ("result", op.results)):
            for index, value in enumerate(values):
                if not isinstance(value.type, TensorType | MemRefType):
                    continue
                shape = value.type.get_shape()
                if any(dim < 0 for dim in shape):
                    raise VerifyException(
                        f"{kind} {index} ({value.type}) has a dynamic dimension; "
                        "shapes must be static"
                    )
                if 0 in shape:
                    raise VerifyException(
                        f"{kind} {index} ({value.type}) has a dimension of size 0; "
                        "dimensions must be positive"
                    )

# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


class _KeywordParamsAttr(ParametrizedAttribute):
    """An attribute printed as `<name = value, ...>`; values are integers or integer lists."""

    def print_parameters(self, printer: Printer) -> None:
        fields = []
        for name, value in zip(self.param_names(), self.parameters, strict=True):
            if isinstance(value, IntAttr):
                fields.append(f"{name} = {value.data}")
            else:
                values = value.get_values()
                text = str(values[0]) if len(values) == 1 else f"[{', '.join(map(str, values))}]"
                fields.append(f"{name} = {text}")
        printer.print_string(f"<{', '.join(fields)}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        values: list[Attribute] = []
        with parser.in_angle_brackets():
            for index, (name, is_list) in enumerate(cls._param_kinds()):
                if index:
                    parser.parse_punctuation(",")
                parser.parse_keyword(name)
                parser.parse_punctuation("=")
                if not is_list:
                    values.append(IntAttr(parser.parse_integer()))
                    continue
                if parser.parse_optional_punctuation("[") is None:
                    ints = [parser.parse_integer()]
                else:
                    ints = parser.parse_comma_separated_list(
                        parser.Delimiter.NONE, parser.parse_integer
                    )
                    parser.parse_punctuation("]")
                values.append(DenseArrayBase.from_list(i64, ints))
        return values

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(name for name, _ in cls._param_kinds())

    @classmethod
    def _param_kinds(cls) -> tuple[tuple[str, bool], ...]:
        """(name, is an integer list) of each parameter, in order."""
        return cls.PARAMS


@irdl_attr_definition
class RequantAttr(_KeywordParamsAttr):
    """Requantization of an int32 accumulator to 8 bits, as QuantLib's RequantShift:
    `clip((x*mul + add + 2^(shift-1)) >> shift)`, rounding half up, clipped to the result type's
    range. `mul` and `add` are one value (per tensor) or one per channel of the last axis (of
    the first, C_out, on a convolution)."""

    name = "tinyattn.requant"
    PARAMS: ClassVar = (("mul", True), ("add", True), ("shift", False))

    mul: DenseArrayBase = param_def()
    add: DenseArrayBase = param_def()
    shift: IntAttr = param_def()

    def __init__(self, mul: int | Sequence[int], add: int | Sequence[int], shift: int):
        mul_list = [mul] if isinstance(mul, int) else list(mul)
        add_list = [add] if isinstance(add, int) else list(add)
        super().__init__(
            DenseArrayBase.from_list(i64, mul_list),
            DenseArrayBase.from_list(i64, add_list),
            IntAttr(shift),
        )

    def verify(self) -> None:
        if not 0 <= self.shift.data <= 31:
            raise VerifyException(f"requant shift must be in [0, 31], got {self.shift.data}")
        if len(self.mul.get_values()) == 0 or len(self.add.get_values()) == 0:
            raise VerifyException("requant mul and add must not be empty")

    def channels(self) -> int:
        """Number of per-channel values (1 for a per-tensor requantization)."""
        return max(len(self.mul.get_values()), len(self.add.get_values()))


@irdl_attr_definition
class ISoftmaxAttr(_KeywordParamsAttr):
    """I-BERT integer softmax parameters (QuantLib's iSoftmax): exp approximated by
    `(coeff_a*(p + coeff_b)^2 + coeff_c) >> z` with `z = floor(-x/log2)`, normalized to
    `n_levels - 1`."""

    name = "tinyattn.isoftmax"
    PARAMS: ClassVar = tuple(
        (name, False) for name in ("coeff_a", "coeff_b", "coeff_c", "log2", "n_levels")
    )

    coeff_a: IntAttr = param_def()
    coeff_b: IntAttr = param_def()
    coeff_c: IntAttr = param_def()
    log2: IntAttr = param_def()
    n_levels: IntAttr = param_def()

    def __init__(self, coeff_a: int, coeff_b: int, coeff_c: int, log2: int, n_levels: int = 256):
        super().__init__(*(IntAttr(v) for v in (coeff_a, coeff_b, coeff_c, log2, n_levels)))

    def verify(self) -> None:
        if self.log2.data <= 0:
            raise VerifyException(f"isoftmax log2 must be positive, got {self.log2.data}")
        if not 2 <= self.n_levels.data <= 256:
            raise VerifyException(
                f"isoftmax n_levels must be in [2, 256], got {self.n_levels.data}"
            )


@irdl_attr_definition
class IGeluAttr(_KeywordParamsAttr):
    """I-BERT integer GELU (Deeploy's GELU_s8_s32). With `d = min(|x|, -b) + b`, the int32
    `L = sign(x) * (one - d^2)` is I-BERT's second-order erf polynomial
    `sign(x) * (a (min(|x|, -b) + b)^2 + 1)` in units of `1/one`, and the result is
    `x * ((one + L) >> 1)`: GELU at the input scale divided by `one`. For an input of scale s,
    `b = floor(-1.769 / s')` and `one = round(1 / (0.2888 s'^2))` with `s' = s / sqrt(2)`."""

    name = "tinyattn.igelu"
    PARAMS: ClassVar = (("b", False), ("one", False))

    b: IntAttr = param_def()
    one: IntAttr = param_def()

    def __init__(self, b: int, one: int):
        super().__init__(IntAttr(b), IntAttr(one))

    def verify(self) -> None:
        if self.b.data >= 0:
            raise VerifyException(f"igelu b must be negative, got {self.b.data}")
        if self.one.data <= 0:
            raise VerifyException(f"igelu one must be positive, got {self.one.data}")


INT32_MAX = 2**31 - 1


def layernorm_square_bound(width: int, shift: int) -> int:
    """The largest `sum(c^2)` an integer layer norm over `width` 8-bit values can reach with
    `c = (width x - sum(x)) >> shift`: sum((x - mean)^2) <= width (255/2)^2, and the floor of
    the shift adds at most 1 to each |c| (Minkowski), so the bound is
    `width (width 255 / 2^(shift+1) + 1)^2`, rounded up."""
    numerator = width * (width * 255 + 2 ** (shift + 1)) ** 2
    return -(-numerator // 4 ** (shift + 1))


def min_layernorm_shift(width: int, eps: int) -> int | None:
    """The smallest `ilayernorm` shift whose sum of squares plus `eps` fits int32 (None if
    none does)."""
    for shift in range(32):
        if layernorm_square_bound(width, shift) + eps <= INT32_MAX:
            return shift
    return None


@irdl_attr_definition
class ILayerNormAttr(_KeywordParamsAttr):
    """I-BERT integer layer normalization. Each row of E values is centred exactly,
    `c = (E x - sum(x)) >> shift`, its deviation is `std = isqrt(sum(c^2) + eps)` by integer
    Newton iteration, and the int32 result is `trunc(c * gamma / std) + beta` (C division) with
    `gamma` and `beta` as i32 operands, i.e. `gamma (x - mean) / (sqrt(E) sigma) + beta`.
    `shift` keeps `sum(c^2)` within int32 for every input (the op verifier checks it); `eps` is
    the float epsilon in the units of `c^2` and at least 1, so `std` is never 0."""

    name = "tinyattn.ilayernorm"
    PARAMS: ClassVar = (("shift", False), ("eps", False))

    shift: IntAttr = param_def()
    eps: IntAttr = param_def()

    def __init__(self, shift: int, eps: int):
        super().__init__(IntAttr(shift), IntAttr(eps))

    def verify(self) -> None:
        if not 0 <= self.shift.data <= 31:
            raise VerifyException(f"ilayernorm shift must be in [0, 31], got {self.shift.data}")
        if not 1 <= self.eps.data <= INT32_MAX:
            raise VerifyException(
                f"ilayernorm eps must be in [1, {INT32_MAX}], got {self.eps.data}"
            )


@irdl_attr_definition
class QuantLibLayerNormAttr(_KeywordParamsAttr):
    """QuantLib's integer layer norm (iLayerNorm) as Deeploy's kernel computes it. Each row of
    E 8-bit values is centred on its truncated mean, `d = x - trunc(sum(x) / E)`, its
    deviation is `den = isqrt(floor(sum(d^2) / E) + 1)`, and the result is
    `(trunc(d * gamma / den) + beta) >> shift` with `d * gamma` exact in 64 bits (QuantLib's
    weights carry a scaler near 2^24), saturated to int32."""

    name = "tinyattn.quantlib_layernorm"
    PARAMS: ClassVar = (("shift", False),)

    shift: IntAttr = param_def()

    def __init__(self, shift: int):
        super().__init__(IntAttr(shift))

    def verify(self) -> None:
        if not 0 <= self.shift.data <= 62:
            raise VerifyException(
                f"quantlib_layernorm shift must be in [0, 62], got {self.shift.data}"
            )


_INTEGER_ONLY_ATTRS = (
    RequantAttr, ISoftmaxAttr, IGeluAttr, ILayerNormAttr, QuantLibLayerNormAttr
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Verification helpers: every message names the operand, the dimension, expected and got.
# ---------------------------------------------------------------------------------------------


def _tensor(value: SSAValue | Attribute, what: str) -> TensorType[Attribute]:
    typ = value.type if isinstance(value, SSAValue) else value
    if not isinstance(typ, TensorType):
        raise VerifyException(f"{what} must be a ranked tensor, got {typ}")
    return typ


def _expect_shape(typ: TensorType[Attribute], what: str, expected: Sequence[int], meaning: str):
    """Check `typ` has shape `expected`; `meaning` names the dimensions, e.g. "[H, E, P]"."""
    shape = list(typ.get_shape())
    if len(shape) != len(expected):
        raise VerifyException(
            f"{what} must have rank {len(expected)} {meaning}, got shape {_fmt(shape)}"
        )
    for dim, (got, want) in enumerate(zip(shape, expected, strict=True)):
        if got != want:
            raise VerifyException(
                f"{what} dimension {dim} must be {want} ({meaning} = {_fmt(expected)}), "
                f"got {got} (shape {_fmt(shape)})"
            )


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def is_int8(typ: Attribute) -> bool:
    """Whether `typ` is an 8-bit activation element type (`i8` signed or `ui8` unsigned)."""
    return typ in (i8, ui8)


def _element(typ: TensorType[Attribute]) -> Attribute:
    return typ.get_element_type()


def _expect_element(typ: TensorType[Attribute], what: str, allowed: Sequence[Attribute]):
    if _element(typ) not in allowed:
        names = " or ".join(str(a) for a in allowed)
        raise VerifyException(f"{what} must have element type {names}, got {_element(typ)}")


def _check_requant(
    op: IRDLOperation, attr_name: str, result: TensorType[Attribute] | None, channels: int
):
    """Integer narrowing is explicit: a requant attribute iff the result is 8-bit."""
    requant = op.properties.get(attr_name)
    narrowing = result is not None and is_int8(_element(result))
    if narrowing and not isinstance(requant, RequantAttr):
        raise VerifyException(f"'{attr_name}' is required for an 8-bit result")
    if not narrowing and requant is not None:
        raise VerifyException(f"'{attr_name}' is only allowed on an 8-bit result")
    if isinstance(requant, RequantAttr) and requant.channels() not in (1, channels):
        raise VerifyException(
            f"'{attr_name}' has {requant.channels()} channels, expected 1 or {channels}"
        )


def _check_activation_precision(op: IRDLOperation, x: TensorType[Attribute], what: str = "x"):
    _expect_element(x, f"operand '{what}'", (f32, i8, ui8))
    if _element(x) == f32:
        for name, value in op.properties.items():
            if isinstance(value, _INTEGER_ONLY_ATTRS):
                raise VerifyException(f"'{name}' is only allowed on integer ops")


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------

SOFTMAX = "softmax"
NO_NORMALIZATION = "none"

_ATTENTION_QUANT_DOC = """
    Integer form: `x` is i8/ui8, weights i8, biases i32, the result i8/ui8. Each stage that narrows
    an int32 accumulator carries its requantization (`*_requant`); the score scale is folded into
    `score_requant`. With `normalization = "softmax"` the scores go through the integer softmax
    given by `isoftmax` (an unsigned 8-bit probability); with `"none"` the requantized scores
    multiply V directly.
"""


class _AttentionBase(IRDLOperation):
    """What `mhsa` and `fused_mhsa` share: heads, normalization, value/output projections."""

    num_heads = prop_def(IntegerAttr[I64])
    normalization = opt_prop_def(StringAttr, default_value=StringAttr(SOFTMAX))
    isoftmax = opt_prop_def(ISoftmaxAttr)
    v_requant = opt_prop_def(RequantAttr)
    score_requant = opt_prop_def(RequantAttr)
    context_requant = opt_prop_def(RequantAttr)
    out_requant = opt_prop_def(RequantAttr)

    traits = traits_def(Pure(), StaticShapes())
    irdl_options = (ParsePropInAttrDict(),)

    # Names of the extra int8 requantizations of the score stage's left operand.
    SCORE_OPERAND_REQUANTS: ClassVar[tuple[str, ...]] = ()

    @property
    def heads(self) -> int:
        return self.num_heads.value.data

    def dims(self) -> tuple[int, int, int, int]:
        """(S, E, P, H) of this attention."""
        s, e = _tensor(self.operands[0], "operand 'x'").get_shape()
        h, p = _tensor(self.bv, "operand 'bv'").get_shape()
        return s, e, p, h

    def is_integer(self) -> bool:
        return is_int8(_element(_tensor(self.operands[0], "operand 'x'")))

    def _x_shape(self) -> tuple[int, int]:
        """(S, E), after checking that X is a rank-2 f32 or 8-bit tensor."""
        x = _tensor(self.operands[0], "operand 'x'")
        _expect_element(x, "operand 'x'", (f32, i8, ui8))
        if len(x.get_shape()) != 2:
            raise VerifyException(
                f"operand 'x' must have rank 2 [S, E], got shape {_fmt(x.get_shape())}"
            )
        if self.heads < 1:
            raise VerifyException(f"num_heads must be positive, got {self.heads}")
        s, e = x.get_shape()
        return s, e

    def _verify_common(
        self, p: int, weight_shapes: Mapping[str, tuple[Sequence[int], str]]
    ) -> None:
        """Check every operand against [S, E], H and the head size P (one P for Q, K and V)."""
        x = _tensor(self.operands[0], "operand 'x'")
        s, e = self._x_shape()
        h = self.heads
        shapes = {
            **weight_shapes,
            "wv": ((h, e, p), "[H, E, P]"),
            "bv": ((h, p), "[H, P]"),
            "wo": ((h, p, e), "[H, P, E]"),
            "bo": ((e,), "[E]"),
        }
        integer = is_int8(_element(x))
        for name, (shape, meaning) in shapes.items():
            typ = _tensor(getattr(self, name), f"operand '{name}'")
            _expect_shape(typ, f"operand '{name}'", shape, meaning)
            if integer:
                allowed = (i32,) if name.startswith("b") else (i8,)
            else:
                allowed = (f32,)
            _expect_element(typ, f"operand '{name}'", allowed)
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", (s, e), "[S, E]")
        _expect_element(result, "result", (i8, ui8) if integer else (f32,))
        self._verify_normalization_and_quant(integer)

    def _verify_normalization_and_quant(self, integer: bool) -> None:
        norm = self.normalization.data
        if norm not in (SOFTMAX, NO_NORMALIZATION):
            raise VerifyException(
                f'normalization must be "{SOFTMAX}" or "{NO_NORMALIZATION}", got "{norm}"'
            )
        requants = (
            *self.SCORE_OPERAND_REQUANTS,
            "v_requant",
            "score_requant",
            "context_requant",
            "out_requant",
        )
        s, e, p, _ = self.dims()
        # Per-channel values run along the columns of the stage's result.
        channels = {"qk_requant": e, "score_requant": s, "out_requant": e}
        for name in requants:
            attr = self.properties.get(name)
            if integer and attr is None:
                raise VerifyException(f"'{name}' is required on integer attention")
            if not integer and attr is not None:
                raise VerifyException(f"'{name}' is only allowed on integer attention")
            expected = channels.get(name, p)
            if isinstance(attr, RequantAttr) and attr.channels() not in (1, expected):
                raise VerifyException(
                    f"'{name}' has {attr.channels()} channels, expected 1 or {expected}"
                )
        wants_isoftmax = integer and norm == SOFTMAX
        if wants_isoftmax and self.isoftmax is None:
            raise VerifyException("'isoftmax' is required on integer attention with softmax")
        if not wants_isoftmax and self.isoftmax is not None:
            raise VerifyException("'isoftmax' is only allowed on integer attention with softmax")


def _attention_properties(
    num_heads: int, scale: float | None, extra: Mapping[str, Attribute]
) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {"num_heads": IntegerAttr(num_heads, i64), **extra}
    if scale is not None:
        props["scale"] = FloatAttr(scale, f32)
    return props


@irdl_op_definition
class MHSAOp(_AttentionBase):
    """Multi-head self-attention: per head h,
    `softmax(scale * (X Wq[h] + bq[h]) (X Wk[h] + bk[h])^T) (X Wv[h] + bv[h]) Wo[h]`, summed over
    heads, plus `bo`. Shapes: X [S, E]; Wq, Wk, Wv [H, E, P]; bq, bk, bv [H, P]; Wo [H, P, E];
    bo [E]; result [S, E]. The f32 form carries the score `scale` (usually 1/sqrt(P)).
    """

    __doc__ = (__doc__ or "") + _ATTENTION_QUANT_DOC

    name = "tinyattn.mhsa"

    x = operand_def(TensorType)
    wq = operand_def(TensorType)
    bq = operand_def(TensorType)
    wk = operand_def(TensorType)
    bk = operand_def(TensorType)
    wv = operand_def(TensorType)
    bv = operand_def(TensorType)
    wo = operand_def(TensorType)
    bo = operand_def(TensorType)
    result = result_def(TensorType)

    scale = opt_prop_def(FloatAttr[AnyFloat])
    q_requant = opt_prop_def(RequantAttr)
    k_requant = opt_prop_def(RequantAttr)

    SCORE_OPERAND_REQUANTS: ClassVar[tuple[str, ...]] = ("q_requant", "k_requant")

    assembly_format = (
        "$x `q` `(` $wq `,` $bq `)` `k` `(` $wk `,` $bk `)` `v` `(` $wv `,` $bv `)` "
        "`o` `(` $wo `,` $bo `)` attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self,
        x: SSAValue,
        q: tuple[SSAValue, SSAValue],
        k: tuple[SSAValue, SSAValue],
        v: tuple[SSAValue, SSAValue],
        o: tuple[SSAValue, SSAValue],
        *,
        num_heads: int,
        scale: float | None = None,
        result_type: Attribute | None = None,
        properties: Mapping[str, Attribute] = {},
    ):
        super().__init__(
            operands=[x, *q, *k, *v, *o],
            result_types=[result_type or SSAValue.get(x).type],
            properties=_attention_properties(num_heads, scale, properties),
        )

    def verify_(self) -> None:
        _, e = self._x_shape()
        wq = _tensor(self.wq, "operand 'wq'")
        if len(wq.get_shape()) != 3:
            raise VerifyException(
                f"operand 'wq' must have rank 3 [H, E, P], got shape {_fmt(wq.get_shape())}"
            )
        h, p = self.heads, wq.get_shape()[2]
        self._verify_common(
            p,
            {
                "wq": ((h, e, p), "[H, E, P]"),
                "bq": ((h, p), "[H, P]"),
                "wk": ((h, e, p), "[H, E, P]"),
                "bk": ((h, p), "[H, P]"),
            },
        )
        if self.is_integer() and self.scale is not None:
            raise VerifyException("'scale' is only allowed on f32 attention (int8 folds it)")
        if not self.is_integer() and self.scale is None:
            raise VerifyException("'scale' is required on f32 attention")


@irdl_op_definition
class FusedMHSAOp(_AttentionBase):
    """Fused-weight self-attention (FWSA): the scores are `(X Wqk[h] + bqk[h]) X^T` with
    `Wqk[h] = scale * Wq[h] Wk[h]^T` and `bqk[h] = scale * bq[h] Wk[h]^T` fused offline, so K is
    never computed. Shapes: Wqk [H, E, E]; bqk [H, E]; the rest as in `tinyattn.mhsa`.
    """

    __doc__ = (__doc__ or "") + _ATTENTION_QUANT_DOC

    name = "tinyattn.fused_mhsa"

    x = operand_def(TensorType)
    wqk = operand_def(TensorType)
    bqk = operand_def(TensorType)
    wv = operand_def(TensorType)
    bv = operand_def(TensorType)
    wo = operand_def(TensorType)
    bo = operand_def(TensorType)
    result = result_def(TensorType)

    qk_requant = opt_prop_def(RequantAttr)

    SCORE_OPERAND_REQUANTS: ClassVar[tuple[str, ...]] = ("qk_requant",)

    assembly_format = (
        "$x `qk` `(` $wqk `,` $bqk `)` `v` `(` $wv `,` $bv `)` `o` `(` $wo `,` $bo `)` "
        "attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self,
        x: SSAValue,
        qk: tuple[SSAValue, SSAValue],
        v: tuple[SSAValue, SSAValue],
        o: tuple[SSAValue, SSAValue],
        *,
        num_heads: int,
        result_type: Attribute | None = None,
        properties: Mapping[str, Attribute] = {},
    ):
        super().__init__(
            operands=[x, *qk, *v, *o],
            result_types=[result_type or SSAValue.get(x).type],
            properties=_attention_properties(num_heads, None, properties),
        )

    def verify_(self) -> None:
        _, e = self._x_shape()
        h = self.heads
        bv = _tensor(self.bv, "operand 'bv'")
        if len(bv.get_shape()) != 2:
            raise VerifyException(
                f"operand 'bv' must have rank 2 [H, P], got shape {_fmt(bv.get_shape())}"
            )
        self._verify_common(
            bv.get_shape()[1], {"wqk": ((h, e, e), "[H, E, E]"), "bqk": ((h, e), "[H, E]")}
        )


# ---------------------------------------------------------------------------------------------
# The rest of an encoder block
# ---------------------------------------------------------------------------------------------

_FORMAT = "attr-dict `:` functional-type(operands, results)"


class _TensorOp(IRDLOperation):
    traits = traits_def(Pure(), StaticShapes())
    irdl_options = (ParsePropInAttrDict(),)


def _check_integer_result(op: IRDLOperation, channels: int, wide: Sequence[Attribute] = (i32,)):
    """An integer op's result is its int32 accumulator, or 8 bits with a `requant`."""
    result = _tensor(op.results[0], "result")
    _expect_element(result, "result", (*wide, i8, ui8))
    _check_requant(op, "requant", result, channels)


def _present(**properties: Attribute | None) -> dict[str, Attribute]:
    """The optional properties that are set."""
    return {name: value for name, value in properties.items() if value is not None}


def _check_elementwise_integer(op: IRDLOperation, x: TensorType[Attribute], attr_name: str):
    """The integer form of an elementwise op: its parameters `attr_name`, the shape of `x`, and
    an int32 result or an 8-bit one with a `requant` (per tensor or per last-axis channel)."""
    if op.properties.get(attr_name) is None:
        raise VerifyException(f"'{attr_name}' is required on integer {op.name.split('.')[-1]}")
    result = _tensor(op.results[0], "result")
    _expect_shape(result, "result", x.get_shape(), "shape of 'x'")
    _check_integer_result(op, x.get_shape()[-1] if x.get_shape() else 1)


def check_squares_fit(width: int) -> None:
    """QuantLib's norms sum `width` squares of 8-bit values (or of their distances from the
    mean, at most 255) in int32 (the tensor and kernel verifiers)."""
    if width * 255 * 255 > INT32_MAX:
        raise VerifyException(f"sum(x^2) over E = {width} may exceed int32")


def check_integer_layernorm(norm: ILayerNormAttr | QuantLibLayerNormAttr, width: int) -> None:
    """That an integer layer norm over rows of `width` 8-bit values keeps its sums within int32
    for every input (the tensor and kernel verifiers)."""
    if isinstance(norm, QuantLibLayerNormAttr):
        check_squares_fit(width)
        return
    shift, eps = norm.shift.data, norm.eps.data
    reach = layernorm_square_bound(width, shift) + eps
    if reach > INT32_MAX:
        least = min_layernorm_shift(width, eps)
        advice = "no shift fits" if least is None else f"the shift must be at least {least}"
        raise VerifyException(
            f"'ilayernorm' shift {shift} lets sum(c^2) + eps reach {reach} for E = {width}, "
            f"more than int32 holds ({INT32_MAX}); {advice}"
        )


def _expect_same_type(op: IRDLOperation, x: TensorType[Attribute]) -> None:
    if op.results[0].type != x:
        raise VerifyException(f"result type {op.results[0].type} must equal operand type {x}")


@irdl_op_definition
class LinearOp(_TensorOp):
    """`x W + b` over the last axis: x [..., K], W [K, N], optional b [N] -> [..., N].

    Integer form: x i8/ui8, W i8, b i32; the result is the i32 accumulator, or i8/ui8 with a
    `requant` (per tensor or per output channel).
    """

    name = "tinyattn.linear"

    x = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)

    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x `,` $weight (`,` $bias^)? {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None = None,
        *,
        result_type: Attribute | None = None,
        requant: RequantAttr | None = None,
    ):
        if result_type is None:
            x_type = _tensor(SSAValue.get(x), "operand 'x'")
            n = _tensor(SSAValue.get(weight), "operand 'weight'").get_shape()[-1]
            result_type = TensorType(x_type.get_element_type(), [*x_type.get_shape()[:-1], n])
        super().__init__(
            operands=[x, weight, bias],
            result_types=[result_type],
            properties={"requant": requant} if requant else {},
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _check_activation_precision(self, x)
        shape = list(x.get_shape())
        if not shape:
            raise VerifyException("operand 'x' must have rank >= 1")
        weight = _tensor(self.weight, "operand 'weight'")
        w_shape = weight.get_shape()
        if len(w_shape) != 2:
            raise VerifyException(
                f"operand 'weight' must have rank 2 [K, N], got shape {_fmt(w_shape)}"
            )
        k, n = shape[-1], w_shape[1]
        _expect_shape(weight, "operand 'weight'", (k, n), "[K, N]")
        if self.bias is not None:
            _expect_shape(_tensor(self.bias, "operand 'bias'"), "operand 'bias'", (n,), "[N]")
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", (*shape[:-1], n), "[..., N]")
        if _element(x) == f32:
            _expect_element(weight, "operand 'weight'", (f32,))
            if self.bias is not None:
                _expect_element(_tensor(self.bias, "bias"), "operand 'bias'", (f32,))
            _expect_element(result, "result", (f32,))
            return
        _expect_element(weight, "operand 'weight'", (i8,))
        if self.bias is not None:
            _expect_element(_tensor(self.bias, "bias"), "operand 'bias'", (i32,))
        _check_integer_result(self, n)


@irdl_op_definition
class AddOp(_TensorOp):
    """Elementwise `lhs + rhs` of equal shapes (residual connections).

    Integer form: i8/ui8/i32 operands summed in i32; the result is i32, or i8/ui8 with a
    `requant`.
    """

    name = "tinyattn.add"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$lhs `,` $rhs {_FORMAT}"

    def __init__(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        *,
        result_type: Attribute | None = None,
        requant: RequantAttr | None = None,
    ):
        super().__init__(
            operands=[lhs, rhs],
            result_types=[result_type or SSAValue.get(lhs).type],
            properties={"requant": requant} if requant else {},
        )

    def verify_(self) -> None:
        lhs = _tensor(self.lhs, "operand 'lhs'")
        rhs = _tensor(self.rhs, "operand 'rhs'")
        result = _tensor(self.result, "result")
        shape = lhs.get_shape()
        _expect_shape(rhs, "operand 'rhs'", shape, "shape of 'lhs'")
        _expect_shape(result, "result", shape, "shape of 'lhs'")
        if _element(lhs) == f32:
            _expect_element(rhs, "operand 'rhs'", (f32,))
            _expect_element(result, "result", (f32,))
            _check_requant(self, "requant", None, 1)
            return
        integer = (i8, ui8, i32)
        _expect_element(lhs, "operand 'lhs'", integer)
        _expect_element(rhs, "operand 'rhs'", integer)
        _check_integer_result(self, shape[-1] if shape else 1)


@irdl_op_definition
class MatMulOp(_TensorOp):
    """`lhs @ rhs` of two activations: lhs [..., M, K], rhs [..., K, N] -> [..., M, N], the
    batch dimensions equal or one operand a plain matrix (shared by every batch).

    Integer form: 8-bit operands, the product summed in wrapping int32; the result is i32, or
    i8/ui8 with a `requant` (per tensor or per column).
    """

    name = "tinyattn.matmul"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)

    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$lhs `,` $rhs {_FORMAT}"

    def __init__(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        *,
        result_type: Attribute,
        requant: RequantAttr | None = None,
    ):
        super().__init__(
            operands=[lhs, rhs], result_types=[result_type], properties=_present(requant=requant)
        )

    def batch_shape(self) -> tuple[int, ...]:
        """The batch dimensions of the result."""
        return tuple(_tensor(self.result, "result").get_shape()[:-2])

    def verify_(self) -> None:
        lhs = _tensor(self.lhs, "operand 'lhs'")
        rhs = _tensor(self.rhs, "operand 'rhs'")
        a, b = list(lhs.get_shape()), list(rhs.get_shape())
        if len(a) < 2 or len(b) < 2:
            raise VerifyException(
                f"operands must have rank >= 2, got shapes {_fmt(a)} and {_fmt(b)}"
            )
        if a[-1] != b[-2]:
            raise VerifyException(
                f"the depth of 'lhs' {_fmt(a)} ({a[-1]}) must equal the rows of 'rhs' {_fmt(b)}"
            )
        batch = a[:-2] if len(a) > 2 else b[:-2]
        if len(a) > 2 and len(b) > 2 and a[:-2] != b[:-2]:
            raise VerifyException(
                f"batch dimensions {_fmt(a[:-2])} and {_fmt(b[:-2])} differ; they must be "
                "equal, or one operand a matrix"
            )
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", (*batch, a[-2], b[-1]), "[..., M, N]")
        if _element(lhs) == f32:
            _expect_element(rhs, "operand 'rhs'", (f32,))
            _expect_element(result, "result", (f32,))
            _check_requant(self, "requant", None, 1)
            return
        _expect_element(lhs, "operand 'lhs'", (i8, ui8))
        _expect_element(rhs, "operand 'rhs'", (i8, ui8))
        _check_integer_result(self, b[-1])


def broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether a tensor of `shape` broadcasts to `target` by NumPy's rules without growing it:
    aligned at the last axis, each dimension equal or 1."""
    if len(shape) > len(target):
        return False
    return all(d in (1, t) for d, t in zip(reversed(shape), reversed(target), strict=False))


# `tinyattn.map`'s functions, by the number of operands they take.
MAP_UNARY = ("sigmoid", "sqrt", "round")
MAP_BINARY = ("add", "sub", "mul", "div", "max", "min")


@irdl_op_definition
class MapOp(_TensorOp):
    """An f32 elementwise function: unary `sigmoid`, `sqrt`, `round` (half to even, as ONNX's
    Round), or binary `add`, `sub`, `mul`, `div`, `max`, `min` of two activations that
    broadcast (NumPy's rules) to the result: the float ops exporters emit around
    quantization and in hand-written blocks."""

    name = "tinyattn.map"

    fn = prop_def(StringAttr)
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = "$fn $inputs attr-dict `:` functional-type($inputs, results)"

    def __init__(self, fn: str, inputs: Sequence[SSAValue], result_type: Attribute):
        super().__init__(
            operands=[list(inputs)], result_types=[result_type], properties={"fn": StringAttr(fn)}
        )

    def verify_(self) -> None:
        fn = self.fn.data
        if fn not in (*MAP_UNARY, *MAP_BINARY):
            names = ", ".join((*MAP_UNARY, *MAP_BINARY))
            raise VerifyException(f"fn must be one of {names}, got '{fn}'")
        arity = 1 if fn in MAP_UNARY else 2
        if len(self.inputs) != arity:
            raise VerifyException(f"'{fn}' takes {arity} operands, got {len(self.inputs)}")
        result = _tensor(self.result, "result")
        _expect_element(result, "result", (f32,))
        for index, value in enumerate(self.inputs):
            typ = _tensor(value, f"operand {index}")
            _expect_element(typ, f"operand {index}", (f32,))
            if not broadcasts_to(typ.get_shape(), result.get_shape()):
                raise VerifyException(
                    f"operand {index} of shape {_fmt(typ.get_shape())} does not broadcast to "
                    f"the result's {_fmt(result.get_shape())}"
                )


@irdl_op_definition
class MulAddOp(_TensorOp):
    """`x * m + a` elementwise, `m` and `a` broadcast to the shape of `x` (NumPy's rules):
    constant scalings and offsets, such as Gemm's alpha and full-matrix beta·C, positional
    embeddings, a per-row or per-head requantization's multipliers, QuantLib's iNoNorm.

    Integer form: x i8/ui8/i32, m and a i8/ui8/i32, computed in wrapping int32; the result is
    i32, or i8/ui8 with a `requant` (per tensor or per channel of the last axis).
    """

    name = "tinyattn.muladd"

    x = operand_def(TensorType)
    m = operand_def(TensorType)
    a = operand_def(TensorType)
    result = result_def(TensorType)

    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x `,` $m `,` $a {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        m: SSAValue,
        a: SSAValue,
        *,
        result_type: Attribute | None = None,
        requant: RequantAttr | None = None,
    ):
        super().__init__(
            operands=[x, m, a],
            result_types=[result_type or SSAValue.get(x).type],
            properties=_present(requant=requant),
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        shape = x.get_shape()
        for name in ("m", "a"):
            typ = _tensor(getattr(self, name), f"operand '{name}'")
            if not broadcasts_to(typ.get_shape(), shape):
                raise VerifyException(
                    f"operand '{name}' of shape {_fmt(typ.get_shape())} does not broadcast to "
                    f"the shape of 'x' {_fmt(shape)}"
                )
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", shape, "shape of 'x'")
        integer = (i8, ui8, i32)
        if _element(x) == f32:
            for name in ("m", "a"):
                _expect_element(_tensor(getattr(self, name), name), f"operand '{name}'", (f32,))
            _expect_element(result, "result", (f32,))
            _check_requant(self, "requant", None, 1)
            return
        for name in ("x", "m", "a"):
            _expect_element(_tensor(getattr(self, name), name), f"operand '{name}'", integer)
        _check_integer_result(self, shape[-1] if shape else 1)


class _UnaryF32Op(_TensorOp):
    """An elementwise f32 op whose integer form comes with the int8 deployment path."""

    x = operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = f"$x {_FORMAT}"

    def __init__(self, x: SSAValue):
        super().__init__(operands=[x], result_types=[SSAValue.get(x).type])

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _expect_element(x, "operand 'x'", self.ELEMENT_TYPES)
        if self.result.type != x:
            raise VerifyException(f"result type {self.result.type} must equal operand type {x}")

    ELEMENT_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)


@irdl_op_definition
class GeluOp(_TensorOp):
    """GELU with the exact erf: `0.5 x (1 + erf(x / sqrt(2)))`.

    Integer form: x i8/ui8 with `igelu` (I-BERT's i-GELU); the result is the int32
    `x * ((one + L) >> 1)`, at the input scale divided by `one`, or i8/ui8 with a `requant`.
    """

    name = "tinyattn.gelu"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    igelu = opt_prop_def(IGeluAttr)
    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        *,
        igelu: IGeluAttr | None = None,
        requant: RequantAttr | None = None,
        result_type: Attribute | None = None,
    ):
        super().__init__(
            operands=[x],
            result_types=[result_type or SSAValue.get(x).type],
            properties=_present(igelu=igelu, requant=requant),
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _check_activation_precision(self, x)
        if _element(x) == f32:
            _expect_same_type(self, x)
            return
        _check_elementwise_integer(self, x, "igelu")


@irdl_op_definition
class ReluOp(_UnaryF32Op):
    """`max(x, 0)`; in integer form it keeps the (signed) 8-bit scale of its operand."""

    name = "tinyattn.relu"
    ELEMENT_TYPES: ClassVar[tuple[Attribute, ...]] = (f32, i8)


@irdl_op_definition
class LayerNormOp(_TensorOp):
    """Layer normalization over the last axis:
    `(x - mean) / sqrt(var + epsilon) * gamma + beta`, with x [..., E], gamma and beta [E].

    Integer form: x i8/ui8 with `ilayernorm` and i32 gamma and beta; `ilayernorm` is I-BERT's
    i-LayerNorm (`#tinyattn.ilayernorm`: the int32 `trunc(c * gamma / std) + beta`, i.e.
    `gamma (x - mean) / (sqrt(E) sigma) + beta`) or QuantLib's iLayerNorm
    (`#tinyattn.quantlib_layernorm`). The result is that int32, or i8/ui8 with a `requant`.
    `epsilon` stays the float model's; the integer forms have their own.
    """

    name = "tinyattn.layernorm"

    x = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    result = result_def(TensorType)

    epsilon = prop_def(FloatAttr[Float32Type])
    ilayernorm = opt_prop_def(ILayerNormAttr | QuantLibLayerNormAttr)
    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x `,` $gamma `,` $beta {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        gamma: SSAValue,
        beta: SSAValue,
        *,
        epsilon: float,
        ilayernorm: ILayerNormAttr | QuantLibLayerNormAttr | None = None,
        requant: RequantAttr | None = None,
        result_type: Attribute | None = None,
    ):
        super().__init__(
            operands=[x, gamma, beta],
            result_types=[result_type or SSAValue.get(x).type],
            properties={
                "epsilon": FloatAttr(epsilon, f32),
                **_present(ilayernorm=ilayernorm, requant=requant),
            },
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _check_activation_precision(self, x)
        if not x.get_shape():
            raise VerifyException("operand 'x' must have rank >= 1")
        e = x.get_shape()[-1]
        integer = _element(x) != f32
        for name in ("gamma", "beta"):
            typ = _tensor(getattr(self, name), f"operand '{name}'")
            _expect_shape(typ, f"operand '{name}'", (e,), "[E]")
            _expect_element(typ, f"operand '{name}'", (i32,) if integer else (f32,))
        if not integer:
            _expect_same_type(self, x)
            return
        _check_elementwise_integer(self, x, "ilayernorm")
        assert self.ilayernorm is not None
        check_integer_layernorm(self.ilayernorm, e)


@irdl_op_definition
class RMSNormOp(_TensorOp):
    """Integer RMS normalization over the last axis (QuantLib's iRMSNorm), x i8/ui8 [..., E],
    weight i32 [E]: per row `den = isqrt(floor(sum(x^2) / E) + 1)`, then
    `trunc(x * weight / den) >> shift` in int32 (Deeploy's kernel); the result is that i32,
    or i8/ui8 with a `requant`."""

    name = "tinyattn.rmsnorm"

    x = operand_def(TensorType)
    weight = operand_def(TensorType)
    result = result_def(TensorType)

    shift = prop_def(IntegerAttr[I64])
    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x `,` $weight {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        weight: SSAValue,
        *,
        shift: int,
        result_type: Attribute,
        requant: RequantAttr | None = None,
    ):
        super().__init__(
            operands=[x, weight],
            result_types=[result_type],
            properties={"shift": IntegerAttr(shift, i64), **_present(requant=requant)},
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _expect_element(x, "operand 'x'", (i8, ui8))
        if not x.get_shape():
            raise VerifyException("operand 'x' must have rank >= 1")
        e = x.get_shape()[-1]
        weight = _tensor(self.weight, "operand 'weight'")
        _expect_shape(weight, "operand 'weight'", (e,), "[E]")
        _expect_element(weight, "operand 'weight'", (i32,))
        if not 0 <= self.shift.value.data <= 31:
            raise VerifyException(f"shift must be in [0, 31], got {self.shift.value.data}")
        check_squares_fit(e)
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", x.get_shape(), "shape of 'x'")
        _check_integer_result(self, e)


@irdl_op_definition
class SoftmaxOp(_TensorOp):
    """Softmax over the last axis. Integer form: i8 scores -> ui8 probabilities through the
    integer softmax `isoftmax` (I-BERT's), or with the unit property `itamax` through ITA's
    (QuantLib's ITAMax: powers of two, one division per row)."""

    name = "tinyattn.softmax"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    isoftmax = opt_prop_def(ISoftmaxAttr)
    itamax = opt_prop_def(UnitAttr)

    assembly_format = f"$x {_FORMAT}"

    def __init__(
        self, x: SSAValue, *, isoftmax: ISoftmaxAttr | None = None, itamax: bool = False
    ):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        integer = isoftmax is not None or itamax
        result_type = TensorType(ui8, x_type.get_shape()) if integer else x_type
        super().__init__(
            operands=[x],
            result_types=[result_type],
            properties=_present(isoftmax=isoftmax, itamax=UnitAttr() if itamax else None),
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        result = _tensor(self.result, "result")
        _expect_element(x, "operand 'x'", (f32, i8))
        if not x.get_shape():
            raise VerifyException("operand 'x' must have rank >= 1")
        _expect_shape(result, "result", x.get_shape(), "shape of 'x'")
        integer = _element(x) == i8
        _expect_element(result, "result", (ui8,) if integer else (f32,))
        kinds = (self.isoftmax is not None) + (self.itamax is not None)
        if integer and kinds != 1:
            raise VerifyException("an integer softmax takes one of 'isoftmax' and 'itamax'")
        if not integer and kinds:
            raise VerifyException("'isoftmax' and 'itamax' are only allowed on integer softmax")


@irdl_op_definition
class MeanOp(_TensorOp):
    """Mean over one axis (a classifier head's pooling). The result keeps the axis as size 1 or
    drops it; its type says which.

    Integer form: x i8/ui8 summed in int32; an i32 result is the sum divided by the axis length,
    rounded half up, and an i8/ui8 result is the sum narrowed by a `requant` (which folds the
    division in).
    """

    name = "tinyattn.mean"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    axis = prop_def(IntegerAttr[I64])
    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        *,
        axis: int,
        keepdims: bool = False,
        requant: RequantAttr | None = None,
        element_type: Attribute | None = None,
    ):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        shape = list(x_type.get_shape())
        axis = axis % len(shape)
        if keepdims:
            shape[axis] = 1
        else:
            del shape[axis]
        super().__init__(
            operands=[x],
            result_types=[TensorType(element_type or x_type.get_element_type(), shape)],
            properties={"axis": IntegerAttr(axis, i64), **_present(requant=requant)},
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _check_activation_precision(self, x)
        shape = list(x.get_shape())
        axis = self.axis.value.data
        if not 0 <= axis < len(shape):
            raise VerifyException(f"axis {axis} out of range for operand 'x' of rank {len(shape)}")
        result = _tensor(self.result, "result")
        dropped = shape[:axis] + shape[axis + 1 :]
        kept = shape[:axis] + [1] + shape[axis + 1 :]
        if list(result.get_shape()) not in (dropped, kept):
            raise VerifyException(
                f"result shape must be {_fmt(dropped)} or {_fmt(kept)} (mean over axis {axis}), "
                f"got {_fmt(result.get_shape())}"
            )
        if _element(x) == f32:
            _expect_element(result, "result", (f32,))
            return
        _check_integer_result(self, result.get_shape()[-1] if result.get_shape() else 1)


@irdl_op_definition
class ReshapeOp(_TensorOp):
    """Reinterpret the row-major data of `x` with another shape (no data movement)."""

    name = "tinyattn.reshape"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = f"$x {_FORMAT}"

    def __init__(self, x: SSAValue, shape: Sequence[int]):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        super().__init__(operands=[x], result_types=[TensorType(x_type.get_element_type(), shape)])

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        result = _tensor(self.result, "result")
        if x.element_count() != result.element_count():
            raise VerifyException(
                f"result shape {_fmt(result.get_shape())} must have as many elements as "
                f"operand 'x' of shape {_fmt(x.get_shape())} ({x.element_count()})"
            )
        _expect_element(result, "result", (_element(x),))


def window_output(
    spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]
) -> list[int]:
    """The spatial shape a sliding window (convolution, pooling) produces: per axis
    `(size + pad_begin + pad_end - kernel) // stride + 1` (pads: the begins, then the ends)."""
    rank = len(kernel)
    return [
        (spatial[d] + pads[d] + pads[rank + d] - kernel[d]) // strides[d] + 1 for d in range(rank)
    ]


def _check_window(
    x_shape: Sequence[int], kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]
) -> list[int]:
    """Check a window's parameters against x [C, *spatial] (1-D or 2-D); its output shape."""
    rank = len(kernel)
    if rank not in (1, 2) or len(x_shape) != rank + 1:
        raise VerifyException(
            f"operand 'x' must be [C, *spatial] with 1 or 2 spatial axes matching the kernel "
            f"{_fmt(kernel)}, got shape {_fmt(x_shape)}"
        )
    if len(strides) != rank or len(pads) != 2 * rank:
        raise VerifyException(
            f"strides must have {rank} values and pads {2 * rank} (begins, then ends), got "
            f"{_fmt(strides)} and {_fmt(pads)}"
        )
    if min(strides) < 1 or min(pads) < 0 or min(kernel) < 1:
        raise VerifyException("strides and kernel sizes must be positive, pads non-negative")
    out = window_output(x_shape[1:], kernel, strides, pads)
    if min(out) < 1:
        raise VerifyException(f"the window leaves no output ({_fmt(out)})")
    return out


def _array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, list(values))


@irdl_op_definition
class ConvOp(_TensorOp):
    """ONNX Conv (dilation 1) of x [C_in, *spatial] (1-D or 2-D) with weight
    [C_out, C_in/groups, *kernel] and an optional bias [C_out]: result [C_out, *out]; `groups`
    1 or C_in (depthwise) or any divisor. Integer form: x 8-bit, weight i8, bias i32, zero
    padding, the sum in wrapping int32; the result is i32, or i8/ui8 with a `requant` per
    tensor or per output channel (its channels are the first axis here, C_out)."""

    name = "tinyattn.conv"

    x = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)

    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    groups = prop_def(IntegerAttr[I64])
    requant = opt_prop_def(RequantAttr)

    assembly_format = f"$x `,` $weight (`,` $bias^)? {_FORMAT}"

    def __init__(
        self,
        x: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None,
        *,
        strides: Sequence[int],
        pads: Sequence[int],
        groups: int,
        result_type: Attribute,
        requant: RequantAttr | None = None,
    ):
        super().__init__(
            operands=[x, weight, bias],
            result_types=[result_type],
            properties={
                "strides": _array(strides),
                "pads": _array(pads),
                "groups": IntegerAttr(groups, i64),
                **_present(requant=requant),
            },
        )

    def window(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(kernel, strides, pads)."""
        weight = _tensor(self.weight, "operand 'weight'")
        kernel = tuple(weight.get_shape()[2:])
        return kernel, tuple(self.strides.get_values()), tuple(self.pads.get_values())

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _check_activation_precision(self, x)
        weight = _tensor(self.weight, "operand 'weight'")
        if len(weight.get_shape()) < 3:
            raise VerifyException(
                f"operand 'weight' must be [C_out, C_in/groups, *kernel], got shape "
                f"{_fmt(weight.get_shape())}"
            )
        kernel, strides, pads = self.window()
        out = _check_window(x.get_shape(), kernel, strides, pads)
        c_in, (c_out, per_group) = x.get_shape()[0], weight.get_shape()[:2]
        groups = self.groups.value.data
        if groups < 1 or c_in % groups or c_out % groups or per_group * groups != c_in:
            raise VerifyException(
                f"groups={groups} does not split C_in={c_in} into groups of {per_group} "
                f"channels and C_out={c_out} evenly"
            )
        if self.bias is not None:
            bias = _tensor(self.bias, "operand 'bias'")
            _expect_shape(bias, "operand 'bias'", (c_out,), "[C_out]")
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", (c_out, *out), "[C_out, *out]")
        if _element(x) == f32:
            for value, what in ((self.weight, "weight"), (self.bias, "bias")):
                if value is not None:
                    _expect_element(_tensor(value, what), f"operand '{what}'", (f32,))
            _expect_element(result, "result", (f32,))
            return
        _expect_element(weight, "operand 'weight'", (i8,))
        if self.bias is not None:
            _expect_element(_tensor(self.bias, "bias"), "operand 'bias'", (i32,))
        _check_integer_result(self, c_out)


@irdl_op_definition
class MaxPoolOp(_TensorOp):
    """ONNX MaxPool of x [C, *spatial] (1-D or 2-D): padding never wins; any element type."""

    name = "tinyattn.maxpool"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    kernel = prop_def(DenseArrayBase[I64])
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])

    assembly_format = f"$x {_FORMAT}"

    def __init__(
        self, x: SSAValue, *, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]
    ):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        spatial = window_output(x_type.get_shape()[1:], kernel, strides, pads)
        shape = [x_type.get_shape()[0], *spatial]
        super().__init__(
            operands=[x],
            result_types=[TensorType(x_type.get_element_type(), shape)],
            properties={"kernel": _array(kernel), "strides": _array(strides), "pads": _array(pads)},
        )

    def window(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(kernel, strides, pads)."""
        return tuple(self.kernel.get_values()), tuple(self.strides.get_values()), tuple(
            self.pads.get_values()
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        out = _check_window(x.get_shape(), *self.window())
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", (x.get_shape()[0], *out), "[C, *out]")
        _expect_element(result, "result", (_element(x),))


@irdl_op_definition
class TransposeOp(_TensorOp):
    """Permute the axes of `x`: result axis i is operand axis `perm[i]` (data movement)."""

    name = "tinyattn.transpose"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    perm = prop_def(DenseArrayBase[I64])

    assembly_format = f"$x {_FORMAT}"

    def __init__(self, x: SSAValue, perm: Sequence[int]):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        shape = [x_type.get_shape()[axis] for axis in perm]
        super().__init__(
            operands=[x],
            result_types=[TensorType(x_type.get_element_type(), shape)],
            properties={"perm": DenseArrayBase.from_list(i64, list(perm))},
        )

    def permutation(self) -> tuple[int, ...]:
        return tuple(self.perm.get_values())

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        perm = self.permutation()
        if sorted(perm) != list(range(len(x.get_shape()))):
            raise VerifyException(
                f"perm {list(perm)} is not a permutation of the {len(x.get_shape())} axes of 'x'"
            )
        result = _tensor(self.result, "result")
        shape = [x.get_shape()[axis] for axis in perm]
        _expect_shape(result, "result", shape, "x's shape permuted")
        _expect_element(result, "result", (_element(x),))


@irdl_op_definition
class ConcatOp(_TensorOp):
    """Join tensors along `axis` (data movement): every other dimension equal."""

    name = "tinyattn.concat"

    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)

    axis = prop_def(IntegerAttr[I64])

    assembly_format = "$inputs attr-dict `:` functional-type($inputs, results)"

    def __init__(self, inputs: Sequence[SSAValue], axis: int):
        types = [_tensor(SSAValue.get(v), "operand") for v in inputs]
        shape = list(types[0].get_shape())
        shape[axis] = sum(t.get_shape()[axis] for t in types)
        super().__init__(
            operands=[list(inputs)],
            result_types=[TensorType(types[0].get_element_type(), shape)],
            properties={"axis": IntegerAttr(axis, i64)},
        )

    def verify_(self) -> None:
        result = _tensor(self.result, "result")
        shape, axis = list(result.get_shape()), self.axis.value.data
        if not 0 <= axis < len(shape):
            raise VerifyException(f"axis {axis} out of range for rank {len(shape)}")
        total = 0
        for index, value in enumerate(self.inputs):
            typ = _tensor(value, f"operand {index}")
            _expect_element(typ, f"operand {index}", (_element(result),))
            own = list(typ.get_shape())
            others = own[:axis] + own[axis + 1 :], shape[:axis] + shape[axis + 1 :]
            if len(own) != len(shape) or others[0] != others[1]:
                raise VerifyException(
                    f"operand {index} of shape {_fmt(own)} does not join the result "
                    f"{_fmt(shape)} along axis {axis}"
                )
            total += own[axis]
        if total != shape[axis]:
            raise VerifyException(
                f"the operands sum to {total} along axis {axis}, not {shape[axis]}"
            )


@irdl_op_definition
class SliceOp(_TensorOp):
    """`x[starts : starts + sizes * steps : steps]` on every axis (data movement); positive
    steps, the result's shape being `sizes`."""

    name = "tinyattn.slice"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    starts = prop_def(DenseArrayBase[I64])
    steps = prop_def(DenseArrayBase[I64])

    assembly_format = f"$x {_FORMAT}"

    def __init__(
        self, x: SSAValue, starts: Sequence[int], sizes: Sequence[int], steps: Sequence[int]
    ):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        super().__init__(
            operands=[x],
            result_types=[TensorType(x_type.get_element_type(), list(sizes))],
            properties={"starts": _array(starts), "steps": _array(steps)},
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        result = _tensor(self.result, "result")
        _expect_element(result, "result", (_element(x),))
        shape, sizes = x.get_shape(), result.get_shape()
        starts, steps = self.starts.get_values(), self.steps.get_values()
        if not len(shape) == len(sizes) == len(starts) == len(steps):
            raise VerifyException("starts, steps and the result need one entry per axis of 'x'")
        axes = zip(shape, starts, sizes, steps, strict=True)
        for axis, (dim, start, size, step) in enumerate(axes):
            if step < 1 or start < 0 or size < 1 or start + (size - 1) * step >= dim:
                raise VerifyException(
                    f"axis {axis}: {size} elements from {start} in steps of {step} leave [0, {dim})"
                )


@irdl_op_definition
class RequantOp(_TensorOp):
    """Narrow an i32 tensor (or an 8-bit one, widened to i32 first) to i8/ui8 with
    `#tinyattn.requant` (QuantLib's RequantShift)."""

    name = "tinyattn.requant"

    x = operand_def(TensorType)
    result = result_def(TensorType)

    requant = prop_def(RequantAttr)

    assembly_format = f"$x {_FORMAT}"

    def __init__(self, x: SSAValue, requant: RequantAttr, element_type: Attribute):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        super().__init__(
            operands=[x],
            result_types=[TensorType(element_type, x_type.get_shape())],
            properties={"requant": requant},
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _expect_element(x, "operand 'x'", (i32, i8, ui8))
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", x.get_shape(), "shape of 'x'")
        _check_integer_result(self, x.get_shape()[-1] if x.get_shape() else 1, wide=())


# The number of values an 8-bit activation can take: the length of a lookup table.
TABLE_LENGTH = 256


@irdl_op_definition
class LookupOp(_TensorOp):
    """`table[x - lowest]` elementwise: a function of an 8-bit activation given by its value at
    each of the 256 inputs (`lowest` is -128 for i8, 0 for ui8). Integer elementwise ops whose
    operand is 8-bit (QuantLib's iHardswish, TrueIntegerDiv, a RequantShift of an 8-bit
    tensor, and whatever RequantShift follows them) import as one table computed from their
    exact semantics: any such composition is exact as a table, and costs one load an element.
    The result takes the table's element type (i8, ui8 or i32)."""

    name = "tinyattn.lookup"

    x = operand_def(TensorType)
    table = operand_def(TensorType)
    result = result_def(TensorType)

    assembly_format = f"$x `,` $table {_FORMAT}"

    def __init__(self, x: SSAValue, table: SSAValue):
        x_type = _tensor(SSAValue.get(x), "operand 'x'")
        table_type = _tensor(SSAValue.get(table), "operand 'table'")
        super().__init__(
            operands=[x, table],
            result_types=[TensorType(_element(table_type), x_type.get_shape())],
        )

    def verify_(self) -> None:
        x = _tensor(self.x, "operand 'x'")
        _expect_element(x, "operand 'x'", (i8, ui8))
        table = _tensor(self.table, "operand 'table'")
        _expect_shape(table, "operand 'table'", (TABLE_LENGTH,), "[256]")
        _expect_element(table, "operand 'table'", (i8, ui8, i32))
        result = _tensor(self.result, "result")
        _expect_shape(result, "result", x.get_shape(), "shape of 'x'")
        _expect_element(result, "result", (_element(table),))


Tinyattn = Dialect(
    "tinyattn",
    [
        MHSAOp,
        FusedMHSAOp,
        LinearOp,
        MatMulOp,
        AddOp,
        MulAddOp,
        MapOp,
        LayerNormOp,
        RMSNormOp,
        ConvOp,
        MaxPoolOp,
        GeluOp,
        ReluOp,
        SoftmaxOp,
        MeanOp,
        ReshapeOp,
        TransposeOp,
        ConcatOp,
        SliceOp,
        RequantOp,
        LookupOp,
    ],
    [RequantAttr, ISoftmaxAttr, IGeluAttr, ILayerNormAttr, QuantLibLayerNormAttr],
)
