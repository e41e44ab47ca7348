"""Memory levels and buffer sizes, declared once for every stage.

A memref's memory space names the level it lives in: `"L1"` (the fast, small scratchpad: TCM,
TCDM) or `"L2"` (the main SRAM); no space means L2. Tiling passes place buffers, `plan-memory`
packs each level into one arena, the driver checks arenas against the target's memories and the
harness links them into the level's section. Every buffer starts at a multiple of `ALIGNMENT`.
"""

from __future__ import annotations

from enum import Enum
from math import prod

from xdsl.dialects.builtin import FixedBitwidthType, MemRefType, NoneAttr, StringAttr
from xdsl.ir import Attribute
from xdsl.utils.exceptions import DiagnosticException

ALIGNMENT = 16


class MemoryLevel(str, Enum):
    """A level of the memory hierarchy, fastest first."""

    L1 = "L1"
    L2 = "L2"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def space(self) -> StringAttr:
        """The memref memory space of the level."""
        return StringAttr(self.value)

    @staticmethod
    def of(typ: MemRefType[Attribute]) -> MemoryLevel:
        """The level a memref lives in (no memory space: L2)."""
        space = typ.memory_space
        if isinstance(space, NoneAttr):
            return MemoryLevel.L2
        if isinstance(space, StringAttr) and space.data in LEVEL_NAMES:
            return MemoryLevel(space.data)
        raise DiagnosticException(f'unknown memory space {space} (expected "L1" or "L2")')


LEVELS = tuple(MemoryLevel)
LEVEL_NAMES = tuple(level.value for level in LEVELS)


def aligned(size: int) -> int:
    """`size` rounded up to the arena alignment: what a buffer occupies."""
    return (size + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def element_bytes(element: Attribute) -> int:
    """The bytes of one element of a fixed-width type."""
    if not isinstance(element, FixedBitwidthType):
        raise DiagnosticException(f"{element} has no fixed size")
    return element.compile_time_size


def nbytes(typ: Attribute) -> int:
    """The bytes of the elements of a statically shaped memref (not its strides' span)."""
    assert isinstance(typ, MemRefType)
    return prod(typ.get_shape()) * element_bytes(typ.get_element_type())
