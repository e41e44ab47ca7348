"""The deployment targets: the one table of everything target-specific.

Code generation (triple, cpu, features, ABI, llc -O level), the runtime
board a program links with, how to run it (QEMU binary and machine) and the
memory it may use (levels with their sizes, flash) all come from here. The
linker's memory map is generated from these entries by toolchain.memory_ld,
so an address or a size is written down once, in this file.

Addresses follow QEMU 7.2's machine models:

* mps2-an386 / mps2-an500 (hw/arm/mps2.c): ZBT SSRAM1 (4 MiB) at 0x00000000,
  where the core fetches its vector table, stands in for flash; ZBT SSRAM2&3
  (4 MiB) at 0x20000000 is the on-chip SRAM; the AN500 also has 16 MiB PSRAM
  at 0x60000000.
* riscv32 virt (hw/riscv/virt.c): DRAM from 0x80000000 (128 MiB by default),
  where -bios none starts execution; all levels are carved out of it.

Sizes are those of the parts each target stands for (STM32L4R, STM32H7,
GAP9), not of the larger emulated RAMs, so the static allocation that links
here also fits the real chip.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB

# mps2 (hw/arm/mps2.c, AN385/AN386/AN500 memory map).
MPS2_SSRAM1 = 0x0000_0000  # 4 MiB, boot/vector-table memory: used as flash
MPS2_SSRAM23 = 0x2000_0000  # 4 MiB on-chip SRAM
MPS2_AN500_PSRAM = 0x6000_0000  # 16 MiB, AN500 only (psram_base)

# riscv32 virt (hw/riscv/virt.c, virt_memmap[VIRT_DRAM]); -bios none jumps here.
VIRT_DRAM = 0x8000_0000


@dataclass(frozen=True)
class Memory:
    """A memory region: a level of the hierarchy, or flash.

    `name` is what the linker calls the region (and what its overflow errors
    show); `origin` is None where nothing is linked at fixed addresses (host,
    compile-only targets).
    """

    name: str
    size: int
    origin: int | None = None


@dataclass(frozen=True)
class Target:
    """One deployment target.

    `levels` lists the memory levels fastest first: one entry on single-level
    targets (where L1 and L2 are the same memory), two otherwise.
    """

    name: str
    triple: str
    cpu: str
    mattr: str  # llc -mattr
    clang_flags: tuple[str, ...]  # cpu/ABI/float flags for clang (besides --target)
    llc_flags: tuple[str, ...]  # ABI/float flags for llc (besides triple/cpu/mattr/-O)
    llc_opt: int
    board: str | None  # runtime/boards/<board>; None: compile-only
    levels: tuple[Memory, ...]
    flash: Memory | None
    qemu: str | None = None  # qemu-system-* binary; None: runs natively or not at all
    machine: str | None = None  # qemu -M
    qemu_flags: tuple[str, ...] = ()
    stack_size: int = 8 * KiB
    index_bitwidth: int = 32  # the width of MLIR's `index`: the pointer width
    kernels: str = "generic"  # whose micro-kernels convert-kernels-to-loops uses (lowering/)

    @property
    def is_host(self) -> bool:
        return self.board == "host"

    @property
    def runnable(self) -> bool:
        return self.is_host or self.qemu is not None

    @property
    def l1(self) -> Memory:
        return self.levels[0]

    @property
    def l2(self) -> Memory:
        return self.levels[-1]

    @property
    def clang_args(self) -> tuple[str, ...]:
        return (f"--target={self.triple}", *self.clang_flags)

    @property
    def codegen_args(self) -> tuple[str, ...]:
        """The target description shared by opt and llc: triple, cpu, features, ABI."""
        mattr = (f"-mattr={self.mattr}",) if self.mattr else ()
        return (f"-mtriple={self.triple}", f"-mcpu={self.cpu}", *mattr, *self.llc_flags)

    @property
    def llc_args(self) -> tuple[str, ...]:
        return (*self.codegen_args, f"-O{self.llc_opt}")


_CORE_V = "+xcvmac,+xcvsimd,+xcvmem,+xcvalu,+xcvbi"
_RV32_LLC = ("-target-abi=ilp32f",)

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="host",
            triple="x86_64-pc-linux-gnu",
            cpu="x86-64",
            mattr="",
            clang_flags=(),
            llc_flags=("-relocation-model=pic",),
            llc_opt=2,
            board="host",
            levels=(Memory("RAM", 1024 * MiB),),
            flash=None,
            index_bitwidth=64,
        ),
        # STM32L4R-class Cortex-M4: 2 MiB flash, 640 KiB SRAM.
        # -O3 lets the ARM backend form SMLAD from int8/int16 multiply-adds.
        Target(
            name="cortex-m4",
            kernels="thumbv7em",
            triple="thumbv7em-none-eabi",
            cpu="cortex-m4",
            mattr="",
            clang_flags=("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
            llc_flags=("-float-abi=hard",),
            llc_opt=3,
            board="mps2",
            levels=(Memory("SRAM", 640 * KiB, MPS2_SSRAM23),),
            flash=Memory("FLASH", 2 * MiB, MPS2_SSRAM1),
            qemu="qemu-system-arm",
            machine="mps2-an386",
        ),
        # STM32H7-class Cortex-M7: 128 KiB DTCM (at the H7's DTCM address, which
        # is the start of SSRAM2&3 here), 512 KiB SRAM (in the AN500 PSRAM).
        Target(
            name="cortex-m7",
            kernels="thumbv7em",
            triple="thumbv7em-none-eabi",
            cpu="cortex-m7",
            mattr="",
            clang_flags=("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
            llc_flags=("-float-abi=hard",),
            llc_opt=3,
            board="mps2",
            levels=(
                Memory("DTCM", 128 * KiB, MPS2_SSRAM23),
                Memory("SRAM", 512 * KiB, MPS2_AN500_PSRAM),
            ),
            flash=Memory("FLASH", 2 * MiB, MPS2_SSRAM1),
            qemu="qemu-system-arm",
            machine="mps2-an500",
        ),
        # GAP9-class sizes on a plain rv32imfc core that QEMU can run:
        # DRAM = [flash 2 MiB | L2 1.5 MiB | gap | L1 128 KiB].
        Target(
            name="rv32",
            kernels="rv32",
            triple="riscv32-unknown-elf",
            cpu="generic-rv32",
            mattr="+m,+f,+c",
            clang_flags=("-march=rv32imfc", "-mabi=ilp32f"),
            llc_flags=_RV32_LLC,
            llc_opt=2,
            board="riscv-virt",
            levels=(
                Memory("TCDM", 128 * KiB, VIRT_DRAM + 4 * MiB),
                Memory("L2RAM", 1536 * KiB, VIRT_DRAM + 2 * MiB),
            ),
            flash=Memory("FLASH", 2 * MiB, VIRT_DRAM),
            qemu="qemu-system-riscv32",
            machine="virt",
            qemu_flags=("-bios", "none"),
        ),
        # GAP9 cluster core: rv32imfc + CORE-V extensions. Compile-only: QEMU
        # has no CORE-V model, so there is no board and no address map.
        Target(
            name="gap9",
            kernels="gap9",
            triple="riscv32-unknown-elf",
            cpu="generic-rv32",
            mattr="+m,+f,+c," + _CORE_V,
            clang_flags=(
                "-march=rv32imfc_xcvmac_xcvsimd_xcvmem_xcvalu_xcvbi",
                "-mabi=ilp32f",
            ),
            llc_flags=_RV32_LLC,
            llc_opt=2,
            board=None,
            levels=(Memory("TCDM", 128 * KiB), Memory("L2RAM", 1536 * KiB)),
            flash=Memory("FLASH", 2 * MiB),
        ),
    )
}


def get_target(name: str) -> Target:
    """The target called `name`; ValueError listing the known names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}") from None
