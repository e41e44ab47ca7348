/*
 * C start-up shared by the bare-metal boards. The board's reset code sets the
 * stack, enables the FPU and installs its fault handler, then calls
 * ta_start, which sets up the C environment and runs main.
 */
#include "tinyattn_rt.h"

void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);
int main(void);

/* Defined by runtime/link.ld: .data is stored in FLASH at __data_load and
 * runs from RAM; .bss is only reserved, so it must be zeroed. */
extern char __data_start[], __data_end[], __data_load[];
extern char __bss_start[], __bss_end[];

__attribute__((noreturn)) void ta_start(void) {
  memcpy(__data_start, __data_load, (unsigned long)(__data_end - __data_start));
  memset(__bss_start, 0, (unsigned long)(__bss_end - __bss_start));
  ta_exit(main());
}

__attribute__((noreturn)) void ta_fatal(const char *message) {
  ta_puts(message);
  ta_exit(TA_EXIT_TRAP);
}
