"""What the compiler records on IR for later stages, and which function a module is about.

* `tinyattn.layer` (on ops): the tensor-level op (layer) an op was emitted for; every pass that
  replaces a tensor-level op copies it onto the top-level ops it emits (`tag`). The driver
  sets the tags and drops them after `convert-kernels-to-loops`, whose profiling regions record
  them, so the code handed to LLVM carries none.
* `tinyattn.dma_bytes` (on one op per layer): the bytes its transfers move in one inference.
* `tinyattn.onnx_name` (in a function's argument and result attributes): the ONNX graph
  input or output it stands for; `model.h` and reports name the tensor by it.
* `tinyattn.tensor_signature` (on a bufferized function): the tensor-level signature it had, so
  a memref function (inputs, then outputs, then arenas) still says its inputs, outputs and
  their signedness.
* `tinyattn.arena_bytes`, `tinyattn.live_peak_bytes` (on a planned function): what plan-memory
  decided.
* `tinyattn.profile` (on a module whose kernels are instrumented): per profiling region, its
  label, the MACs of one pass through it and its layer; region i starts with a call of
  `profile_marker(i)`. Each layer has a region for its code between kernels; region 0, without
  a layer, is the code outside every layer: before the first starts (the call, the entry's
  prologue), and all code between kernels in a module without layer tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    i64,
)
from xdsl.ir import Attribute, Operation
from xdsl.utils.exceptions import DiagnosticException

from tinyattn.dialects.memory import LEVELS, MemoryLevel

LAYER_ATTR = "tinyattn.layer"
# On a tensor-level op imported from ONNX: the name of the node it came from (reports name
# layers by it; passes that replace the op carry it over).
ONNX_NODE_ATTR = "tinyattn.onnx_node"
ONNX_NAME_ATTR = "tinyattn.onnx_name"
DMA_ATTR = "tinyattn.dma_bytes"
TENSOR_SIGNATURE = "tinyattn.tensor_signature"
ARENA_BYTES = "tinyattn.arena_bytes"
LIVE_PEAK_BYTES = "tinyattn.live_peak_bytes"
PROFILE = "tinyattn.profile"
PROFILE_OUTSIDE = "(between kernels: loops, DMA, glue)"


def profile_marker(region: int) -> str:
    """The function whose call starts profiling region `region`."""
    return f"tinyattn_prof_{region}"


class ProfileRegion(NamedTuple):
    """What one profiling region counts: a kernel op (or code between kernels) of a layer."""

    label: str
    macs: int  # per pass through the region
    layer: str | None  # None: before the first layer


def profile_regions(module: ModuleOp) -> list[ProfileRegion]:
    """The profiling regions of an instrumented module, in marker order, else []."""
    attr = module.attributes.get(PROFILE)
    if not isinstance(attr, ArrayAttr):
        return []
    regions = []
    for entry in attr.data:
        assert isinstance(entry, DictionaryAttr)
        label, macs, layer = entry.data["label"], entry.data["macs"], entry.data.get("layer")
        assert isinstance(label, StringAttr) and isinstance(macs, IntegerAttr)
        name = layer.data if isinstance(layer, StringAttr) else None
        regions.append(ProfileRegion(label.data, macs.value.data, name))
    return regions


def tag(ops: Iterable[Operation], layer: Attribute | None, dma_bytes: int | None = None) -> None:
    """Mark ops emitted for a layer (if tagged) and record the bytes its transfers move on the
    first one that outlives bufferization (`to_buffer`/`to_tensor` are resolved away by the
    lowering), so a schedule read back from text still states them."""
    for op in ops:
        if isinstance(layer, StringAttr):
            op.attributes[LAYER_ATTR] = layer
        if dma_bytes is not None and op.dialect_name() != "bufferization":
            op.attributes[DMA_ATTR] = IntegerAttr(dma_bytes, i64)
            dma_bytes = None


def tensor_signature(function: func.FuncOp) -> FunctionType:
    """The tensor-level signature of `function`: its own type, or the one bufferization
    recorded."""
    recorded = function.attributes.get(TENSOR_SIGNATURE)
    if isinstance(recorded, FunctionType):
        return recorded
    return function.function_type


def io_names(function: func.FuncOp) -> tuple[list[str], list[str]]:
    """The names of a function's tensor inputs and outputs: the ONNX names it records (a
    bufferized function on its output arguments, after the inputs), else the arguments' SSA
    names, else `in<i>` / `out<i>`."""
    signature = tensor_signature(function)

    def recorded(attrs: ArrayAttr | None, index: int) -> str | None:
        if attrs is None or index >= len(attrs.data):
            return None
        name = attrs.data[index].data.get(ONNX_NAME_ATTR)
        return name.data if isinstance(name, StringAttr) else None

    args = function.body.block.args if function.body.blocks else ()
    inputs = [
        recorded(function.arg_attrs, i)
        or (args[i].name_hint if i < len(args) else None)
        or f"in{i}"
        for i in range(len(signature.inputs))
    ]
    count = len(signature.inputs)
    outputs = [
        recorded(function.res_attrs, i) or recorded(function.arg_attrs, count + i) or f"out{i}"
        for i in range(len(signature.outputs))
    ]
    return inputs, outputs


def entry_function(module: ModuleOp, name: str | None = None) -> func.FuncOp:
    """The function a module is compiled or run as: `name`, else `main`, else the only public
    function."""
    functions = [op for op in module.ops if isinstance(op, func.FuncOp) and not op.is_declaration]
    wanted = [f for f in functions if f.sym_name.data == (name or "main")]
    if not wanted and name is None:
        wanted = [f for f in functions if f.sym_visibility in (None, StringAttr("public"))]
    if len(wanted) != 1:
        names = ", ".join(f"@{f.sym_name.data}" for f in functions) or "none"
        what = f"@{name}" if name else "@main or a single public function"
        raise DiagnosticException(f"no entry function: expected {what}; functions: {names}")
    return wanted[0]


def arena_bytes(function: func.FuncOp) -> dict[MemoryLevel, int]:
    """The arena sizes `plan-memory` recorded on a function, by level (fastest first)."""
    attr = function.attributes.get(ARENA_BYTES)
    if not isinstance(attr, DictionaryAttr):
        return {}
    sizes = {name: value.value.data for name, value in attr.data.items()}
    return {level: sizes[level.value] for level in LEVELS if level.value in sizes}
