"""The C side of a compiled model: its header (model.h) and the test harness (harness.c).

model.h is the model's documented C API: the entry prototype and #defines for every input,
output and arena. harness.c is the program the driver links with the model and the runtime to
run it: it reads each input from in<i>.bin, calls the entry between the counting markers,
writes each output to out<i>.bin and the DMA traffic to stats.bin. Guard bytes right before
each arena's first byte and right after its last (no padding between) catch a model that writes
outside its arena, on either side.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, MemRefType

from tinyattn.backend.targets import Target
from tinyattn.backend.toolchain import ARENA_SECTIONS
from tinyattn.dialects.annotations import entry_function, profile_marker, profile_regions
from tinyattn.dialects.dense import numpy_dtype
from tinyattn.dialects.memory import ALIGNMENT
from tinyattn.driver.lowered_model import ArenaSpec, LoweredModel, TensorSpec
from tinyattn.frontend.quantize import INPUT_SCALES, OUTPUT_SCALES

HEADER = "model.h"
STATS_FILE = "stats.bin"  # one little-endian uint64: bytes moved by DMA during the run
EXIT_IO_FAILED = 2  # an input file is missing or has the wrong size, or a write failed
EXIT_ARENA_OVERRUN = 4  # a guard around an arena was overwritten (3 is TA_EXIT_TRAP)
CANARY = (0xDE, 0xC0, 0x11, 0x7A) * 4  # arbitrary, unlikely as data; 16 bytes keep data aligned
GUARDS = ("before", "after")  # the guard fields around an arena's data

_C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    **{np.dtype(f"{s}int{w}"): f"{s}int{w}_t" for s in ("", "u") for w in (8, 16, 32, 64)},
}
# Symbols the harness and the runtime define, which an entry must not shadow.
_RESERVED = re.compile(r"main|ta_\w*|mem(cpy|set|move)|floorf")


def input_file(index: int) -> str:
    return f"in{index}.bin"


def output_file(index: int) -> str:
    return f"out{index}.bin"


def c_type(dtype: np.dtype) -> str:
    try:
        return _C_TYPES[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no C type for element type {dtype}") from None


def arena_name(arena: ArenaSpec) -> str:
    return f"arena_{arena.level.lower()}"


def check_entry(lowered: LoweredModel) -> None:
    """Raise ValueError unless the entry function has the signature the specs describe:
    (*inputs, *outputs, *arenas) as static memrefs of those shapes and element types, with
    at most one arena per known level; a mismatch would otherwise be a silently wrong call."""
    entry = lowered.entry
    if _RESERVED.fullmatch(entry):
        raise ValueError(f"entry function '{entry}' clashes with a harness or runtime symbol")
    functions = [op for op in lowered.module.walk() if isinstance(op, func.FuncOp)]
    found = [f for f in functions if f.sym_name.data == entry]
    if not found:
        raise ValueError(f"the lowered module has no entry function '{entry}'")
    levels = [arena.level for arena in lowered.arenas]
    if len(set(levels)) != len(levels) or not set(levels) <= ARENA_SECTIONS.keys():
        raise ValueError(f"arena levels must be distinct, among L1/L2; got {', '.join(levels)}")
    expected = [
        *((spec.shape, _storage(spec.dtype)) for spec in (*lowered.inputs, *lowered.outputs)),
        *(((arena.size,), np.dtype(np.int8)) for arena in lowered.arenas),
    ]
    actual = [
        (tuple(t.get_shape()), numpy_dtype(t.get_element_type()))
        if isinstance(t, MemRefType)
        else (None, None)
        for t in found[0].function_type.inputs.data
    ]
    if actual != expected:
        raise ValueError(
            f"entry '{entry}' takes {_describe(actual)} but the model specs describe "
            f"{_describe(expected)}"
        )


def _storage(dtype: np.dtype) -> np.dtype:
    """The dtype of the memref holding a tensor of `dtype`: memrefs hold signless integers, so
    unsigned data is stored (bit for bit) in the signed type of its width."""
    dtype = np.dtype(dtype)
    return np.dtype(f"i{dtype.itemsize}") if dtype.kind == "u" else dtype


def _describe(signature: list[tuple[tuple[int, ...] | None, np.dtype | None]]) -> str:
    return (
        "(" + ", ".join("non-memref" if s is None else f"{list(s)} {d}" for s, d in signature) + ")"
    )


def model_prefix(lowered: LoweredModel) -> str:
    """The prefix of model.h's macros: the entry's name, upper-cased."""
    return re.sub(r"\W", "_", lowered.entry).upper()


def _tensors(lowered: LoweredModel) -> list[tuple[str, TensorSpec]]:
    """(C variable, spec) of every input then every output: in0, in1, ..., out0, ..."""
    return [
        *((f"in{i}", s) for i, s in enumerate(lowered.inputs)),
        *((f"out{i}", s) for i, s in enumerate(lowered.outputs)),
    ]


def _scales(lowered: LoweredModel) -> dict[str, float]:
    """The real-value scale of each 8-bit input and output of a quantized model, by C variable
    (`real = scale * (q - 0)`: symmetric, zero point 0), as tinyattn-quantize records them."""
    function = entry_function(lowered.module, lowered.entry)
    scales = {}
    for prefix, attribute in (("in", INPUT_SCALES), ("out", OUTPUT_SCALES)):
        recorded = function.attributes.get(attribute)
        if isinstance(recorded, ArrayAttr):
            for index, scale in enumerate(recorded.data):
                scales[f"{prefix}{index}"] = scale.value.data
    return scales


def _c_string(text: str) -> str:
    """`text` as a C string literal of its UTF-8 bytes (ONNX names may hold any character):
    printable ASCII as it is, `"` and `\\` escaped, every other byte in octal."""
    def byte(value: int) -> str:
        char = chr(value)
        if char in '"\\':
            return "\\" + char
        return char if 0x20 <= value < 0x7F else f"\\{value:03o}"

    return '"' + "".join(byte(value) for value in text.encode()) + '"'


def _comment_safe(text: str) -> str:
    """`text` that cannot end the C comment it is written in."""
    return text.replace("*/", "*\\/")


def _tensor_defines(prefix: str, var: str, spec: TensorSpec, scale: float | None) -> list[str]:
    name = f"{prefix}_{var.upper()}"
    quantized = (
        [f"#define {name}_SCALE {scale!r}f", f"#define {name}_ZERO_POINT 0"]
        if scale is not None
        else []
    )
    return [
        f"#define {name}_NAME {_c_string(spec.name)}",
        f"#define {name}_TYPE {c_type(spec.dtype)}",
        f"#define {name}_RANK {len(spec.shape)}",
        f"#define {name}_SHAPE {{{', '.join(map(str, spec.shape))}}}",
        f"#define {name}_ELEMENTS {int(np.prod(spec.shape, dtype=np.int64))}",
        f"#define {name}_BYTES {spec.nbytes}",
        *quantized,
    ]


def _prototype(lowered: LoweredModel) -> str:
    inputs = {f"in{i}" for i in range(len(lowered.inputs))}
    params = [
        *(f"{'const ' * (v in inputs)}{c_type(s.dtype)} *{v}" for v, s in _tensors(lowered)),
        *(f"uint8_t *{arena_name(a)}" for a in lowered.arenas),
    ]
    return f"void {lowered.entry}({', '.join(params)});"


def _abi_guard(target: Target) -> list[str]:
    """Refuse, at compile time, a unit built for another float ABI than the model: the
    runtime's float functions (floorf) would then return in the wrong registers."""
    if "-mfloat-abi=hard" in target.clang_flags:
        condition, abi = "defined(__ARM_ARCH) && !defined(__ARM_PCS_VFP)", "-mfloat-abi=hard"
    elif "-mabi=ilp32f" in target.clang_flags:
        condition, abi = "defined(__riscv) && !defined(__riscv_float_abi_single)", "-mabi=ilp32f"
    else:
        return []
    return [
        f"#if {condition}",
        f'#error "the model is built for the {abi} ABI: build this unit with {abi} too"',
        "#endif",
        "",
    ]


MAX_INFO_RANK = 8
# The info struct type every model.h shares (guarded: several models may be included).
_INFO_TYPE = [
    "#ifndef TINYATTN_TENSOR_INFO_DEFINED",
    "#define TINYATTN_TENSOR_INFO_DEFINED",
    "/* One input or output of a model, as <entry>_inputs / <entry>_outputs list them. */",
    "typedef struct {",
    "  const char *name;      /* as in the model (ONNX) */",
    '  const char *type;      /* its C element type, e.g. "float", "int8_t" */',
    "  unsigned rank;",
    f"  unsigned shape[{MAX_INFO_RANK}];",
    "  unsigned long bytes;",
    "  float scale;           /* quantized 8-bit data: real = scale * (q - zero_point); */",
    "  int zero_point;        /* float data: scale 0 */",
    "} tinyattn_tensor_info;",
    "#endif",
]


def _info(lowered: LoweredModel, scales: dict[str, float]) -> list[str]:
    """`<entry>_inputs` and `<entry>_outputs`: the tensors' facts as data a program can walk
    (none for tensors of more than MAX_INFO_RANK dimensions)."""
    if any(len(spec.shape) > MAX_INFO_RANK for spec in (*lowered.inputs, *lowered.outputs)):
        return []
    lines = [*_INFO_TYPE]
    for kind, specs in (("in", lowered.inputs), ("out", lowered.outputs)):
        entries = []
        for index, spec in enumerate(specs):
            shape = ", ".join(map(str, spec.shape)) or "0"
            scale = scales.get(f"{kind}{index}", 0.0)
            entries.append(
                f'  {{{_c_string(spec.name)}, "{c_type(spec.dtype)}", {len(spec.shape)}, '
                f"{{{shape}}}, {spec.nbytes}, {scale!r}f, 0}},"
            )
        array = f"{lowered.entry}_{kind}puts"
        lines += [
            f"static const tinyattn_tensor_info {array}[{len(specs)}] __attribute__((unused)) = {{",
            *entries,
            "};",
        ]
    return lines


def model_header(lowered: LoweredModel, target: Target, stack_bytes: int) -> str:
    """model.h: the C API of the compiled model (`stack_bytes`: the entry's stack frame)."""
    check_entry(lowered)
    prefix = model_prefix(lowered)
    scales = _scales(lowered)
    guard = f"{prefix}_MODEL_H"
    arena_bytes = {a.level: f"{prefix}_{arena_name(a).upper()}_BYTES" for a in lowered.arenas}
    defines = [
        f"#define {prefix}_NUM_INPUTS {len(lowered.inputs)}",
        f"#define {prefix}_NUM_OUTPUTS {len(lowered.outputs)}",
        *(
            line
            for v, s in _tensors(lowered)
            for line in _tensor_defines(prefix, v, s, scales.get(v))
        ),
        *(f"#define {arena_bytes[a.level]} {a.size}" for a in lowered.arenas),
        f"#define {prefix}_PARAMS_BYTES {lowered.params_bytes}",
        f"#define {prefix}_MACS {lowered.macs}",
        f"#define {prefix}_STACK_BYTES {stack_bytes}",
        f'#define {prefix}_TINYATTN_VERSION "{version("tinyattn")}"',
        f'#define {prefix}_TARGET "{target.name}"',
    ]
    described = [
        *(
            f" *   {v}: {_comment_safe(_c_string(s.name))}, {c_type(s.dtype)}{list(s.shape)}"
            for v, s in _tensors(lowered)
        ),
        *(
            f" *   {arena_name(a)}: {a.size} bytes of {a.level} ({ARENA_SECTIONS[a.level]})"
            for a in lowered.arenas
        ),
    ]
    usage = [
        *(" *   " + line for a in lowered.arenas for line in arena_declaration(lowered, a)),
        f" *   {entry_call(lowered)}",
    ]
    return "\n".join(
        [
            f"/* {HEADER}: C API of the tinyattn model '{lowered.entry}' for {target.name}.",
            " * Generated by tinyattn; do not edit.",
            " *",
            f" *   {_prototype(lowered)}",
            " *",
            " * Tensors are dense and row-major (C order):",
            *described,
            " *",
            " * Inputs are only read; every output element is written. An arena is scratch",
            " * memory for activations in one memory level: at least <ARENA>_BYTES bytes,",
            " * 16-byte aligned, in that level's memory (the section above: INCLUDE tinyattn.ld in",
            " * your linker script). It needs no initialisation and each call overwrites it, so",
            " * calls sharing an arena must not overlap. Weights are in the object's read-only",
            " * data. Link libtinyattn_rt.a (DMA copies; define ta_dma_* to use a DMA engine).",
            f" * The call needs {prefix}_STACK_BYTES of stack for the entry's own frame (its",
            " * kernels' scratch included), plus the runtime's leaf functions it calls.",
            f" * Pipeline: {lowered.pipeline}",
            " *",
            *usage,
            " */",
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            "#include <stdint.h>",
            "",
            *_abi_guard(target),
            *defines,
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            _prototype(lowered),
            "",
            *_info(lowered, scales),
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            f"#endif /* {guard} */",
            "",
        ]
    )


def entry_call(lowered: LoweredModel, arenas: list[str] | None = None) -> str:
    """The C call of the entry on the buffers `tensor_buffers` declares and the arenas (by
    default the plain ones `arena_declaration` declares)."""
    arenas = [arena_name(a) for a in lowered.arenas] if arenas is None else arenas
    return f"{lowered.entry}({', '.join([v for v, _ in _tensors(lowered)] + arenas)});"


def tensor_buffers(lowered: LoweredModel) -> list[str]:
    """Static, aligned C buffers in0, ..., out0, ... for the entry's inputs and outputs."""
    prefix = model_prefix(lowered)
    return [
        f"static {c_type(s.dtype)} {v}[{prefix}_{v.upper()}_ELEMENTS] "
        f"__attribute__((aligned({ALIGNMENT})));"
        for v, s in _tensors(lowered)
    ]


def arena_declaration(lowered: LoweredModel, arena: ArenaSpec) -> list[str]:
    """The lines declaring `arena` as model.h tells users to: in its section, aligned."""
    size = f"{model_prefix(lowered)}_{arena_name(arena).upper()}_BYTES"
    return [
        f"static uint8_t {arena_name(arena)}[{size}]",
        f'    __attribute__((section("{ARENA_SECTIONS[arena.level]}"), aligned({ALIGNMENT})));',
    ]


def harness_source(lowered: LoweredModel) -> str:
    """harness.c: runs the model once on in<i>.bin, writes out<i>.bin and stats.bin."""
    check_entry(lowered)
    prefix = model_prefix(lowered)
    buffers = [
        *tensor_buffers(lowered),
        *(
            f"static struct arena_{a.level.lower()} {{ uint8_t before[sizeof CANARY]; "
            f"uint8_t data[{prefix}_{arena_name(a).upper()}_BYTES]; "
            f"uint8_t after[sizeof CANARY]; }} {arena_name(a)}\n"
            f'    __attribute__((section("{ARENA_SECTIONS[a.level]}"), aligned({ALIGNMENT})));'
            for a in lowered.arenas
        ),
    ]
    reads = [
        f'  if (ta_read_file("{input_file(i)}", in{i}, sizeof in{i}) != 0)\n'
        f'    return fail("cannot read {input_file(i)} ({s.nbytes} bytes expected)\\n", '
        f"{EXIT_IO_FAILED});"
        for i, s in enumerate(lowered.inputs)
    ]
    arm = [f"  set_canary({arena_name(a)}.{side});" for a in lowered.arenas for side in GUARDS]
    checks = [
        f"  if (!canary_intact({arena_name(a)}.{side}))\n"
        f'    return fail("arena {a.level} overrun: the bytes {side} it were overwritten\\n", '
        f"{EXIT_ARENA_OVERRUN});"
        for a in lowered.arenas
        for side in GUARDS
    ]
    writes = [
        f'  if (ta_write_file("{output_file(i)}", out{i}, sizeof out{i}) != 0)\n'
        f'    return fail("cannot write {output_file(i)}\\n", {EXIT_IO_FAILED});'
        for i in range(len(lowered.outputs))
    ]
    # An instrumented model calls one marker per profiling region: distinct no-op functions
    # whose addresses the profiler watches (`volatile asm` keeps them apart and alive).
    markers = [
        f"void __attribute__((noinline, used)) {profile_marker(region)}(void) "
        f'{{ __asm__ volatile("" ::: "memory"); }}'
        for region in range(len(profile_regions(lowered.module)))
    ]
    return "\n".join(
        [
            f"/* harness.c: runs '{lowered.entry}' once for tinyattn-run. Generated; do not edit.",
            f" * Exit codes: 0 ok, {EXIT_IO_FAILED} file I/O failed, {EXIT_ARENA_OVERRUN} arena "
            "overrun (3 is the runtime's trap). */",
            '#include "tinyattn_rt.h"',
            f'#include "{HEADER}"',
            "",
            f"static const uint8_t CANARY[] = {{{', '.join(f'{b:#04x}' for b in CANARY)}}};",
            "",
            *buffers,
            "",
            *markers,
            "",
            "static void set_canary(uint8_t *canary) {",
            "  for (unsigned i = 0; i < sizeof CANARY; i++)",
            "    canary[i] = CANARY[i];",
            "}",
            "",
            "/* volatile: the model wrote through a pointer the compiler cannot see. */",
            "static int canary_intact(const volatile uint8_t *canary) {",
            "  for (unsigned i = 0; i < sizeof CANARY; i++)",
            "    if (canary[i] != CANARY[i])",
            "      return 0;",
            "  return 1;",
            "}",
            "",
            "static int fail(const char *message, int code) {",
            '  ta_puts("harness: ");',
            "  ta_puts(message);",
            "  return code;",
            "}",
            "",
            "int main(void) {",
            *reads,
            *arm,
            "  ta_count_begin();",
            f"  {entry_call(lowered, [f'{arena_name(a)}.data' for a in lowered.arenas])}",
            "  ta_count_end();",
            *checks,
            *writes,
            "  unsigned long long dma_bytes = ta_dma_bytes_moved();",
            f'  if (ta_write_file("{STATS_FILE}", &dma_bytes, sizeof dma_bytes) != 0)',
            f'    return fail("cannot write {STATS_FILE}\\n", {EXIT_IO_FAILED});',
            "  return 0;",
            "}",
            "",
        ]
    )
