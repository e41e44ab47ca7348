/*
 * Reset and trap handling for QEMU's riscv32 virt board. With -bios none QEMU
 * jumps to the start of DRAM (0x80000000), the FLASH origin in memory.ld, where
 * link.ld places the .vectors section holding ta_reset.
 */
__attribute__((noreturn)) void ta_start(void);
__attribute__((noreturn)) void ta_fatal(const char *message);

/* Machine-mode trap vector (direct mode, so it must be 4-byte aligned). Any
 * trap is fatal: nothing enables interrupts. */
__attribute__((aligned(4), noreturn)) static void trap(void) {
  ta_fatal("tinyattn: trap (riscv machine-mode exception)\n");
}

/* Naked: there is no stack yet. Set sp, point mtvec at trap, turn the FPU on
 * (mstatus.FS = Initial) before any FP instruction, then enter C. */
__attribute__((naked, section(".vectors"), used)) void ta_reset(void) {
  __asm__ volatile("la sp, __stack_top\n"
                   "la t0, %0\n"
                   "csrw mtvec, t0\n"
                   "li t0, 0x2000\n"
                   "csrs mstatus, t0\n"
                   "j ta_start\n" ::"i"(trap));
}
