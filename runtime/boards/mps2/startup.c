/*
 * Reset and fault handling for the Arm MPS2 boards (QEMU mps2-an386,
 * Cortex-M4, and mps2-an500, Cortex-M7). Both use the same code: their
 * differences are memory sizes and addresses, which come from memory.ld.
 */
__attribute__((noreturn)) void ta_start(void);
__attribute__((noreturn)) void ta_fatal(const char *message);

extern char __stack_top[];

static void fault(void) { ta_fatal("tinyattn: HardFault (cortex-m fault exception)\n"); }

__attribute__((noreturn)) void ta_reset(void) {
  /* Grant full access to coprocessors 10 and 11 (the FPU) in CPACR before
   * any floating-point instruction runs. */
  volatile unsigned int *cpacr = (volatile unsigned int *)0xE000ED88;
  *cpacr |= 0xFu << 20;
  __asm__ volatile("dsb\n isb" ::: "memory");
  ta_start();
}

/* The core loads the initial SP and PC from the first two words at address 0
 * (the FLASH origin); the remaining system exceptions (NMI, HardFault,
 * MemManage, BusFault, UsageFault, ...) all report a fault. No interrupts are
 * enabled, so the table ends after the 16 system entries. */
__attribute__((section(".vectors"), used)) static void *const vectors[16] = {
    __stack_top, ta_reset, fault, fault, fault, fault, fault, 0,
    0,           0,        0,     fault, fault, 0,     fault, fault,
};
