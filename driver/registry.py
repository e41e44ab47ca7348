"""The tinyattn `Universe`: the dialects and passes tinyattn-opt, the parser and plain
`xdsl-opt` (through the `xdsl.universe` entry point) know. Factories import lazily, as xDSL's
own do."""

from xdsl.universe import Universe


def _tinyattn_dialect():
    from tinyattn.dialects.tinyattn import Tinyattn

    return Tinyattn


def _kernel_dialect():
    from tinyattn.dialects.kernel import Kernel

    return Kernel


def _dma_dialect():
    from tinyattn.dialects.dma import DMA

    return DMA


def _fuse_weights():
    from tinyattn.passes.fuse_weights import FuseWeights

    return FuseWeights


def _depth_first_tile():
    from tinyattn.passes.depth_first_tile import DepthFirstTile

    return DepthFirstTile


def _layerwise_tile():
    from tinyattn.passes.layerwise_tile import LayerwiseTile

    return LayerwiseTile


def _plan_memory():
    from tinyattn.passes.plan_memory import PlanMemory

    return PlanMemory


def _convert_tinyattn_to_kernels():
    from tinyattn.lowering.convert_tinyattn_to_kernels import ConvertTinyattnToKernels

    return ConvertTinyattnToKernels


def _convert_kernels_to_loops():
    from tinyattn.lowering.convert_kernels_to_loops import ConvertKernelsToLoops

    return ConvertKernelsToLoops


def _lower_dma():
    from tinyattn.lowering.lower_dma import LowerDMA

    return LowerDMA


TINYATTN_UNIVERSE = Universe(
    all_dialects={"tinyattn": _tinyattn_dialect, "kernel": _kernel_dialect, "dma": _dma_dialect},
    all_passes={
        "fuse-weights": _fuse_weights,
        "depth-first-tile": _depth_first_tile,
        "layerwise-tile": _layerwise_tile,
        "convert-tinyattn-to-kernels": _convert_tinyattn_to_kernels,
        "convert-kernels-to-loops": _convert_kernels_to_loops,
        "plan-memory": _plan_memory,
        "lower-dma": _lower_dma,
    },
)
