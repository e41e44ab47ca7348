"""Conversion between numpy arrays and builtin dense element attributes / tensor types."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    IntegerType,
    Signedness,
    TensorType,
    f32,
    f64,
    i1,
)
from xdsl.ir import Attribute

_SIGNED = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
_UNSIGNED = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """The numpy dtype that stores values of an MLIR element type (signless ints are signed)."""
    if element_type == f32:
        return np.dtype(np.float32)
    if element_type == f64:
        return np.dtype(np.float64)
    if element_type == i1:
        return np.dtype(np.bool_)
    if isinstance(element_type, IntegerType) and element_type.width.data in _SIGNED:
        unsigned = element_type.signedness.data == Signedness.UNSIGNED
        return np.dtype((_UNSIGNED if unsigned else _SIGNED)[element_type.width.data])
    raise ValueError(f"no numpy dtype for element type {element_type}")


def element_type_of(dtype: np.dtype) -> Attribute:
    """The MLIR element type for a numpy dtype (int8 -> i8, uint8 -> ui8, ...)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return f32
    if dtype == np.float64:
        return f64
    if dtype.kind in "iu":
        signedness = Signedness.UNSIGNED if dtype.kind == "u" else Signedness.SIGNLESS
        return IntegerType(dtype.itemsize * 8, signedness)
    raise ValueError(f"no MLIR element type for numpy dtype {dtype}")


def to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """A dense attribute's values as a numpy array of its shape (splats broadcast)."""
    shape = tuple(attr.get_shape())
    values = np.frombuffer(attr.data.data, dtype=numpy_dtype(attr.get_element_type()))
    if values.size == 1 and int(np.prod(shape)) != 1:
        return np.full(shape, values[0])
    return values.reshape(shape).copy()


def from_numpy(
    array: np.ndarray, element_type: Attribute | None = None
) -> DenseIntOrFPElementsAttr:
    """A dense attribute holding `array`, stored as `element_type` (default: from its dtype)."""
    element_type = element_type or element_type_of(array.dtype)
    data = np.ascontiguousarray(array, dtype=numpy_dtype(element_type))
    return DenseIntOrFPElementsAttr(
        TensorType(element_type, list(array.shape)), BytesAttr(data.tobytes())
    )


def tensor_type(array: np.ndarray) -> TensorType[Attribute]:
    return TensorType(element_type_of(array.dtype), list(array.shape))
