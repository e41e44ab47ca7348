"""What the tinyattn lowering hands to the upstream toolchain: a memref-level module and the
facts about its entry function that the C harness and the report need.

The entry function takes, in this order, one memref per model input, one per model output, and
one `memref<Nxi8>` arena per memory level the schedule uses (fastest first). With the bare-pointer
calling convention its C signature is

    void <entry>(const T0 *in0, ..., T *out0, ..., uint8_t *arena_l1, uint8_t *arena_l2);

Weights are `memref.global` constants inside the module (read-only data, kept in flash).
Activations live only in the arenas, at offsets the compiler planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from tinyattn.dialects.memory import MemoryLevel
from tinyattn.driver.layer_report import Layer, Occupancy


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: its name, shape and storage dtype (int8 for i8, uint8 for ui8)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class ArenaSpec:
    """One static activation arena: the memory level it lives in and its size."""

    level: MemoryLevel
    size: int


@dataclass
class LoweredModel:
    module: ModuleOp
    entry: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    arenas: tuple[ArenaSpec, ...]
    params_bytes: int
    macs: int
    live_peak_bytes: int | None = None  # from the memory plan; None: take the arena sizes
    layers: tuple[Layer, ...] = ()  # the tensor-level ops as scheduled, in order
    occupancy: Occupancy | None = None  # live bytes per level over the schedule
    pipeline: str = ""  # the compile pipeline, as `tinyattn-opt -p` takes it
    dma_bytes: int = 0  # what the schedule's transfers move between levels in one inference
    # With LowerOptions.keep_stages: (pass name, module text) for the input ("input") and after
    # every pass of the pipeline, in order.
    stages: tuple[tuple[str, str], ...] = ()

    @property
    def level_peak_bytes(self) -> dict[str, int]:
        """The largest total of live activation bytes of each level over the schedule."""
        if self.occupancy is None:
            return {arena.level: arena.size for arena in self.arenas}
        return {level: max(steps, default=0) for level, steps in self.occupancy.live.items()}

    @property
    def activation_peak_bytes(self) -> int:
        """The largest total of live activation bytes over the schedule, all levels together."""
        if self.live_peak_bytes is not None:
            return self.live_peak_bytes
        return sum(arena.size for arena in self.arenas)
