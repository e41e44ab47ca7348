"""Arrays handed to a model as test-vector files give them: keyed by tensor name, or by position
(Deeploy's .npz files name them `input_0`, `arr_0`, whatever the graph calls them, and may hold
more arrays than the graph has inputs, e.g. the weights too)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray] | Sequence[np.ndarray]


class ArraysNote(UserWarning):
    """Something the user should know about the arrays given, which does not stop the run (the
    CLIs print it as a note)."""


def in_order(names: Sequence[str], arrays: Arrays, verb: str) -> list[np.ndarray]:
    """`arrays` in the order of `names`: by name when every name is a key, else by position.
    Arrays beyond the model's are ignored with an `ArraysNote`; ValueError when there are fewer
    than names, its message saying "the model <verb> N (names)"."""
    keys = list(arrays) if isinstance(arrays, Mapping) else list(range(len(arrays)))
    if isinstance(arrays, Mapping) and set(names) <= arrays.keys():
        used: list = list(names)
    else:
        if len(keys) < len(names):
            given = f"{keys}" if isinstance(arrays, Mapping) else f"{len(keys)} arrays"
            raise ValueError(f"the model {verb} {len(names)} ({', '.join(names)}); got {given}")
        used = keys[: len(names)]
    ignored = [key for key in keys if key not in used]
    if ignored:
        shown = ", ".join(f"'{key}'" if isinstance(key, str) else f"#{key}" for key in ignored)
        warnings.warn(
            f"ignoring {shown}: the model {verb} {len(names)} ({', '.join(names)})",
            ArraysNote,
            stacklevel=2,
        )
    return [np.asarray(arrays[key]) for key in used]  # type: ignore[index]
