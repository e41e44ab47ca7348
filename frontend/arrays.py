"""Arrays handed to a model as test-vector files give them: keyed by tensor name, or by position
(Deeploy's .npz files name them `input_0`, `output_0`, whatever the graph calls them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray] | Sequence[np.ndarray]


def in_order(names: Sequence[str], arrays: Arrays, verb: str) -> list[np.ndarray]:
    """`arrays` in the order of `names`: by name when every name is a key, else by position.
    ValueError when they are not as many; its message says "the model <verb> N (names)"."""
    if isinstance(arrays, Mapping) and set(names) <= arrays.keys():
        return [np.asarray(arrays[name]) for name in names]
    ordered = [np.asarray(a) for a in (arrays.values() if isinstance(arrays, Mapping) else arrays)]
    if len(ordered) != len(names):
        given = f"{list(arrays)}" if isinstance(arrays, Mapping) else f"{len(ordered)} arrays"
        raise ValueError(f"the model {verb} {len(names)} ({', '.join(names)}); got {given}")
    return ordered
