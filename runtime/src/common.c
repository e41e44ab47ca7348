/*
 * Board-independent part of the runtime: DMA emulation, counting markers and
 * the retired-instruction counter. Compiled for every target, host included.
 */
#include "tinyattn_rt.h"

/* Declared here rather than through <string.h> so the file stays freestanding;
 * boards get it from src/mem.c, the host from its C library. */
void *memcpy(void *dst, const void *src, unsigned long n);

static unsigned long long dma_bytes;

ta_dma_t ta_dma_start_1d(void *dst, const void *src, unsigned long bytes) {
  memcpy(dst, src, bytes);
  dma_bytes += bytes;
  return 0;
}

ta_dma_t ta_dma_start_2d(void *dst, const void *src, unsigned long row_bytes,
                         unsigned long rows, unsigned long dst_stride_bytes,
                         unsigned long src_stride_bytes) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  for (unsigned long r = 0; r < rows; r++)
    memcpy(d + r * dst_stride_bytes, s + r * src_stride_bytes, row_bytes);
  dma_bytes += (unsigned long long)row_bytes * rows;
  return 0;
}

/* Copies complete in start, so there is nothing to wait for. */
void ta_dma_wait(ta_dma_t handle) { (void)handle; }

unsigned long long ta_dma_bytes_moved(void) { return dma_bytes; }

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
