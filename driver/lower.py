"""A module from any stage -> memref-level `LoweredModel` for one target, through one pipeline.

The compile pipeline is built once (`compile_pipeline`) as xDSL passes; its textual form
(`pipeline_spec`) is written into report.json, so `tinyattn-opt -p "<spec>"` reproduces a
compile. A module from a later stage of `tinyattn-opt` goes through the same pipeline: a pass
finds nothing left to do where an earlier stage already did it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, StringAttr, TensorType
from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import DiagnosticException

from tinyattn.backend.targets import Target
from tinyattn.dialects.annotations import (
    LIVE_PEAK_BYTES,
    arena_bytes,
    entry_function,
    io_names,
    tensor_signature,
)
from tinyattn.dialects.dense import numpy_dtype
from tinyattn.driver.layer_report import (
    Layer,
    Occupancy,
    drop_layer_tags,
    occupancy,
    planned_dma_bytes,
    scheduled_layers,
    tag_layers,
)
from tinyattn.driver.lowered_model import ArenaSpec, LoweredModel, TensorSpec
from tinyattn.frontend.quantize import INPUT_SCALES, OUTPUT_SCALES
from tinyattn.lowering.convert_kernels_to_loops import ConvertKernelsToLoops
from tinyattn.lowering.convert_tinyattn_to_kernels import ConvertTinyattnToKernels
from tinyattn.lowering.kernel_registry import PACKED_WEIGHTS_TARGETS
from tinyattn.lowering.lower_dma import LowerDMA
from tinyattn.passes.depth_first_tile import DepthFirstTile
from tinyattn.passes.fuse_weights import MODES, FuseWeights
from tinyattn.passes.layerwise_tile import LayerwiseTile
from tinyattn.passes.plan_memory import PlanMemory
from tinyattn.semantics.cost import OpCost, total_cost

ENTRY = "tinyattn_model"
# What a tensor-level entry records that model.h reports: a quantized model's I/O scales.
_CARRIED = (INPUT_SCALES, OUTPUT_SCALES)


SCHEDULES = ("layerwise", "depth-first")


@dataclass(frozen=True)
class LowerOptions:
    """What the user chooses about a compilation (the target aside)."""

    fuse_weights: str = "auto"  # FWSA: auto (where it pays), always, never
    schedule: str = "depth-first"  # attention through L1: depth-first, or layer by layer
    l1_bytes: int | None = None  # the L1 budget of the tiling (default: the target's L1)
    rows: str = "auto"  # rows per tile, or "auto" (the largest that fits the L1 budget)
    profile: bool = False  # mark each kernel's code as a region the profiler counts
    name: str = ENTRY  # the entry's C symbol, and (upper-cased) model.h's macro prefix
    keep_stages: bool = False  # keep the module's text before and after every pass

    def __post_init__(self):
        if self.fuse_weights not in MODES:
            raise ValueError(f"fuse_weights must be one of {', '.join(MODES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}")


def compile_pipeline(target: Target, options: LowerOptions) -> tuple[ModulePass, ...]:
    """The passes that compile a tensor-level module for `target`: FWSA, the attention
    schedule through L1 (weights packed for the target's kernels), kernel ops, the target's
    kernels, static arenas, DMA calls."""
    single_level = len(target.levels) == 1
    packed = target.kernels in PACKED_WEIGHTS_TARGETS
    tile = DepthFirstTile if options.schedule == "depth-first" else LayerwiseTile
    return (
        FuseWeights(mode=options.fuse_weights),
        tile(
            l1_bytes=options.l1_bytes or target.l1.size,
            rows=options.rows,
            dma=not single_level,
            pack_weights=packed,
        ),
        ConvertTinyattnToKernels(pack_weights=packed),
        ConvertKernelsToLoops(target=target.kernels, profile=options.profile),
        PlanMemory(l1_bytes=target.l1.size, l2_bytes=target.l2.size, single_level=single_level),
        LowerDMA(),
    )


def pipeline_spec(passes: Sequence[ModulePass]) -> str:
    """The pipeline as `tinyattn-opt -p` takes it."""
    return ",".join(str(p.pipeline_pass_spec()) for p in passes)


def _specs(types, names) -> tuple[TensorSpec, ...]:
    specs = []
    for typ, name in zip(types, names, strict=True):
        assert isinstance(typ, TensorType)
        specs.append(TensorSpec(name, tuple(typ.get_shape()), numpy_dtype(typ.get_element_type())))
    return tuple(specs)


@dataclass
class _Measurements:
    """What the driver reads off the module between passes."""

    function: str
    single_level: bool
    cost: OpCost = OpCost(0, 0, 0)
    layers: tuple[Layer, ...] = ()
    occupancy: Occupancy | None = None
    dma_bytes: int = 0
    keep_stages: bool = False
    stages: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, previous: ModulePass | None, module: ModuleOp, _: ModulePass | None):
        """Costs after FWSA (what the code computes) with each layer tagged; the occupancy of
        the bufferized schedule, whose top-level ops are the steps; the tags dropped once the
        kernels (and their profiling regions) are lowered; with keep_stages, the module's
        text."""
        if isinstance(previous, ConvertKernelsToLoops):
            drop_layer_tags(module)
        if self.keep_stages:
            self.stages.append((previous.name if previous else "input", str(module)))
        if isinstance(previous, FuseWeights):
            self.cost = total_cost(module)
            self.layers = tuple(tag_layers(entry_function(module, self.function)))
        elif isinstance(previous, ConvertTinyattnToKernels):
            converted = entry_function(module, self.function)
            self.occupancy = occupancy(converted, self.single_level)
            self.layers = scheduled_layers(list(self.layers), converted, self.occupancy)
            self.dma_bytes = planned_dma_bytes(converted)


def lower_module(
    module: ModuleOp,
    target: Target,
    options: LowerOptions = LowerOptions(),
    entry: str | None = None,
) -> LoweredModel:
    """Lower a module (tensor level, or any later stage of the pipeline) in the chosen
    schedule, activations planned into arenas that must fit the target's memory levels, DMA
    transfers as runtime calls."""
    module = module.clone()
    function = entry_function(module, entry)
    scales = {k: v for k, v in function.attributes.items() if k in _CARRIED}
    signature = tensor_signature(function)
    if not all(isinstance(t, TensorType) for t in (*signature.inputs, *signature.outputs)):
        raise DiagnosticException(
            f"@{function.sym_name.data} takes no tensors and records no tensor signature: "
            "compile and run need a tensor-level function, or a later stage of tinyattn-opt "
            "(which records it)"
        )
    input_names, output_names = io_names(function)
    inputs = _specs(signature.inputs, input_names)
    outputs = _specs(signature.outputs.data, output_names)
    passes = compile_pipeline(target, options)
    measurements = _Measurements(
        function.sym_name.data, len(target.levels) == 1, keep_stages=options.keep_stages
    )
    PassPipeline(passes, measurements).apply(Context(), module)
    function = entry_function(module, measurements.function)
    function.sym_name = StringAttr(options.name)
    function.attributes.update(scales)
    live_peak = function.attributes.get(LIVE_PEAK_BYTES)
    return LoweredModel(
        module=module,
        entry=options.name,
        inputs=inputs,
        outputs=outputs,
        arenas=tuple(ArenaSpec(level, size) for level, size in arena_bytes(function).items()),
        params_bytes=measurements.cost.param_bytes,
        macs=measurements.cost.macs,
        live_peak_bytes=live_peak.value.data if isinstance(live_peak, IntegerAttr) else 0,
        layers=measurements.layers,
        occupancy=measurements.occupancy,
        pipeline=pipeline_spec(passes),
        stages=tuple(measurements.stages),
        dma_bytes=measurements.dma_bytes,
    )
