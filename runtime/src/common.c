/*
 * Board-independent part of the test runtime: counting markers and the
 * retired-instruction counter. Compiled for every target, host included.
 */
#include "tinyattn_rt.h"

/* The empty asm with a memory clobber keeps each marker a real, distinct
 * function whose call the optimizer can neither drop nor move code across. */
__attribute__((noinline, used)) void ta_count_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline, used)) void ta_count_end(void) { __asm__ volatile("" ::: "memory"); }

unsigned long long ta_read_instret(void) {
#if defined(__riscv) && __riscv_xlen == 32
  unsigned int hi, lo, hi2;
  do { /* re-read if the low word wrapped between the two halves */
    __asm__ volatile("csrr %0, minstreth" : "=r"(hi));
    __asm__ volatile("csrr %0, minstret" : "=r"(lo));
    __asm__ volatile("csrr %0, minstreth" : "=r"(hi2));
  } while (hi != hi2);
  return ((unsigned long long)hi << 32) | lo;
#else
  return 0;
#endif
}
