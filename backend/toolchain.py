"""Driver for the external tools: compile, link and run programs for a Target.

Plain functions over the Target table in targets.py. Every tool runs through
subprocess with captured output; any failure becomes a one-line
ToolchainError naming the tool and the reason. Outputs are written to a
temporary name and renamed into place, so a failed or interrupted step never
leaves a half-written file behind. runtime/README.md lists the exact commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tinyattn.runtime
from tinyattn.backend import targets
from tinyattn.backend.files import atomic_path
from tinyattn.backend.targets import Target

RUNTIME_DIR = Path(tinyattn.runtime.__file__).parent
LLVM_BIN = Path("/usr/lib/llvm-22/bin")

# Exit code of the runtime's fault/trap handlers (TA_EXIT_TRAP in tinyattn_rt.h).
TRAP_EXIT_CODE = 3

# Flags for every bare-metal compile: no hosted C library, no unwind tables
# (nothing unwinds, and they would cost flash).
_BARE_METAL_CFLAGS = (
    "-ffreestanding",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
)
_CFLAGS = ("-O2", "-Wall", f"-I{RUNTIME_DIR / 'include'}")

# Changing these files can change every compiled runtime object.
_BUILD_INPUTS = (Path(__file__), Path(targets.__file__), RUNTIME_DIR / "include/tinyattn_rt.h")


class ToolchainError(RuntimeError):
    """A tool is missing or failed; the message is one line naming the tool."""


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    console: str
    # Instructions executed between ta_count_begin and ta_count_end (QEMU
    # targets run with count=True whose program reached the markers); else None.
    instructions: int | None
    # Per profiling region (run's profile_markers): (instructions, entries); else None.
    profile: tuple[tuple[int, int], ...] | None = None


def tool(name: str) -> str:
    """Path of an external tool: PATH first, then the LLVM 22 directory.

    Never falls back to unversioned LLVM names on PATH (Debian's default LLVM
    is older); /usr/lib/llvm-22/bin holds the unversioned 22 binaries.
    """
    found = shutil.which(name)
    if found:
        return found
    for candidate in (LLVM_BIN / name, LLVM_BIN / name.removesuffix("-22")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ToolchainError(
        f"{name} not found on PATH or in {LLVM_BIN}; install the toolchain with `make setup`"
    )


def _first_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]


def execute(cmd: Sequence[str], what: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a build tool; ToolchainError with its first error line on failure."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        name = Path(cmd[0]).name
        raise ToolchainError(f"{name} failed {what}: {_first_error(proc.stderr + proc.stdout)}")
    return proc


def _up_to_date(out: Path, inputs: Sequence[Path]) -> bool:
    return out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in inputs)


def _cflags(target: Target) -> tuple[str, ...]:
    if target.is_host:
        return _CFLAGS
    return (*package_cflags(target), *_CFLAGS)


def compile_c(target: Target, source: Path, out_obj: Path, extra_flags: Sequence[str] = ()) -> Path:
    """Compile one C file to an object for `target` (runtime headers on the path)."""
    source, out_obj = Path(source), Path(out_obj)
    with atomic_path(out_obj, parents=True) as tmp:
        cmd = [tool("clang-22"), *_cflags(target), *extra_flags, "-c", str(source), "-o", str(tmp)]
        execute(cmd, f"compiling {source.name} for {target.name}")
    return out_obj


def compile_ll(target: Target, source: Path, out_obj: Path) -> Path:
    """Compile LLVM IR to an object with llc, using the target's llc flags and -O level, with
    a .stack_sizes section (`stack_sizes`)."""
    source, out_obj = Path(source), Path(out_obj)
    with atomic_path(out_obj, parents=True) as tmp:
        execute(llc_command(target, source, tmp), f"compiling {source.name} for {target.name}")
    return out_obj


def llc_command(target: Target, source: Path | str, out: Path | str, fmt: str = "obj") -> list[str]:
    """The llc command compile_ll runs (`fmt` asm: the assembly of the same code)."""
    return [
        tool("llc-22"), *target.llc_args, "-stack-size-section", f"-filetype={fmt}",
        str(source), "-o", str(out),
    ]  # fmt: skip


def _runtime_sources(target: Target) -> list[Path]:
    if target.board is None:
        raise ToolchainError(f"{target.name} is compile-only: it has no runtime board")
    if target.is_host:
        return [*_library_sources(target), RUNTIME_DIR / "boards/host/host.c"]
    return [
        *_library_sources(target),
        *(RUNTIME_DIR / "src" / f for f in ("semihost.c", "crt0.c")),
        RUNTIME_DIR / "boards" / target.board / "startup.c",
    ]


def _library_sources(target: Target) -> list[Path]:
    """What generated code calls (DMA; on bare metal the C functions LLVM emits calls to) and
    the test runtime's markers: the sources of libtinyattn_rt.a."""
    names = ("dma.c", "common.c") if target.is_host else ("dma.c", "common.c", "mem.c")
    return [RUNTIME_DIR / "src" / name for name in names]


def build_library(target: Target, build_dir: Path) -> Path:
    """libtinyattn_rt.a for `target` (the package's runtime) under build_dir/lib/<target>;
    cached."""
    out = Path(build_dir) / "lib" / target.name / "libtinyattn_rt.a"
    sources = _library_sources(target)
    if _up_to_date(out, [*sources, *_BUILD_INPUTS]):
        return out
    objects = [
        compile_c(target, source, out.parent / f"{source.stem}.o", extra_flags=("-Werror",))
        for source in sources
    ]
    with atomic_path(out, parents=True) as tmp:
        execute([tool("llvm-ar-22"), "rcs", str(tmp), *map(str, objects)], f"archiving {out.name}")
    return out


def stack_sizes(obj: Path) -> dict[str, int]:
    """The stack frame of each function of an object compiled by `compile_ll`, in bytes (from
    its .stack_sizes section)."""
    out = execute(
        [tool("llvm-readobj-22"), "--stack-sizes", str(obj)], f"reading {obj.name}"
    ).stdout
    sizes = {}
    for functions, size in re.findall(r"Functions: \[([^\]]*)\]\s*Size: (0x[0-9a-fA-F]+)", out):
        for function in functions.split(","):
            sizes[function.strip()] = int(size, 16)
    return sizes


def package_cflags(target: Target) -> tuple[str, ...]:
    """The flags a firmware compiles C for `target` with, to link with its model (no paths)."""
    return target.clang_args if target.is_host else (*target.clang_args, *_BARE_METAL_CFLAGS)


def build_runtime(target: Target, build_dir: Path) -> list[Path]:
    """Runtime objects for `target` under build_dir/runtime/<target>; cached."""
    out_dir = Path(build_dir) / "runtime" / target.name
    objects = []
    for source in _runtime_sources(target):
        obj = out_dir / f"{source.stem}.o"
        if not _up_to_date(obj, [source, *_BUILD_INPUTS]):
            compile_c(target, source, obj, extra_flags=("-Werror",))
        objects.append(obj)
    return objects


def cache_dir() -> Path:
    """Where the runtime objects and the QEMU plugin are kept across runs: $TINYATTN_CACHE, else
    tinyattn/ in the user's cache directory. `make setup` fills it (`prebuild`)."""
    if override := os.environ.get("TINYATTN_CACHE"):
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyattn"


def prebuild(build_dir: Path | None = None) -> Path:
    """Build the counting plugin and the runtime of every runnable target into the cache."""
    build_dir = build_dir or cache_dir()
    build_count_plugin(build_dir)
    for target in targets.TARGETS.values():
        if target.runnable:
            build_runtime(target, build_dir)
    return build_dir


def build_count_plugin(build_dir: Path) -> Path:
    """The QEMU instruction-counting plugin (runtime/qemu/count_plugin.c); cached."""
    source = RUNTIME_DIR / "qemu/count_plugin.c"
    out = Path(build_dir) / "count_plugin.so"
    if not _up_to_date(out, [source]):
        with atomic_path(out, parents=True) as tmp:
            cmd = [tool("clang-22"), "-shared", "-fPIC", "-O2", str(source), "-o", str(tmp)]
            execute(cmd, "building the QEMU count plugin")
    return out


def memory_ld(target: Target) -> str:
    """The generated part of the linker script: MEMORY, the L1/L2 aliases, stack size."""
    if target.flash is None or any(m.origin is None for m in target.levels):
        raise ToolchainError(f"{target.name} has no address map to link against")
    regions = [("rx", target.flash), *(("rwx", m) for m in target.levels)]
    lines = [
        f"/* Generated by tinyattn.backend.toolchain from targets.py ({target.name}). */",
        "MEMORY",
        "{",
        *(
            f"  {m.name} ({attrs}) : ORIGIN = {m.origin:#010x}, LENGTH = {m.size:#x}"
            for attrs, m in regions
        ),
        "}",
        f'REGION_ALIAS("L1", {target.l1.name});',
        f'REGION_ALIAS("L2", {target.l2.name});',
        f'REGION_ALIAS("TINYATTN_L1", {target.l1.name});',
        f'REGION_ALIAS("TINYATTN_L2", {target.l2.name});',
        f"__stack_size = {target.stack_size:#x};",
    ]
    return "\n".join(lines) + "\n"


# The output section of each memory level's arena (model.h tells users to declare arenas in them).
ARENA_SECTIONS = {"L1": ".tinyattn.l1", "L2": ".tinyattn.l2"}


def arena_fragment(target: Target) -> str:
    """tinyattn.ld: the linker-script fragment placing the arenas, NOLOAD, in the memories of
    the model's levels (TINYATTN_L1/L2, which the including script maps to its regions)."""
    return "\n".join(
        [
            f"/* tinyattn's arenas ({target.name}). INCLUDE this file inside your SECTIONS {{ }},",
            " * after .bss, having mapped the memories the model was planned for:",
            f' *   REGION_ALIAS("TINYATTN_L1", <your {target.l1.name} region>);',
            f' *   REGION_ALIAS("TINYATTN_L2", <your {target.l2.name} region>);',
            " * NOLOAD: the arenas are scratch, never copied from flash nor zeroed. */",
            *(
                f"{section} (NOLOAD) : ALIGN(16) {{ *({section} {section}.*) }} > TINYATTN_{level}"
                for level, section in sorted(ARENA_SECTIONS.items(), reverse=True)
            ),
            "",
        ]
    )


_OVERFLOW = re.compile(r"section '(.+?)' will not fit in region '(.+?)': overflowed by (\d+) bytes")


def _link_failure(target: Target, output: str) -> str:
    """The reason a link failed; for overflows, the first section past the end of each region
    (later sections in the same region only overflow because of it)."""
    first: dict[str, tuple[str, str]] = {}
    for section, region, excess in _OVERFLOW.findall(output):
        first.setdefault(region, (section, excess))
    if not first:
        return _first_error(output)
    sizes = {m.name: m.size for m in (target.flash, *target.levels)}
    return "; ".join(
        f"section {section} does not fit in region {region} ({sizes[region]} bytes): "
        f"overflowed by {excess} bytes"
        for region, (section, excess) in first.items()
    )


def link(target: Target, objects: Sequence[Path], out_elf: Path) -> Path:
    """Link objects (model, harness, runtime) into an executable for `target`.

    Bare-metal targets first get their memory.ld, generated from the Target
    table, in out_elf's directory under memory-<target>/ (found through -L by
    runtime/link.ld). A section that does not fit its region fails with a
    ToolchainError naming the section, the region and the overflow in bytes.
    """
    out_elf = Path(out_elf)
    objs = [str(o) for o in objects]
    if target.is_host:
        with atomic_path(out_elf, parents=True) as tmp:
            execute([tool("clang-22"), *objs, "-lm", "-o", str(tmp)], f"linking {out_elf.name}")
        return out_elf

    ld_dir = out_elf.parent / f"memory-{target.name}"
    for name, text in (("memory.ld", memory_ld(target)), ("tinyattn.ld", arena_fragment(target))):
        with atomic_path(ld_dir / name, parents=True) as tmp:
            tmp.write_text(text)
    linker = tool("ld.lld-22")
    with atomic_path(out_elf, parents=True) as tmp:
        cmd = [linker, "-T", str(RUNTIME_DIR / "link.ld"), "-L", str(ld_dir), *objs, "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(
                f"ld.lld-22 failed linking {out_elf.name} for {target.name}: "
                f"{_link_failure(target, proc.stderr + proc.stdout)}"
            )
    return out_elf


def qemu_command(target: Target, elf: str) -> list[str]:
    """The QEMU command line that runs `elf` on the target's emulated board (semihosting)."""
    assert target.qemu is not None
    return [
        target.qemu, "-M", target.machine, *target.qemu_flags,
        "-display", "none", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native",
        "-kernel", elf,
    ]  # fmt: skip


def _addresses(elf: Path, names: Sequence[str]) -> list[int]:
    """The code addresses of the functions `names` in `elf`."""
    out = execute([tool("llvm-nm-22"), "--defined-only", str(elf)], f"reading {elf.name}").stdout
    symbols = {name: int(addr, 16) for addr, _, name in (ln.split() for ln in out.splitlines())}
    missing = [name for name in names if name not in symbols]
    if missing:
        raise ToolchainError(f"llvm-nm-22: {elf.name} defines no {', '.join(missing)}")
    # Bit 0 marks Thumb code in Arm symbol values; instruction addresses are even.
    return [symbols[name] & ~1 for name in names]


def _tail(console: str, chars: int = 400) -> str:
    return " | ".join(console[-chars:].strip().splitlines()) or "(no output)"


def _decode(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def run(
    target: Target,
    elf: Path,
    workdir: Path,
    count: bool = True,
    timeout: float = 60.0,
    build_dir: Path | None = None,
    profile_markers: Sequence[str] = (),
) -> RunResult:
    """Run a linked program in `workdir` (where its ta_read_file/ta_write_file paths resolve).

    The host runs the executable directly (instructions is None). QEMU targets
    run under semihosting; with count=True the counting plugin (built into
    build_dir, default elf's directory) reports the instructions executed
    between the markers, and with `profile_markers` (functions starting profiling regions)
    the instructions and entries of each region. A timeout or a crash (trap handler exit code)
    raises ToolchainError with the tail of the console.
    """
    elf, workdir = Path(elf).resolve(), Path(workdir)
    if not target.runnable:
        raise ToolchainError(f"{target.name} cannot be run: QEMU has no model for it")
    with tempfile.TemporaryDirectory(prefix="tinyattn-run-") as scratch:
        count_file = Path(scratch) / "count.txt"
        profile_file = Path(scratch) / "profile.txt"
        profile = None
        if target.is_host:
            cmd, runner = [str(elf)], elf.name
        else:
            runner = target.qemu
            cmd = [tool(target.qemu), *qemu_command(target, str(elf))[1:]]
            if count:
                plugin = build_count_plugin(build_dir or elf.parent)
                begin, end = _addresses(elf, ["ta_count_begin", "ta_count_end"])
                args = f"{plugin},begin={begin:#x},end={end:#x},out={count_file}"
                if profile_markers:
                    marks = ":".join(f"{a:#x}" for a in _addresses(elf, profile_markers))
                    args += f",marks={marks},profile={profile_file}"
                cmd += ["-plugin", args]
        try:
            proc = subprocess.run(
                cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            console = _decode(e.stdout) + _decode(e.stderr)
            raise ToolchainError(
                f"{runner} timed out after {timeout:g} s running {elf.name}: {_tail(console)}"
            ) from None
        console = _decode(proc.stdout) + _decode(proc.stderr)
        if proc.returncode == TRAP_EXIT_CODE or proc.returncode < 0:
            raise ToolchainError(
                f"{elf.name} crashed on {target.name} (exit code {proc.returncode}): "
                f"{_tail(console)}"
            )
        instructions = None
        if count and not target.is_host:
            if not count_file.exists():
                raise ToolchainError(
                    f"{runner} wrote no instruction count (exit code {proc.returncode}): "
                    f"{_tail(console)}"
                )
            counted, regions = map(int, count_file.read_text().split())
            instructions = counted if regions else None
            if profile_markers and profile_file.exists():
                lines = (line.split() for line in profile_file.read_text().splitlines())
                profile = tuple((int(spent), int(entries)) for _, spent, entries in lines)
    return RunResult(proc.returncode, console, instructions, profile)


if __name__ == "__main__":
    print(f"tinyattn: runtime and QEMU plugin built in {prebuild()}")
