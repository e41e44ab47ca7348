"""End-to-end checks of the target table, the C runtime and the toolchain driver.

A hand-written "model" (harness.c) is compiled, linked and run on every
runnable target; its output is checked against numpy, and on QEMU targets its
instruction count must be positive and identical across runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from requires import needs_tools, target_param

from tinyattn.backend import toolchain
from tinyattn.backend.targets import TARGETS, get_target
from tinyattn.backend.toolchain import ToolchainError

HERE = Path(__file__).parent
N, ROWS, COLS, SRC_STRIDE, COL0 = 64, 8, 16, 40, 8  # as in harness.c


RUNNABLE = [target_param(t.name) for t in TARGETS.values() if t.runnable]
LLVM = ("clang-22", "ld.lld-22", "llc-22")
needs_llvm = needs_tools(*LLVM)


def _build(name: str, build_dir: Path, source: Path) -> Path:
    """Compile `source` with the runtime into build_dir/<target>/<stem>.elf."""
    target = get_target(name)
    out = build_dir / name
    obj = toolchain.compile_c(target, source, out / f"{source.stem}.o")
    runtime = toolchain.build_runtime(target, build_dir)
    return toolchain.link(target, [obj, *runtime], out / f"{source.stem}.elf")


def _source(build_dir: Path, stem: str, text: str) -> Path:
    path = build_dir / "src" / f"{stem}.c"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module", params=RUNNABLE)
def harness(request, build_dir) -> tuple[str, Path]:
    return request.param, _build(request.param, build_dir, HERE / "harness.c")


def _inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "alpha": np.array([rng.uniform(-2, 2)], np.float32),
        "x": rng.uniform(-4, 4, N).astype(np.float32),
        "a": rng.integers(-128, 128, N, dtype=np.int8),
        "b": rng.integers(-128, 128, N, dtype=np.int8),
        "src": rng.integers(0, 256, (ROWS, SRC_STRIDE), dtype=np.uint8),
    }


def _run_harness(name, elf, workdir: Path, build_dir) -> tuple[toolchain.RunResult, dict]:
    inputs = _inputs(np.random.default_rng(0))
    workdir.mkdir(exist_ok=True)
    (workdir / "in.bin").write_bytes(b"".join(v.tobytes() for v in inputs.values()))
    result = toolchain.run(get_target(name), elf, workdir, build_dir=build_dir)
    return result, inputs


def test_model_output_and_repeatable_count(harness, tmp_path, build_dir):
    name, elf = harness
    result, inp = _run_harness(name, elf, tmp_path, build_dir)
    assert result.exit_code == 0, result.console

    raw = (tmp_path / "out.bin").read_bytes()
    dot, dma_bytes = np.frombuffer(raw[:8], np.int32)
    y = np.frombuffer(raw[8 : 8 + 4 * N], np.float32)
    tile = np.frombuffer(raw[8 + 4 * N :], np.uint8).reshape(ROWS, COLS)

    assert dot == np.dot(inp["a"].astype(np.int32), inp["b"].astype(np.int32))
    x, alpha = inp["x"], inp["alpha"][0]
    np.testing.assert_allclose(y, alpha * x + x * x, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tile, inp["src"][:, COL0 : COL0 + COLS])
    assert dma_bytes == 2 * ROWS * COLS  # the strided tile in, then the tile out

    if get_target(name).is_host:
        assert result.instructions is None
    else:
        assert isinstance(result.instructions, int) and result.instructions > 0
        again, _ = _run_harness(name, elf, tmp_path / "again", build_dir)
        assert again.instructions == result.instructions


@pytest.mark.parametrize("content", [None, b"\0" * 16], ids=["missing", "short"])
def test_bad_input_exits_nonzero_with_message(harness, content, tmp_path, build_dir):
    name, elf = harness
    if content is not None:
        (tmp_path / "in.bin").write_bytes(content)
    result = toolchain.run(get_target(name), elf, tmp_path, build_dir=build_dir)
    assert result.exit_code == 2
    assert "cannot read in.bin" in result.console
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("name", RUNNABLE)
def test_fault_is_reported_as_crash(name, tmp_path, build_dir):
    source = _source(build_dir, "trap", "int main(void) { __builtin_trap(); }\n")
    elf = _build(name, build_dir, source)
    with pytest.raises(ToolchainError, match=r"crashed on .*exit code 3.*tinyattn: "):
        toolchain.run(get_target(name), elf, tmp_path, build_dir=build_dir)


@pytest.mark.parametrize("name", [target_param("rv32")])
def test_timeout_is_a_toolchain_error(name, tmp_path, build_dir):
    source = _source(build_dir, "hang", 'int main(void) { for (;;) __asm__ volatile(""); }\n')
    elf = _build(name, build_dir, source)
    with pytest.raises(ToolchainError, match="timed out after 1 s"):
        toolchain.run(get_target(name), elf, tmp_path, timeout=1, build_dir=build_dir)


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m7", "rv32"])
@needs_llvm
def test_l1_overflow_fails_at_link_time(name, build_dir):
    target = get_target(name)
    source = (
        f'__attribute__((section(".tinyattn.l1"))) char arena[{target.l1.size + 100}];\n'
        "int main(void) { return arena[7]; }\n"
    )
    with pytest.raises(ToolchainError) as err:
        _build(name, build_dir, _source(build_dir, f"overflow_{name}", source))
    message = str(err.value)
    assert "\n" not in message
    assert f"section .tinyattn.l1 does not fit in region {target.l1.name}" in message
    assert "overflowed by" in message
    assert not (build_dir / name / f"overflow_{name}.elf").exists()


@needs_llvm
def test_gap9_compiles_riscv32_objects(build_dir):
    gap9 = get_target("gap9")
    obj = toolchain.compile_c(gap9, HERE / "harness.c", build_dir / "gap9" / "harness.o")
    ll = build_dir / "gap9" / "mac.ll"
    ll.write_text(
        "define i32 @mac(i32 %a, i32 %b, i32 %c) {\n"
        "  %m = mul i32 %a, %b\n  %s = add i32 %m, %c\n  ret i32 %s\n}\n"
    )
    for path in (obj, toolchain.compile_ll(gap9, ll, ll.with_suffix(".o"))):
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and header[4] == 1  # ELFCLASS32
        assert int.from_bytes(header[18:20], "little") == 243  # EM_RISCV
    with pytest.raises(ToolchainError, match="compile-only"):
        toolchain.build_runtime(gap9, build_dir)


@needs_llvm
def test_compile_error_is_one_line(build_dir):
    source = _source(build_dir, "bad", "int main(void) { return nope; }\n")
    with pytest.raises(ToolchainError, match=r"^clang-22 failed compiling bad\.c .*error") as err:
        _build("cortex-m4", build_dir, source)
    assert "\n" not in str(err.value)


def test_get_target_lists_known_names():
    assert get_target("cortex-m7").l1.size == 128 * 1024
    with pytest.raises(ValueError, match="known targets: host, cortex-m4, cortex-m7, rv32, gap9"):
        get_target("m0")


def test_memory_ld_comes_from_target_table():
    text = toolchain.memory_ld(get_target("cortex-m7"))
    assert "DTCM (rwx) : ORIGIN = 0x20000000, LENGTH = 0x20000" in text
    assert 'REGION_ALIAS("L2", SRAM);' in text
    single = toolchain.memory_ld(get_target("cortex-m4"))
    assert 'REGION_ALIAS("L1", SRAM);' in single and 'REGION_ALIAS("L2", SRAM);' in single


def test_missing_tool_says_how_to_install():
    with pytest.raises(ToolchainError, match="make setup"):
        toolchain.tool("no-such-tool-22")
