"""Where values live when a module runs past bufferization: buffers, views and transfers.

A memref is a numpy array viewing one base buffer of a `Memory` (an allocation, a global, a
function argument or arena, a bufferized tensor): subviews, reshapes, casts and arena views are
numpy views, so writes through one are seen through every other, as memref aliasing is. Each
base buffer has a fake address, so the addresses `lower-dma` computes (aligned pointer plus
offset) map back to its bytes. Fresh and freed memory holds garbage (`GARBAGE` bytes), as on the
device, so a read before a write or after a `dealloc` shows in the results rather than reading
zeros; constant globals are read-only.

Memrefs hold signless integers in their signed numpy dtype (ui8 data in an i8 memref); a
`memref<..xui8>` (a bufferized ui8 tensor) holds uint8. Scalars are Python ints in the signed
range of their type, f32 as `np.float32` (so arithmetic on them rounds as f32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, count
from math import prod

import numpy as np
from numpy.lib.array_utils import byte_bounds
from xdsl.dialects import bufferization, memref
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AnyFloat,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerType,
    MemRefType,
    UnrealizedConversionCastOp,
    f32,
    i1,
)
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    impl,
    impl_external,
    register_impls,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.comparisons import to_signed
from xdsl.utils.exceptions import InterpretationError

from tinyattn.dialects import dma
from tinyattn.dialects.dense import numpy_dtype, to_numpy

GARBAGE = 0xCD
_FIRST_ADDRESS = 0x10000
_PAGE = 4096  # base buffers start on pages, a page apart: an overrun does not reach the next


def scalar(value: object, typ: Attribute) -> object:
    """`value` as the interpreter holds a scalar of type `typ`."""
    if typ == f32:
        return np.float32(value)
    if isinstance(typ, AnyFloat):
        return float(value)
    if typ == i1:
        return bool(value)
    if isinstance(typ, IntegerType):
        return to_signed(int(value), typ.width.data)
    return int(value)  # index


def _pointer(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


@dataclass(frozen=True)
class _Buffer:
    address: int
    data: np.ndarray  # its bytes: uint8, 1-D, contiguous

    @property
    def pointer(self) -> int:
        return _pointer(self.data)

    def holds(self, array: np.ndarray) -> bool:
        low, high = byte_bounds(array)
        return self.pointer <= low and high <= self.pointer + self.data.size


class Memory:
    """The live base buffers of one run, each at a fake address."""

    def __init__(self):
        self._buffers: list[_Buffer] = []
        self._next = _FIRST_ADDRESS

    def allocate(self, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
        """A new buffer of garbage seen as an array of `shape` and `dtype`."""
        dtype = np.dtype(dtype)
        data = np.full(prod(shape) * dtype.itemsize, GARBAGE, np.uint8)
        self._add(data)
        return data.view(dtype).reshape(shape)

    def hold(self, array: np.ndarray) -> np.ndarray:
        """`array` itself if it lies in a live buffer, else in a new one (itself if contiguous)."""
        if self._holding(array) is None:
            array = np.ascontiguousarray(array)
            self._add(array.reshape(-1).view(np.uint8))
        return array

    def free(self, array: np.ndarray) -> None:
        """End the buffer `array` views from its start: its bytes become garbage, its address
        invalid."""
        buffer = self._holding(array)
        if buffer is None or _pointer(array) != buffer.pointer:
            raise InterpretationError("memref.dealloc of a memref that is not a live allocation")
        buffer.data[...] = GARBAGE
        self._buffers.remove(buffer)

    def address(self, array: np.ndarray) -> int:
        """The address of the first element of `array`."""
        buffer = self._holding(array)
        if buffer is None:
            raise InterpretationError("a memref outside every live buffer (used after dealloc?)")
        return buffer.address + _pointer(array) - buffer.pointer

    def view(
        self, address: int, shape: Sequence[int], strides: Sequence[int], dtype: np.dtype
    ) -> np.ndarray:
        """The array of `dtype` at byte `address` with `shape` and `strides` (in elements)."""
        buffer = next(
            (b for b in self._buffers if b.address <= address < b.address + b.data.size), None
        )
        if buffer is None:
            raise InterpretationError(f"address {address:#x} is outside every live buffer")
        dtype = np.dtype(dtype)
        try:
            return np.ndarray(
                tuple(shape),
                dtype,
                buffer=buffer.data,
                offset=address - buffer.address,
                strides=tuple(stride * dtype.itemsize for stride in strides),
            )
        except ValueError as error:
            raise InterpretationError(
                f"{list(shape)} {dtype} at {address:#x} with strides {list(strides)} overruns "
                f"the buffer at {buffer.address:#x} ({buffer.data.size} bytes)"
            ) from error

    def _add(self, data: np.ndarray) -> None:
        self._buffers.append(_Buffer(self._next, data))
        self._next = (self._next + data.size + 2 * _PAGE - 1) // _PAGE * _PAGE

    def _holding(self, array: np.ndarray) -> _Buffer | None:
        return next((b for b in self._buffers if b.holds(array)), None)


def _values(static: DenseArrayBase, dynamic: Sequence[int]) -> list[int]:
    """Static offsets, sizes or strides with the dynamic ones (DYNAMIC_INDEX) filled in."""
    rest = iter(dynamic)
    return [next(rest) if value == DYNAMIC_INDEX else value for value in static.get_values()]


def _memref_type(value: SSAValue) -> MemRefType[Attribute]:
    typ = value.type
    assert isinstance(typ, MemRefType)
    return typ


def _static_shape(op: Operation, typ: MemRefType[Attribute]) -> tuple[int, ...]:
    if not typ.has_static_shape():
        raise InterpretationError(f"{op.name}: dynamic shapes are not supported ({typ})")
    return typ.get_shape()


def _typed(op: Operation, array: np.ndarray) -> np.ndarray:
    """`array` as the memref result of `op`, whose type it must agree with (element type,
    shape, and the static strides of its non-unit dimensions)."""
    typ = _memref_type(op.results[0])
    strides = [stride // array.itemsize for stride in array.strides]
    claimed = typ.get_strides() or [None] * len(strides)
    if (
        array.dtype != numpy_dtype(typ.get_element_type())
        or array.shape != typ.get_shape()
        or any(
            want is not None and size > 1 and want != have
            for want, have, size in zip(claimed, strides, array.shape, strict=True)
        )
    ):
        raise InterpretationError(
            f"{op.name}: its view ({array.dtype}, shape {list(array.shape)}, strides {strides}) "
            f"disagrees with its type {typ}"
        )
    return array


def _rank_reduced(op: memref.SubviewOp, view: np.ndarray) -> np.ndarray:
    """`view` without the unit dimensions a rank-reducing subview drops (which ones, among
    several, does not change what it addresses)."""
    shape = _memref_type(op.result).get_shape()
    units = [axis for axis, size in enumerate(view.shape) if size == 1]
    for dropped in combinations(units, view.ndim - len(shape)):
        if tuple(n for axis, n in enumerate(view.shape) if axis not in dropped) == shape:
            return view.squeeze(dropped)
    raise InterpretationError(f"{op.name}: {list(view.shape)} does not reduce to {list(shape)}")


def _check_indices(op: Operation, array: np.ndarray, indices: Sequence[int]) -> None:
    if any(not 0 <= index < size for index, size in zip(indices, array.shape, strict=True)):
        raise InterpretationError(f"{op.name}: index {list(indices)} outside {list(array.shape)}")


@register_impls
class MemrefFunctions(InterpreterFunctions):
    """memref, bufferization (the tensor boundary of a tiled function), the ui8 <-> i8 casts,
    `dma` transfers and the runtime's DMA calls, on the buffers of `memory`. A transfer
    completes when it starts; waiting checks that it was started and not yet waited for."""

    def __init__(self, memory: Memory):
        self.memory = memory
        self.globals: dict[Attribute, np.ndarray] = {}
        self.tokens = count(1)
        self.pending: set[int] = set()

    def _aligned(self, interpreter: Interpreter, value: SSAValue) -> int:
        """The address of the aligned pointer of memref `value`: views keep their source's; an
        allocation, a global, an argument or a `memref.view` starts at its first element."""
        views = memref.SubviewOp | memref.ReinterpretCastOp | UnrealizedConversionCastOp
        while isinstance(value.owner, views):
            value = value.owner.operands[0]
        (array,) = interpreter.get_values((value,))
        return self.memory.address(array)

    def _start(self) -> int:
        token = next(self.tokens)
        self.pending.add(token)
        return token

    def _wait(self, op: Operation, token: int) -> PythonValues:
        if token not in self.pending:
            raise InterpretationError(f"{op.name}: transfer {token} was not started or is done")
        self.pending.remove(token)
        return ()

    # -- buffers ----------------------------------------------------------------------------------

    @impl(memref.AllocOp)
    def run_alloc(self, interpreter: Interpreter, op: memref.AllocOp, args: PythonValues):
        return (self._allocate(op),)

    @impl(memref.AllocaOp)
    def run_alloca(self, interpreter: Interpreter, op: memref.AllocaOp, args: PythonValues):
        """A kernel's stack scratch: fresh memory per call of its function (never freed: the
        interpreter runs one call)."""
        return (self._allocate(op),)

    def _allocate(self, op: memref.AllocOp | memref.AllocaOp) -> np.ndarray:
        typ = _memref_type(op.memref)
        return self.memory.allocate(_static_shape(op, typ), numpy_dtype(typ.get_element_type()))

    @impl(memref.DeallocOp)
    def run_dealloc(self, interpreter: Interpreter, op: memref.DeallocOp, args: PythonValues):
        self.memory.free(args[0])
        return ()

    @impl(memref.GetGlobalOp)
    def run_get_global(self, interpreter: Interpreter, op: memref.GetGlobalOp, args: PythonValues):
        if op.name_ not in self.globals:
            glob = interpreter.get_op_for_symbol(op.name_)
            assert isinstance(glob, memref.GlobalOp)
            typ = glob.type
            dtype = numpy_dtype(typ.get_element_type())
            init = glob.initial_value
            if isinstance(init, DenseIntOrFPElementsAttr):
                values = to_numpy(init).astype(dtype).reshape(typ.get_shape())
                values.flags.writeable = glob.constant is None  # constants live in flash
                self.globals[op.name_] = self.memory.hold(values)
            else:
                self.globals[op.name_] = self.memory.allocate(_static_shape(glob, typ), dtype)
        return (self.globals[op.name_],)

    @impl(bufferization.ToBufferOp)
    def run_to_buffer(
        self, interpreter: Interpreter, op: bufferization.ToBufferOp, args: PythonValues
    ):
        element = _memref_type(op.memref).get_element_type()
        buffer = np.ascontiguousarray(args[0], numpy_dtype(element))
        return (_typed(op, self.memory.hold(buffer)),)

    @impl(bufferization.ToTensorOp)
    def run_to_tensor(
        self, interpreter: Interpreter, op: bufferization.ToTensorOp, args: PythonValues
    ):
        return (args[0],)

    # -- views ----------------------------------------------------------------------------------

    @impl(memref.SubviewOp)
    def run_subview(self, interpreter: Interpreter, op: memref.SubviewOp, args: PythonValues):
        source = args[0]
        offsets = _values(op.static_offsets, interpreter.get_values(op.offsets))
        sizes = _values(op.static_sizes, interpreter.get_values(op.sizes))
        strides = _values(op.static_strides, interpreter.get_values(op.strides))
        dims = list(zip(source.shape, offsets, sizes, strides, strict=True))
        if any(o < 0 or n < 0 or s < 1 or (n and o + (n - 1) * s >= d) for d, o, n, s in dims):
            raise InterpretationError(
                f"{op.name}: offsets {offsets}, sizes {sizes}, strides {strides} leave "
                f"{list(source.shape)}"
            )
        view = source[tuple(slice(o, o + n * s, s) for _, o, n, s in dims)]
        view = _rank_reduced(op, view)
        assert view.size == 0 or np.may_share_memory(view, source)
        return (_typed(op, view),)

    @impl(memref.ReinterpretCastOp)
    def run_reinterpret_cast(
        self, interpreter: Interpreter, op: memref.ReinterpretCastOp, args: PythonValues
    ):
        (offset,) = _values(op.static_offsets, interpreter.get_values(op.offsets))
        sizes = _values(op.static_sizes, interpreter.get_values(op.sizes))
        strides = _values(op.static_strides, interpreter.get_values(op.strides))
        address = self._aligned(interpreter, op.source) + offset * args[0].itemsize
        return (_typed(op, self.memory.view(address, sizes, strides, args[0].dtype)),)

    @impl(memref.ViewOp)
    def run_view(self, interpreter: Interpreter, op: memref.ViewOp, args: PythonValues):
        source, shift = args[0], args[1]
        typ = _memref_type(op.result)
        shape, strides = _static_shape(op, typ), typ.get_strides()
        address = self.memory.address(source) + shift
        view = self.memory.view(address, shape, strides, numpy_dtype(typ.get_element_type()))
        return (_typed(op, view),)

    @impl(UnrealizedConversionCastOp)
    def run_cast(
        self, interpreter: Interpreter, op: UnrealizedConversionCastOp, args: PythonValues
    ):
        """A memref seen with another element type of the same size (ui8 <-> i8)."""
        if len(args) != 1 or len(op.results) != 1 or not isinstance(args[0], np.ndarray):
            raise InterpretationError(f"{op.name}: only casts of one memref are supported")
        element = _memref_type(op.results[0]).get_element_type()
        view = args[0].view(numpy_dtype(element))
        assert np.may_share_memory(view, args[0])
        return (_typed(op, view),)

    # -- elements and metadata ------------------------------------------------------------------

    @impl(memref.LoadOp)
    def run_load(self, interpreter: Interpreter, op: memref.LoadOp, args: PythonValues):
        array, *indices = args
        _check_indices(op, array, indices)
        return (scalar(array[tuple(indices)], op.res.type),)

    @impl(memref.StoreOp)
    def run_store(self, interpreter: Interpreter, op: memref.StoreOp, args: PythonValues):
        value, array, *indices = args
        _check_indices(op, array, indices)
        array[tuple(indices)] = value
        return ()

    @impl(memref.ExtractAlignedPointerAsIndexOp)
    def run_extract_aligned_pointer(
        self, interpreter: Interpreter, op: memref.ExtractAlignedPointerAsIndexOp, args
    ):
        return (self._aligned(interpreter, op.source),)

    @impl(memref.ExtractStridedMetaDataOp)
    def run_extract_strided_metadata(
        self, interpreter: Interpreter, op: memref.ExtractStridedMetaDataOp, args: PythonValues
    ):
        array = args[0]
        aligned = self._aligned(interpreter, op.source)
        offset, misaligned = divmod(self.memory.address(array) - aligned, array.itemsize)
        assert not misaligned, "a view starts inside an element of its base"
        base = self.memory.view(aligned, (), (), array.dtype)
        strides = [stride // array.itemsize for stride in array.strides]
        return (base, offset, *array.shape, *strides)

    # -- transfers ------------------------------------------------------------------------------

    @impl(dma.StartOp)
    def run_dma_start(self, interpreter: Interpreter, op: dma.StartOp, args: PythonValues):
        src, dst = args
        dst[...] = src
        return (self._start(),)

    @impl(dma.WaitOp)
    def run_dma_wait(self, interpreter: Interpreter, op: dma.WaitOp, args: PythonValues):
        return self._wait(op, args[0])

    def _copy(self, dst: int, src: int, row_bytes: int, rows: int, strides: tuple[int, int]):
        """Copy `rows` rows of `row_bytes` bytes between byte addresses (row strides in bytes:
        destination, source)."""
        shape = (rows, row_bytes)
        target = self.memory.view(dst, shape, (strides[0], 1), np.uint8)
        target[...] = self.memory.view(src, shape, (strides[1], 1), np.uint8)
        return (self._start(),)

    @impl_external("ta_dma_start_1d")
    def run_ta_dma_start_1d(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        dst, src, size = args
        return self._copy(dst, src, size, 1, (size, size))

    @impl_external("ta_dma_start_2d")
    def run_ta_dma_start_2d(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        dst, src, row_bytes, rows, dst_stride, src_stride = args
        return self._copy(dst, src, row_bytes, rows, (dst_stride, src_stride))

    @impl_external("ta_dma_wait")
    def run_ta_dma_wait(self, interpreter: Interpreter, op: Operation, args: PythonValues):
        return self._wait(op, args[0])
