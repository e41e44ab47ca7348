"""Static memory planning: byte offsets into an arena for buffers with known lifetimes.

Buffers live over an inclusive interval of schedule steps; two buffers may share bytes only when
their intervals are disjoint. Placement is greedy (largest first, lowest free offset), the usual
heuristic of static planners for MCU inference (TFLM's greedy planner works the same way).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from tinyattn.dialects.memory import aligned


@dataclass(frozen=True)
class Lifetime:
    key: Hashable
    size: int
    first: int
    last: int

    def overlaps(self, other: Lifetime) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class MemoryPlan:
    offsets: dict[Hashable, int]
    arena_bytes: int  # the arena size the placement needs
    live_peak_bytes: int  # the largest total of bytes live at one step (a lower bound)


def plan_memory(lifetimes: Sequence[Lifetime]) -> MemoryPlan:
    placed: list[tuple[Lifetime, int]] = []
    order = sorted(lifetimes, key=lambda b: (-b.size, b.first, b.last))
    for buffer in order:
        busy = sorted(
            (offset, offset + aligned(other.size))
            for other, offset in placed
            if other.overlaps(buffer)
        )
        offset = 0
        for start, end in busy:
            if offset + buffer.size <= start:
                break
            offset = max(offset, end)
        placed.append((buffer, offset))
    arena = max((offset + aligned(b.size) for b, offset in placed), default=0)
    steps = {step for b in lifetimes for step in (b.first, b.last)}
    live_peak = max(
        (sum(b.size for b in lifetimes if b.first <= step <= b.last) for step in steps), default=0
    )
    return MemoryPlan({b.key: offset for b, offset in placed}, arena, live_peak)
