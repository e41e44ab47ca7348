"""The runtime's floorf (runtime/src/mem.c), which llc calls where the FPU has no rounding
instruction (Cortex-M4): bit-exact against numpy on every bare-metal board, signed zeros,
halfway cases, 2^23 boundaries, infinities and NaN included."""

from __future__ import annotations

import numpy as np
import pytest
from handwritten import runnable

from tinyattn.backend import toolchain
from tinyattn.backend.targets import TARGETS, get_target

FUNCTIONS = ("floorf",)
N = 4096

# Built -ffreestanding (so -fno-builtin): every call reaches the runtime's function.
SOURCE = f"""#include "tinyattn_rt.h"
{"".join(f"float {f}(float);" for f in FUNCTIONS)}
static float in[{N}], out[{len(FUNCTIONS)}][{N}];
int main(void) {{
  if (ta_read_file("in.bin", in, sizeof in)) return 2;
  for (int i = 0; i < {N}; i++) {{
    {" ".join(f"out[{k}][i] = {f}(in[i]);" for k, f in enumerate(FUNCTIONS))}
  }}
  return ta_write_file("out.bin", out, sizeof out) ? 2 : 0;
}}
"""


def _values() -> np.ndarray:
    special = np.array(
        [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 1e-45, -1e-45,
         0.99999994, -0.99999994, 1.0, -1.0, 2.0**23, -(2.0**23), 2.0**23 - 0.5, -(2.0**23 - 0.5),
         2.0**22 + 0.5, -(2.0**22 + 0.5), 2.0**22 + 1.5, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan],
        np.float32,
    )  # fmt: skip
    rng = np.random.default_rng(7)
    halves = (rng.integers(-(2**22), 2**22, 512) + 0.5).astype(np.float32)
    scaled = (rng.standard_normal(N) * 10.0 ** rng.integers(-3, 9, N)).astype(np.float32)
    return np.concatenate([special, halves, scaled])[:N]


def _expected(x: np.ndarray) -> list[np.ndarray]:
    return [np.floor(x)]


BARE_METAL = [runnable(t.name) for t in TARGETS.values() if t.runnable and not t.is_host]


@pytest.mark.parametrize("name", BARE_METAL)
def test_rounding_is_exact(name, tmp_path, build_dir):
    target = get_target(name)
    (tmp_path / "rounding.c").write_text(SOURCE)
    obj = toolchain.compile_c(target, tmp_path / "rounding.c", tmp_path / "rounding.o")
    elf = toolchain.link(
        target, [obj, *toolchain.build_runtime(target, build_dir)], tmp_path / "rounding.elf"
    )
    x = _values()
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    result = toolchain.run(target, elf, tmp_path, count=False, build_dir=build_dir)
    assert result.exit_code == 0, result.console
    got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(len(FUNCTIONS), N)
    for function, ours, expected in zip(FUNCTIONS, got, _expected(x), strict=True):
        # Bit patterns: signed zeros must match too; NaN stays NaN.
        same = (ours.view(np.uint32) == expected.view(np.uint32)) | (
            np.isnan(ours) & np.isnan(expected)
        )
        bad = np.flatnonzero(~same)
        assert not bad.size, (
            f"{function}({x[bad[0]]!r}) = {ours[bad[0]]!r}, not {expected[bad[0]]!r}"
        )
