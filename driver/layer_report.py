"""Per-layer facts of a lowered schedule, as MCU vendors' model analyzers tabulate them.

Before lowering, every tensor-level tinyattn op is tagged with the layer it is (`tinyattn.layer`,
a discardable attribute); the tiling passes and `convert-tinyattn-to-kernels` copy the tag onto the
top-level ops they emit for it, and the tiling passes record the bytes their transfers move on
one of them (`tinyattn.dma_bytes`). Once buffers are allocs with lifetimes, the live bytes of each
memory level at every top-level step give the occupancy over the schedule; a layer's peak is the
largest total live while its steps run (buffers of other layers still alive included, which is
what the layer needs the memory to hold). A step without a tag (a dealloc, a moved constant)
belongs to the layer before it. The tags stay through `convert-kernels-to-loops`, whose profiling
regions record them by the same rule (so a profiled run gives each layer its instructions), and
are dropped after it (`drop_layer_tags`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr

from tinyattn.dialects.annotations import DMA_ATTR, LAYER_ATTR, ONNX_NODE_ATTR
from tinyattn.dialects.memory import LEVELS, MemoryLevel
from tinyattn.passes.plan_memory import buffer_lifetimes
from tinyattn.semantics.cost import op_cost

PROLOGUE = "(inputs)"  # the steps before the first layer


@dataclass(frozen=True)
class Layer:
    """One tensor-level op as scheduled: what it costs and the memory it runs in."""

    # Unique: its ONNX node's name (+ "#position" after the first op a node gave), else the
    # value it computes ("%a"), else op#position.
    name: str
    op: str
    output_shape: tuple[int, ...]  # of its (first) result
    params: int
    macs: int
    weight_bytes: int
    l1_peak_bytes: int = 0
    l2_peak_bytes: int = 0
    dma_bytes: int = 0
    # Counted by a profiled run (tinyattn-run --profile), with their share of all it counted;
    # None where nothing ran (a compile).
    instructions: int | None = None
    instruction_share: float | None = None


@dataclass(frozen=True)
class Occupancy:
    """Live activation bytes per memory level after each top-level step of the schedule."""

    layers: tuple[str, ...]  # the layer of each step
    live: dict[str, tuple[int, ...]]  # level -> bytes per step


def tag_layers(function: func.FuncOp) -> list[Layer]:
    """Tag each tinyattn op of `function` with its layer name, unique so that what is measured
    per tag (peaks, DMA, instructions) is the layer's alone; their costs, in order."""
    layers: list[Layer] = []
    for op in function.body.block.ops:
        if op.dialect_name() != "tinyattn":
            continue
        node = op.attributes.get(ONNX_NODE_ATTR)
        hint = op.results[0].name_hint if op.results else None
        if isinstance(node, StringAttr):
            name = node.data
        else:
            name = f"%{hint}" if hint else f"{op.name.removeprefix('tinyattn.')}#{len(layers)}"
        base, repeat = name, len(layers)
        while any(layer.name == name for layer in layers):
            name, repeat = f"{base}#{repeat}", repeat + 1
        op.attributes[LAYER_ATTR] = StringAttr(name)
        cost = op_cost(op)
        shape = tuple(op.results[0].type.get_shape()) if op.results else ()  # type: ignore[attr-defined]
        layers.append(Layer(name, op.name, shape, cost.params, cost.macs, cost.param_bytes))
    return layers


def occupancy(function: func.FuncOp, single_level: bool) -> Occupancy:
    ops = list(function.body.block.ops)
    layers, current = [], PROLOGUE
    for op in ops:
        tag_attr = op.attributes.get(LAYER_ATTR)
        if isinstance(tag_attr, StringAttr):
            current = tag_attr.data
        layers.append(current)
    live = {}
    for level, lifetimes in buffer_lifetimes(function, single_level).items():
        steps = [0] * len(ops)
        for lifetime in lifetimes:
            for step in range(lifetime.first, min(lifetime.last, len(ops) - 1) + 1):
                steps[step] += lifetime.size
        live[level] = tuple(steps)
    return Occupancy(tuple(layers), {level: live[level] for level in LEVELS if level in live})


def scheduled_layers(
    layers: list[Layer], function: func.FuncOp, timeline: Occupancy
) -> tuple[Layer, ...]:
    """`layers` with the peaks of their steps and their DMA bytes."""
    dma: dict[str, int] = {}
    for op in function.walk():
        tag_attr, moved = op.attributes.get(LAYER_ATTR), op.attributes.get(DMA_ATTR)
        if isinstance(tag_attr, StringAttr) and isinstance(moved, IntegerAttr):
            dma[tag_attr.data] = dma.get(tag_attr.data, 0) + moved.value.data

    def peak(layer: str, level: str) -> int:
        steps = timeline.live.get(level)
        if steps is None:
            return 0
        return max(
            (b for b, at in zip(steps, timeline.layers, strict=True) if at == layer), default=0
        )

    return tuple(
        replace(
            layer,
            l1_peak_bytes=peak(layer.name, MemoryLevel.L1),
            l2_peak_bytes=peak(layer.name, MemoryLevel.L2),
            dma_bytes=dma.get(layer.name, 0),
        )
        for layer in layers
    )


def drop_layer_tags(module: ModuleOp) -> None:
    """Remove every layer tag, once the layers are measured and the profiling regions marked:
    the code handed to LLVM carries none."""
    for op in module.walk():
        op.attributes.pop(LAYER_ATTR, None)


def with_instructions(
    layers: Iterable[Layer], counted: Iterable[tuple[str | None, int]]
) -> tuple[Layer, ...]:
    """`layers` with the instructions a profiled run counted for each, summed over its regions
    (`counted`: (layer or None, instructions) per region; a layer that ran no code has 0), and
    their share of everything counted, the code outside every layer included."""
    per_layer: dict[str, int] = {}
    total = 0
    for layer_name, instructions in counted:
        total += instructions
        if layer_name is not None:
            per_layer[layer_name] = per_layer.get(layer_name, 0) + instructions
    return tuple(
        replace(
            layer,
            instructions=per_layer.get(layer.name, 0),
            instruction_share=per_layer.get(layer.name, 0) / total if total else 0.0,
        )
        for layer in layers
    )


def planned_dma_bytes(function: func.FuncOp) -> int:
    """The bytes the schedule's transfers move in one inference, as the tiling passes recorded
    them (tagged with a layer or not)."""
    records = [op.attributes.get(DMA_ATTR) for op in function.walk()]
    return sum(r.value.data for r in records if isinstance(r, IntegerAttr))


REPORT_FORMATS = ("text", "csv", "md")


def format_layers(layers: Iterable[Layer], fmt: str = "text") -> str:
    """The per-layer table: aligned text for people, CSV (plain numbers) or a Markdown table.
    Each layer's MACs also as its share of the model's; its instructions and their share only
    where a profiled run counted them."""
    layers = list(layers)
    total = sum(layer.macs for layer in layers) or 1
    profiled = any(layer.instructions is not None for layer in layers)
    header = (
        "layer", "op", "output", "params", "MACs", "MAC share", "weights (B)", "L1 peak (B)",
        "L2 peak (B)", "DMA (B)", *(("instructions", "instr share") if profiled else ()),
    )  # fmt: skip

    def cells(layer: Layer, number: Callable[[int], str], share: Callable[[float], str]):
        row = [
            layer.name,
            layer.op.removeprefix("tinyattn."),
            "x".join(map(str, layer.output_shape)) or "scalar",
            number(layer.params),
            number(layer.macs),
            share(layer.macs / total),
            *map(number, (layer.weight_bytes, layer.l1_peak_bytes, layer.l2_peak_bytes)),
            number(layer.dma_bytes),
        ]
        if profiled:
            row += [number(layer.instructions or 0), share(layer.instruction_share or 0.0)]
        return row

    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(cells(layer, str, "{:.4f}".format) for layer in layers)
        return buffer.getvalue().rstrip("\n")
    rows = [cells(layer, "{:,}".format, "{:.1%}".format) for layer in layers]
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
        return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])
    return format_table(header, rows, left=2)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """Aligned columns for people: the first `left` left-justified (names), the rest
    right-justified (numbers)."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in (header, *rows)
    )
