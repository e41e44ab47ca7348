"""tinyattn's dialects for upstream MLIR: their IRDL, and IR that `mlir-opt-22 --irdl-file` reads.

`irdl_text()` states every op, attribute and type of the `tinyattn`, `kernel` and `dma` dialects
in IRDL, which `mlir-opt-22 --irdl-file=FILE` loads as extensible dialects. `InteropPrinter`
prints IR in the form those dialects parse; every tool's parser (`driver.parsing`) reads back
what mlir-opt prints of it, by the names and layout `driver.interop` defines.

What the IRDL states: each op's operands and results by name, count and kind (single, optional,
variadic), each a tensor, a memref or a `!dma.token`; its required properties, as attributes, by
kind (integer, float, string, dense array, unit, one of our attributes), and the functions
`tinyattn.map` and `kernel.map` take (`fn`, one of a set of strings); each attribute's
parameters by kind. What it cannot state, so only tinyattn verifies it:

- Everything the verifiers compute: shapes and how they relate (`[H, E, P]`, window outputs,
  broadcasting), element types (`irdl.base` names a builtin type or attribute's kind, not its
  parameters: not a tensor's element type, nor an integer attribute's width), value ranges
  (`requant` shift in [0, 31]), which properties go together (an 8-bit result needs a
  `requant`), static shapes.
- Optional properties: MLIR 22's `irdl.attributes` has no optional entries, so they are left
  undeclared (mlir-opt takes them as discardable attributes, unchecked).
- Variadic values of differing types: IRDL binds a constraint to one type per op, so all values
  of a variadic operand share one type. `tinyattn.concat`, `tinyattn.map` and `kernel.map` take
  inputs of differing shapes, layouts or element types, so a variadic group is exported as
  `TYPED_VALUES` optional operands, each with a constraint of its own, and a variadic rest of
  one type, with `operandSegmentSizes` in the interop form; a `tinyattn.concat` of more inputs
  whose rest differ in type is refused by mlir-opt.
- Properties in MLIR's sense: extensible dialects have none, so the interop form prints ours as
  attributes, and ops in the generic form (IRDL has no custom syntax).
- An attribute named as an op of its dialect (`#tinyattn.requant`, `tinyattn.requant`): IRDL
  names both in one symbol table, so the attribute is `#tinyattn.requant_attr` there.
- Our attributes' keyword syntax (`#tinyattn.requant<mul = 3, add = 0, shift = 5>`): IRDL's
  attributes are positional lists of attributes, `#tinyattn.requant_attr<array<i64: 3>,
  array<i64: 0>, 5 : i64>`, integers as `i64` integer attributes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from io import StringIO

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    TensorType,
    UnitAttr,
    i32,
    i64,
)
from xdsl.dialects.irdl import (
    AllOfOp,
    AnyOfOp,
    AnyOp,
    AttributeOp,
    AttributesOp,
    BaseOp,
    DialectOp,
    IsOp,
    OperandsOp,
    OperationOp,
    ParametersOp,
    ParametricOp,
    ResultsOp,
    TypeOp,
    VariadicityArrayAttr,
    VariadicityAttr,
)
from xdsl.ir import (
    Attribute,
    Block,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    AllOf,
    AnyOf,
    AttrConstraint,
    BaseAttr,
    EqAttrConstraint,
    IRDLOperation,
    MessageConstraint,
    OperandDef,
    OptionalDef,
    ParamAttrConstraint,
    RangeConstraint,
    RangeLengthConstraint,
    RangeOf,
    ResultDef,
    VarConstraint,
)
from xdsl.printer import Printer

from tinyattn.dialects.kernel import MAP_FUNCTIONS
from tinyattn.dialects.tinyattn import MAP_BINARY, MAP_UNARY
from tinyattn.driver.interop import (
    SEGMENTS,
    TYPED_VALUES,
    interop_names,
    irdl_symbol,
    is_variadic,
    split_segments,
    tinyattn_dialects,
)
from tinyattn.driver.registry import TINYATTN_UNIVERSE

# MLIR's names of the builtin kinds our definitions use (`irdl.base` compares them).
_BUILTIN_NAMES: dict[type[Attribute], str] = {
    TensorType: "!builtin.tensor",
    MemRefType: "!builtin.memref",
    IntegerAttr: "#builtin.integer",
    IntAttr: "#builtin.integer",  # printed as an i64 integer attribute
    FloatAttr: "#builtin.float",
    StringAttr: "#builtin.string",
    UnitAttr: "#builtin.unit",
    DenseArrayBase: "#builtin.dense_array",
}


# String properties whose verifiers admit a fixed set of values: IRDL states them as such.
_STRING_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("kernel.map", "fn"): MAP_FUNCTIONS,
    ("tinyattn.map", "fn"): (*MAP_UNARY, *MAP_BINARY),
}


@dataclass
class _Exporter:
    """Builds IRDL constraints for our definitions; `owners` maps each attribute and type class
    of our dialects to its symbol reference."""

    owners: dict[type[Attribute], SymbolRefAttr]

    def constraint(
        self, builder: Builder, constraint: AttrConstraint | tuple[str, ...]
    ) -> SSAValue:
        """A fresh IRDL constraint (each SSA value is a variable IRDL binds once per op); a
        tuple of strings admits those."""
        match constraint:
            case BaseAttr(attr=base):
                return self._base(builder, base)
            case EqAttrConstraint(attr=attr) if type(attr) not in self.owners:
                return builder.insert(IsOp(attr)).output
            case EqAttrConstraint(attr=attr):
                return self._base(builder, type(attr))
            case ParamAttrConstraint(base_attr=base, param_constrs=params) if base in self.owners:
                args = [self.constraint(builder, param) for param in params]
                return builder.insert(ParametricOp(self.owners[base], args)).output
            case ParamAttrConstraint(base_attr=base):
                return self._base(builder, base)
            case tuple() as strings:
                options = [builder.insert(IsOp(StringAttr(text))).output for text in strings]
                return builder.insert(AnyOfOp(options)).output
            case AnyOf(attr_constrs=options):
                return builder.insert(
                    AnyOfOp([self.constraint(builder, c) for c in options])
                ).output
            case AllOf(attr_constrs=parts):
                return builder.insert(AllOfOp([self.constraint(builder, c) for c in parts])).output
            case MessageConstraint(constr=inner) | VarConstraint(constraint=inner):
                return self.constraint(builder, inner)
            case _:
                return builder.insert(AnyOp()).output

    def _base(self, builder: Builder, base: type[Attribute]) -> SSAValue:
        if base in self.owners:
            return builder.insert(BaseOp(self.owners[base])).output
        if base in _BUILTIN_NAMES:
            return builder.insert(BaseOp(_BUILTIN_NAMES[base])).output
        return builder.insert(AnyOp()).output

    def values(
        self, builder: Builder, defs: Iterable[tuple[str, OperandDef | ResultDef]]
    ) -> tuple[list[SSAValue], list[VariadicityAttr], ArrayAttr[StringAttr]]:
        """Constraints, variadicities and names of operand or result definitions; a variadic
        operand group is `TYPED_VALUES` optional operands and a variadic rest (`_split`)."""
        values, kinds, names = [], [], []
        for name, definition in defs:
            entries = [(name, _kind(definition))]
            if _kind(definition) is VariadicityAttr.VARIADIC and isinstance(definition, OperandDef):
                entries = _split(name)
            for entry, kind in entries:
                values.append(self.constraint(builder, _element(definition.constr)))
                kinds.append(kind)
                names.append(StringAttr(entry))
        return values, kinds, ArrayAttr(names)

    def operation(self, op: type[IRDLOperation]) -> OperationOp:
        definition = op.get_irdl_definition()
        if definition.regions or definition.successors or split_segments(op) is None:
            raise ValueError(f"{op.name}: regions, successors and segments are not exported")
        block = Block()
        builder = Builder(InsertPoint.at_end(block))
        for defs, make in ((definition.operands, OperandsOp), (definition.results, ResultsOp)):
            if defs:
                values, kinds, names = self.values(builder, defs)
                builder.insert(make(values, VariadicityArrayAttr(ArrayAttr(kinds)), names))
        required = {
            name: _STRING_VALUES.get((op.name, name), prop.constr)
            for name, prop in {**definition.properties, **definition.attributes}.items()
            if not isinstance(prop, OptionalDef)
        }
        if required:
            values = [self.constraint(builder, constraint) for constraint in required.values()]
            names = ArrayAttr([StringAttr(name) for name in required])
            builder.insert(AttributesOp(values, names))
        return OperationOp(Dialect.split_name(op.name)[1], Region([block]))

    def attribute(self, attr: type[ParametrizedAttribute], dialect: Dialect) -> Operation:
        block = Block()
        builder = Builder(InsertPoint.at_end(block))
        parameters = attr.get_irdl_definition().parameters
        if parameters:
            values = [self.constraint(builder, param.constr) for _, param in parameters]
            builder.insert(ParametersOp(values, ArrayAttr([StringAttr(n) for n, _ in parameters])))
        make = TypeOp if issubclass(attr, TypeAttribute) else AttributeOp
        return make(irdl_symbol(attr, dialect), Region([block]))


def _kind(definition: OperandDef | ResultDef) -> VariadicityAttr:
    """Single, optional or variadic, as IRDL says it."""
    if isinstance(definition, OptionalDef):
        return VariadicityAttr.OPTIONAL
    if is_variadic(definition):
        return VariadicityAttr.VARIADIC
    return VariadicityAttr.SINGLE


def _split(name: str) -> list[tuple[str, VariadicityAttr]]:
    """The IRDL operands of a variadic group `name`: IRDL binds a constraint once per op, so a
    variadic operand's values must all have one type; the first `TYPED_VALUES` values are
    operands of their own, each with its own constraint."""
    optional = [(f"{name}_{i}", VariadicityAttr.OPTIONAL) for i in range(TYPED_VALUES)]
    return [*optional, (f"{name}_rest", VariadicityAttr.VARIADIC)]


def _segment_sizes(op: IRDLOperation) -> dict[str, Attribute]:
    """The `operandSegmentSizes` of an op with a variadic operand group, as the IRDL states its
    operands (`_split`); nothing for other ops."""
    if not split_segments(type(op)):
        return {}
    sizes: list[int] = []
    for name, definition in type(op).get_irdl_definition().operands:
        value = getattr(op, name)
        if _kind(definition) is VariadicityAttr.VARIADIC:
            count = len(value)
            sizes += [int(i < count) for i in range(TYPED_VALUES)]
            sizes.append(max(0, count - TYPED_VALUES))
        else:
            sizes.append(0 if value is None else 1)
    return {SEGMENTS: DenseArrayBase.from_list(i32, sizes)}


def _element(constraint: RangeConstraint) -> AttrConstraint:
    """What each value of an operand or result range must be."""
    if isinstance(constraint, RangeLengthConstraint):
        constraint = constraint.constraint
    return constraint.constr if isinstance(constraint, RangeOf) else BaseAttr(Attribute)


def irdl_module(dialects: Iterable[Dialect]) -> ModuleOp:
    """The IRDL definitions of `dialects`."""
    dialects = list(dialects)
    exporter = _Exporter(
        {
            attr: SymbolRefAttr(dialect.name, [irdl_symbol(attr, dialect)])
            for dialect in dialects
            for attr in dialect.attributes
        }
    )
    definitions = []
    for dialect in dialects:
        block = Block()
        for attr in dialect.attributes:
            assert issubclass(attr, ParametrizedAttribute)
            block.add_op(exporter.attribute(attr, dialect))
        for op in dialect.operations:
            assert issubclass(op, IRDLOperation)
            block.add_op(exporter.operation(op))
        definitions.append(DialectOp(dialect.name, Region([block])))
    return ModuleOp(definitions)


def irdl_text() -> str:
    """tinyattn's dialects as IRDL text, for `mlir-opt-22 --irdl-file`."""
    output = StringIO()
    Printer(output).print_op(irdl_module(tinyattn_dialects()))
    output.write("\n")
    return output.getvalue()


def _as_mlir(parameter: Attribute) -> Attribute:
    """A parameter as an MLIR attribute (xDSL's integer data is no attribute in MLIR)."""
    return IntegerAttr(parameter.data, i64) if isinstance(parameter, IntAttr) else parameter


@dataclass(eq=False, repr=False)
class InteropPrinter(Printer):
    """Prints IR as the IRDL dialects of `irdl_text()` parse it: every op in the generic form,
    the properties of our ops as attributes, our attributes as IRDL names them, positionally."""

    print_generic_format: bool = field(default=True)
    names: dict[type[Attribute], str] = field(default_factory=interop_names)
    dialects: frozenset[str] = field(
        default_factory=lambda: frozenset(TINYATTN_UNIVERSE.all_dialects)
    )

    def print_op_with_default_format(self, op: Operation) -> None:
        if op.dialect_name() not in self.dialects:
            super().print_op_with_default_format(op)
            return
        assert isinstance(op, IRDLOperation)
        self.print_operands(op.operands)
        self.print_regions(op.regions)
        self.print_op_attributes({**op.attributes, **op.properties, **_segment_sizes(op)})
        self.print_string(" : ")
        self.print_operation_type(op)

    def print_attribute(self, attribute: Attribute) -> None:
        name = self.names.get(type(attribute))
        if name is None:
            super().print_attribute(attribute)
            return
        assert isinstance(attribute, ParametrizedAttribute)
        self.print_string(("!" if isinstance(attribute, TypeAttribute) else "#") + name)
        self.print_paramattr_parameters([_as_mlir(p) for p in attribute.parameters])
