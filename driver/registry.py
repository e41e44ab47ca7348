"""The tinyattn `Universe`: makes plain `xdsl-opt` (and tinyattn-opt) see our dialects and
passes through the `xdsl.universe` entry point. Factories import lazily, as xDSL's own do."""

from xdsl.universe import Universe


def _tinyattn_dialect():
    from tinyattn.dialects.tinyattn import Tinyattn

    return Tinyattn


def _dma_dialect():
    from tinyattn.dialects.dma import DMA

    return DMA


def _lower_dma():
    from tinyattn.lowering.lower_dma import LowerDMA

    return LowerDMA


def _convert_to_loops():
    from tinyattn.lowering.convert_to_loops import ConvertTinyattnToLoops

    return ConvertTinyattnToLoops


def _depth_first_tile():
    from tinyattn.passes.depth_first_tile import DepthFirstTile

    return DepthFirstTile


def _fuse_weights():
    from tinyattn.passes.fuse_weights import FuseWeights

    return FuseWeights


def _layerwise_tile():
    from tinyattn.passes.layerwise_tile import LayerwiseTile

    return LayerwiseTile


def _plan_memory():
    from tinyattn.passes.plan_memory import PlanMemory

    return PlanMemory


TINYATTN_UNIVERSE = Universe(
    all_dialects={"tinyattn": _tinyattn_dialect, "dma": _dma_dialect},
    all_passes={
        "convert-tinyattn-to-loops": _convert_to_loops,
        "depth-first-tile": _depth_first_tile,
        "fuse-weights": _fuse_weights,
        "layerwise-tile": _layerwise_tile,
        "lower-dma": _lower_dma,
        "plan-memory": _plan_memory,
    },
)
