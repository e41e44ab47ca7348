"""The C package a compile leaves for a firmware engineer, beside model.o and model.h:

    libtinyattn_rt.a  the runtime the model calls, built for the target: ta_dma_* (memcpy-based,
                      weak: define your own to bind a DMA engine) and, on bare metal, weak
                      memcpy/memset/memmove/floorf for firmware without a C library
    tinyattn_rt.h     its C API
    tinyattn.ld       linker-script fragment placing the arenas in NOLOAD sections of the
                      memories the model was planned for
    tinyattn.cmake    CMake snippet: an interface library `<name>` to link
    example/          main.c (runs the model once on a fixed input, prints the outputs' bytes),
                      a Makefile and a CMakeLists.txt building it from the package alone, and
                      board/: start-up, console and linker script of the emulated board (QEMU),
                      the part a real firmware replaces with its vendor's

The example's input is `example_inputs` and its output lines `<output> <offset> <hex bytes>`
(`parse_example_output`), so a test can check a package end to end.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import numpy as np

from tinyattn.backend import toolchain
from tinyattn.backend.targets import Target
from tinyattn.driver.harness import (
    HEADER,
    arena_declaration,
    c_type,
    entry_call,
    model_prefix,
    tensor_buffers,
)
from tinyattn.driver.lowered_model import LoweredModel, TensorSpec

LIBRARY = "libtinyattn_rt.a"
FRAGMENT = "tinyattn.ld"
CMAKE = "tinyattn.cmake"
BOARD_SOURCES = ("crt0.c", "semihost.c")  # runtime/src, with the board's startup.c
# Everything write_package may write into a compile's directory.
PACKAGE = (LIBRARY, "tinyattn_rt.h", FRAGMENT, CMAKE, "example")


def example_inputs(specs: list[TensorSpec]) -> list[np.ndarray]:
    """What example/main.c feeds each input: element i is (37 i mod 17) - 8 (unsigned: without
    the -8), divided by 8 for floats; every value exact in every input type."""
    arrays = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        count = int(np.prod(spec.shape, dtype=np.int64))
        values = (np.arange(count) * 37) % 17 - (0 if dtype.kind == "u" else 8)
        scaled = values / 8 if dtype.kind == "f" else values
        arrays.append(scaled.astype(dtype).reshape(spec.shape))
    return arrays


def parse_example_output(console: str, specs: list[TensorSpec]) -> list[np.ndarray]:
    """The outputs example/main.c printed, as arrays of the specs' types and shapes."""
    data: dict[str, bytearray] = {}
    for line in console.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("out") and parts[0][3:].isdigit():
            data.setdefault(parts[0], bytearray()).extend(bytes.fromhex(parts[2]))
    return [
        np.frombuffer(bytes(data.get(f"out{index}", b"")), np.dtype(spec.dtype)).reshape(spec.shape)
        for index, spec in enumerate(specs)
    ]


def _input_value(spec: TensorSpec) -> str:
    dtype = np.dtype(spec.dtype)
    pattern = "(int)((i * 37u) % 17u)" if dtype.kind == "u" else "((int)((i * 37u) % 17u) - 8)"
    if dtype.kind == "f":
        return f"({c_type(dtype)})({pattern}) * 0.125f"
    return f"({c_type(dtype)}){pattern}"


def example_source(lowered: LoweredModel) -> str:
    """example/main.c: the model on `example_inputs`, its outputs' bytes on the console."""
    prefix = model_prefix(lowered)
    fills = [
        f"  for (unsigned i = 0; i < {prefix}_IN{i}_ELEMENTS; i++)\n"
        f"    in{i}[i] = {_input_value(spec)};"
        for i, spec in enumerate(lowered.inputs)
    ]
    prints = [
        f'  print_bytes("out{i}", out{i}, sizeof out{i});' for i in range(len(lowered.outputs))
    ]
    return "\n".join(
        [
            f"/* example/main.c: runs '{lowered.entry}' once and prints its outputs' bytes. */",
            "#include <stdint.h>",
            "",
            '#include "tinyattn_rt.h" /* ta_puts: the console of board/ (replace with yours) */',
            f'#include "{HEADER}"',
            "",
            *tensor_buffers(lowered),
            *(line for arena in lowered.arenas for line in arena_declaration(lowered, arena)),
            "",
            "/* One line per 16 bytes: `<name> <offset> <hex>`. */",
            "static void print_bytes(const char *name, const void *data, unsigned long bytes) {",
            '  static const char digits[] = "0123456789abcdef";',
            "  const uint8_t *p = data;",
            "  for (unsigned long at = 0; at < bytes; at += 16) {",
            "    char line[64];",
            "    unsigned n = 0;",
            "    for (const char *c = name; *c; c++)",
            "      line[n++] = *c;",
            "    line[n++] = ' ';",
            "    for (int shift = 28; shift >= 0; shift -= 4)",
            "      line[n++] = digits[(at >> shift) & 15];",
            "    line[n++] = ' ';",
            "    for (unsigned long i = at; i < bytes && i < at + 16; i++) {",
            "      line[n++] = digits[p[i] >> 4];",
            "      line[n++] = digits[p[i] & 15];",
            "    }",
            "    line[n++] = '\\n';",
            "    line[n] = 0;",
            "    ta_puts(line);",
            "  }",
            "}",
            "",
            "int main(void) {",
            *fills,
            f"  {entry_call(lowered)}",
            *prints,
            "  return 0;",
            "}",
            "",
        ]
    )


def _cmake(name: str) -> str:
    return "\n".join(
        [
            "# Link the tinyattn model: include(<this directory>/tinyattn.cmake), then",
            f"#   target_link_libraries(<your firmware> PRIVATE {name})",
            "# and INCLUDE tinyattn.ld in the firmware's linker script (see its first lines).",
            f"add_library({name} INTERFACE)",
            f"target_include_directories({name} INTERFACE ${{CMAKE_CURRENT_LIST_DIR}})",
            f"target_link_libraries({name} INTERFACE",
            "  ${CMAKE_CURRENT_LIST_DIR}/model.o ${CMAKE_CURRENT_LIST_DIR}/" + LIBRARY + ")",
            f"target_link_options({name} INTERFACE -L${{CMAKE_CURRENT_LIST_DIR}})",
            "",
        ]
    )


def _makefile(target: Target) -> str:
    flags = " ".join(shlex.quote(f) for f in toolchain.package_cflags(target))
    qemu = " ".join(shlex.quote(a) for a in toolchain.qemu_command(target, "example.elf"))
    return "\n".join(
        [
            f"# The example firmware for {target.name}, from this package alone: `make run`",
            "# builds it and runs it under QEMU. board/ is the emulated board's start-up, console",
            "# and linker script; a real firmware uses its vendor's instead.",
            "CC := clang-22",
            "LD := ld.lld-22",
            f"CFLAGS := {flags} -O2 -I.. -Iboard",
            "OBJECTS := main.o board/startup.o "
            + " ".join(f"board/{Path(s).stem}.o" for s in BOARD_SOURCES),
            "",
            f"example.elf: $(OBJECTS) ../model.o ../{LIBRARY} board/link.ld board/memory.ld",
            f"\t$(LD) -T board/link.ld -L board -L .. $(OBJECTS) ../model.o ../{LIBRARY} -o $@",
            "",
            f"%.o: %.c ../{HEADER}",
            "\t$(CC) $(CFLAGS) -c $< -o $@",
            "",
            "run: example.elf",
            f"\t{qemu}",
            "",
            ".PHONY: run",
            "",
        ]
    )


def _cmakelists(target: Target, name: str) -> str:
    flags = " ".join(toolchain.package_cflags(target))
    return "\n".join(
        [
            f"# The example firmware for {target.name} with CMake, from this package alone:",
            "#   cmake -S . -B build && cmake --build build   (then run build/example.elf as in",
            "# the Makefile's `run`). It links the model through ../tinyattn.cmake.",
            "cmake_minimum_required(VERSION 3.20)",
            "set(CMAKE_SYSTEM_NAME Generic)",
            "set(CMAKE_C_COMPILER clang-22)",
            "set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)",
            "project(tinyattn_example C)",
            f'set(CMAKE_C_FLAGS "{flags} -O2")',
            "set(CMAKE_C_LINK_EXECUTABLE",
            '  "ld.lld-22 <LINK_FLAGS> <OBJECTS> <LINK_LIBRARIES> -o <TARGET>")',
            "include(${CMAKE_CURRENT_SOURCE_DIR}/../" + CMAKE + ")",
            "add_executable(example.elf main.c board/startup.c "
            + " ".join(f"board/{source}" for source in BOARD_SOURCES)
            + ")",
            "target_include_directories(example.elf PRIVATE board)",
            f"target_link_libraries(example.elf PRIVATE {name})",
            "target_link_options(example.elf PRIVATE -T ${CMAKE_CURRENT_SOURCE_DIR}/board/link.ld",
            "  -L ${CMAKE_CURRENT_SOURCE_DIR}/board)",
            "",
        ]
    )


def write_package(out: Path, lowered: LoweredModel, target: Target, build_dir: Path) -> None:
    """The files above, into `out` (which holds model.o and model.h)."""
    shutil.copyfile(toolchain.build_library(target, build_dir), out / LIBRARY)
    shutil.copyfile(toolchain.RUNTIME_DIR / "include/tinyattn_rt.h", out / "tinyattn_rt.h")
    (out / CMAKE).write_text(_cmake(lowered.entry))
    if target.is_host or target.flash is None:
        return
    (out / FRAGMENT).write_text(toolchain.arena_fragment(target))
    if target.board is None:  # compile-only: no board to run an example on
        return
    board = out / "example" / "board"
    board.mkdir(parents=True)
    (out / "example" / "main.c").write_text(example_source(lowered))
    (out / "example" / "Makefile").write_text(_makefile(target))
    (out / "example" / "CMakeLists.txt").write_text(_cmakelists(target, lowered.entry))
    for source in BOARD_SOURCES:
        shutil.copyfile(toolchain.RUNTIME_DIR / "src" / source, board / source)
    shutil.copyfile(
        toolchain.RUNTIME_DIR / "boards" / target.board / "startup.c", board / "startup.c"
    )
    shutil.copyfile(toolchain.RUNTIME_DIR / "link.ld", board / "link.ld")
    (board / "memory.ld").write_text(toolchain.memory_ld(target))
