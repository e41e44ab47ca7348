"""Textual IR in, one-line diagnostics out: what tinyattn-opt and the compile driver share.

A parse error or an op that does not verify becomes one `DiagnosticException` whose message is
`FILE:LINE:COL: reason` (the op's own position, recorded while parsing). Besides our own syntax
the parser reads the interop form upstream `mlir-opt-22 --irdl-file` prints of our IR
(`driver.interop`): our attributes positionally under their IRDL names, variadic operand groups
with the `operandSegmentSizes` of their IRDL split.
"""

from __future__ import annotations

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseIntOrFPElementsAttr,
    IntAttr,
    IntegerAttr,
    ModuleOp,
)
from xdsl.ir import Operation, ParametrizedAttribute
from xdsl.irdl import BaseAttr, IRDLOperation
from xdsl.parser import Parser
from xdsl.universe import Universe
from xdsl.utils.exceptions import DiagnosticException, ParseError, VerifyException
from xdsl.utils.lexer import Span
from xdsl.utils.mlir_lexer import MLIRTokenKind

from tinyattn.dialects.dense import to_numpy
from tinyattn.driver.interop import SEGMENTS, interop_names, split_segments
from tinyattn.driver.registry import TINYATTN_UNIVERSE


def register_dialects(ctx: Context) -> None:
    """Every xDSL dialect and tinyattn's (lazily: a dialect loads when first used)."""
    dialects = {**Universe.get_multiverse().all_dialects, **TINYATTN_UNIVERSE.all_dialects}
    for name, factory in dialects.items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, factory)


class LocatingParser(Parser):
    """A parser that remembers where each operation starts, for one-line diagnostics, and
    also reads the interop form."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.positions: dict[Operation, Span] = {}
        self.interop = {name: attr for attr, name in interop_names().items()}

    def pos_span(self) -> Span:
        return self._current_token.span

    def parse_operation(self) -> Operation:
        start = self._current_token.span
        op = super().parse_operation()
        self.positions[op] = start
        if isinstance(op, IRDLOperation) and split_segments(type(op)):
            op.attributes.pop(SEGMENTS, None)
        return op

    def _parse_dialect_type_or_attribute_body(
        self, attr_name: str, is_type: bool, is_opaque: bool, starting_opaque_pos
    ):
        """An attribute under its IRDL name with positional parameters (`IntAttr` ones as i64
        integer attributes); anything else as xDSL parses it."""
        attr = self.interop.get(attr_name)
        if attr is None or is_opaque or not self._positional_follows():
            return super()._parse_dialect_type_or_attribute_body(
                attr_name, is_type, is_opaque, starting_opaque_pos
            )
        assert issubclass(attr, ParametrizedAttribute)
        start = self.pos
        values = self.parse_comma_separated_list(self.Delimiter.ANGLE, self.parse_attribute)
        kinds = attr.get_irdl_definition().parameters
        if len(values) != len(kinds):
            self.raise_error(f"#{attr_name} takes {len(kinds)} parameters", start, self.pos)
        parameters = [
            IntAttr(value.value.data)
            if isinstance(value, IntegerAttr) and param.constr == BaseAttr(IntAttr)
            else value
            for value, (_, param) in zip(values, kinds, strict=True)
        ]
        try:
            return attr.new(parameters)
        except VerifyException as error:
            self.raise_error(" ".join(str(error).split()), start, self.pos)

    def _positional_follows(self) -> bool:
        """Whether `<` opens positional parameters (not `<name = ...`, our keyword syntax)."""
        start = self.pos
        if self.parse_optional_punctuation("<") is None:
            return False
        keyword = self._parse_optional_token(MLIRTokenKind.BARE_IDENT) is not None
        positional = not (keyword and self._current_token.kind == MLIRTokenKind.EQUAL)
        self._resume_from(start)
        return positional


def where(span: Span, line_offset: int = 0) -> str:
    """`FILE:LINE:COL` of a span, as diagnostics print it."""
    location = span.get_location()
    return f"{location.file}:{location.line + line_offset}:{location.col}"


def verify_one_line(
    module: ModuleOp, positions: dict[Operation, Span], line_offset: int = 0
) -> None:
    """Verify op by op; the first failure raises a DiagnosticException of one line that names
    the op's source position (or its result name) and the reason."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except DiagnosticException as error:
            reason = str(error.args[0] if error.args else error).splitlines()[0]
            if reason.startswith("Operation does not verify: "):
                reason = reason.removeprefix("Operation does not verify: ")
            place = where(positions[op], line_offset) if op in positions else _name(op)
            raise DiagnosticException(f"{place}: '{op.name}' op {reason}") from None


def _name(op: Operation) -> str:
    """Where an op that was not parsed from text (e.g. created by a pass) is."""
    if op.results and op.results[0].name_hint:
        return f"%{op.results[0].name_hint}"
    return f"'{op.name}'"


def parse_module(text: str, file_name: str) -> ModuleOp:
    """Parse and verify a module; any problem is one DiagnosticException line."""
    ctx = Context()
    register_dialects(ctx)
    try:
        parser = LocatingParser(ctx, text, file_name)  # reads the first token
        module = parser.parse_module()
    except ParseError as error:
        raise DiagnosticException(f"{where(error.span)}: {error.msg}") from None
    except VerifyException as error:  # an attribute that does not verify
        raise DiagnosticException(f"{where(parser.pos_span())}: {error}") from None
    verify_one_line(module, parser.positions)
    _check_finite(module, parser.positions)
    return module


def _check_finite(module: ModuleOp, positions: dict[Operation, Span]) -> None:
    """Refuse a float constant holding NaN or infinity: no model means it, and it would only
    surface as NaN outputs that no comparison can judge."""
    for op in module.walk():
        if isinstance(op, arith.ConstantOp) and isinstance(op.value, DenseIntOrFPElementsAttr):
            floats = isinstance(op.value.get_element_type(), AnyFloat)
            if floats and not np.isfinite(to_numpy(op.value)).all():
                place = where(positions[op]) if op in positions else _name(op)
                raise DiagnosticException(f"{place}: a constant holds NaN or infinite values")
