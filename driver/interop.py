"""How tinyattn's ops and attributes are named and laid out for upstream MLIR's IRDL dialects
(`tinyattn-opt --emit-irdl`, `tools/irdl_interop.py`), so that every tool reads IR in that form
back (`driver.parsing.LocatingParser`).

IRDL names ops and attributes in one symbol table: an attribute named as an op of its dialect
(`#tinyattn.requant`, `tinyattn.requant`) is `#tinyattn.requant_attr` there. IRDL binds a
constraint to one type per op, so a variadic operand group is exported as `TYPED_VALUES`
optional operands with a constraint each and a variadic rest, which the interop form counts in
`operandSegmentSizes`.
"""

from __future__ import annotations

from xdsl.ir import Attribute, Dialect, ParametrizedAttribute
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    OperandDef,
    OptionalDef,
    ResultDef,
    VariadicDef,
)

from tinyattn.driver.registry import TINYATTN_UNIVERSE

# The values of a variadic operand group that the IRDL types one by one.
TYPED_VALUES = 3
SEGMENTS = "operandSegmentSizes"


def tinyattn_dialects() -> list[Dialect]:
    """The dialects tinyattn defines."""
    return [factory() for factory in TINYATTN_UNIVERSE.all_dialects.values()]


def irdl_symbol(attr: type[ParametrizedAttribute], dialect: Dialect) -> str:
    """The IRDL symbol of an attribute or type: its name, with `_attr` if an op has it too."""
    name = Dialect.split_name(attr.name)[1]
    ops = {Dialect.split_name(op.name)[1] for op in dialect.operations}
    return f"{name}_attr" if name in ops else name


def interop_names() -> dict[type[Attribute], str]:
    """The name each attribute and type of our dialects has in IRDL."""
    return {
        attr: f"{dialect.name}.{irdl_symbol(attr, dialect)}"
        for dialect in tinyattn_dialects()
        for attr in dialect.attributes
    }


def is_variadic(definition: OperandDef | ResultDef) -> bool:
    return isinstance(definition, VariadicDef) and not isinstance(definition, OptionalDef)


def split_segments(op: type[IRDLOperation]) -> bool | None:
    """Whether `op` has a variadic operand group (exported as `TYPED_VALUES` typed operands and
    a rest); None if it also has segment sizes of its own, which the export does not combine
    with the split."""
    definition = op.get_irdl_definition()
    variadic = any(is_variadic(d) for _, d in definition.operands)
    if variadic and any(isinstance(o, AttrSizedOperandSegments) for o in definition.options):
        return None
    return variadic
