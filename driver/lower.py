"""Tensor-level tinyattn module -> memref-level `LoweredModel` for one target."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr, TensorType
from xdsl.utils.exceptions import PassFailedException

from tinyattn.backend.targets import Target
from tinyattn.dialects.dense import numpy_dtype
from tinyattn.driver.layer_report import occupancy, scheduled_layers, tag_layers
from tinyattn.driver.lowered_model import ArenaSpec, LoweredModel, TensorSpec
from tinyattn.lowering.convert_to_loops import ConvertTinyattnToLoops
from tinyattn.lowering.lower_dma import LowerDMA
from tinyattn.passes.depth_first_tile import DepthFirstTile
from tinyattn.passes.fuse_weights import MODES, FuseWeights
from tinyattn.passes.layerwise_tile import LayerwiseTile
from tinyattn.passes.plan_memory import PlanMemory, arena_bytes
from tinyattn.semantics.cost import total_cost

ENTRY = "tinyattn_model"


SCHEDULES = ("layerwise", "depth-first")


@dataclass(frozen=True)
class LowerOptions:
    """What the user chooses about a compilation (the target aside)."""

    fuse_weights: str = "auto"  # FWSA: auto (where it pays), always, never
    schedule: str = "depth-first"  # attention through L1: depth-first, or layer by layer
    l1_bytes: int | None = None  # the L1 budget of the tiling (default: the target's L1)
    rows: str = "auto"  # rows per tile, or "auto" (the largest that fits the L1 budget)

    def __post_init__(self):
        if self.fuse_weights not in MODES:
            raise ValueError(f"fuse_weights must be one of {', '.join(MODES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}")


def entry_function(module: ModuleOp, name: str | None = None) -> func.FuncOp:
    """The function to compile: `name`, else `main`, else the only public function."""
    functions = [op for op in module.ops if isinstance(op, func.FuncOp) and not op.is_declaration]
    wanted = [f for f in functions if f.sym_name.data == (name or "main")]
    if not wanted and name is None:
        wanted = [f for f in functions if f.sym_visibility in (None, StringAttr("public"))]
    if len(wanted) != 1:
        names = ", ".join(f"@{f.sym_name.data}" for f in functions) or "none"
        what = f"@{name}" if name else "@main or a single public function"
        raise PassFailedException(f"no entry function: expected {what}; functions: {names}")
    return wanted[0]


def _specs(types, names) -> tuple[TensorSpec, ...]:
    specs = []
    for typ, name in zip(types, names, strict=True):
        assert isinstance(typ, TensorType)
        specs.append(TensorSpec(name, tuple(typ.get_shape()), numpy_dtype(typ.get_element_type())))
    return tuple(specs)


def lower_module(
    module: ModuleOp,
    target: Target,
    options: LowerOptions = LowerOptions(),
    entry: str | None = None,
) -> LoweredModel:
    """Lower a tensor-level module in the chosen schedule, activations planned into arenas that
    must fit the target's memory levels, DMA transfers as runtime calls."""
    module = module.clone()
    FuseWeights(mode=options.fuse_weights).apply(Context(), module)
    cost = total_cost(module)  # after fusion (what the code computes), before any tiling
    layers = tag_layers(entry_function(module, entry))
    tile = DepthFirstTile if options.schedule == "depth-first" else LayerwiseTile
    tile(
        l1_bytes=options.l1_bytes or target.l1.size,
        rows=options.rows,
        dma=len(target.levels) > 1,
    ).apply(Context(), module)
    function = entry_function(module, entry)
    args = function.body.block.args
    inputs = _specs(
        function.function_type.inputs,
        [arg.name_hint or f"in{index}" for index, arg in enumerate(args)],
    )
    results = function.function_type.outputs.data
    outputs = _specs(results, [f"out{index}" for index in range(len(results))])
    ConvertTinyattnToLoops().apply(Context(), module)
    single_level = len(target.levels) == 1
    converted = entry_function(module, function.sym_name.data)
    timeline = occupancy(converted, single_level)
    layers = scheduled_layers(layers, converted, timeline)
    PlanMemory(l1_bytes=target.l1.size, l2_bytes=target.l2.size, single_level=single_level).apply(
        Context(), module
    )
    LowerDMA().apply(Context(), module)
    function = entry_function(module, function.sym_name.data)
    function.sym_name = StringAttr(ENTRY)
    live_peak = function.attributes.get("tinyattn.live_peak_bytes")
    return LoweredModel(
        module=module,
        entry=ENTRY,
        inputs=inputs,
        outputs=outputs,
        arenas=tuple(ArenaSpec(level, size) for level, size in arena_bytes(function).items()),
        params_bytes=cost.param_bytes,
        macs=cost.macs,
        live_peak_bytes=live_peak.value.data if live_peak else 0,
        layers=layers,
        occupancy=timeline,
    )
