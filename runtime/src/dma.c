/*
 * DMA between memory levels, as a synchronous copy: the portable default that
 * generated model code calls (ta_dma_*), in every build and in the package's
 * libtinyattn_rt.a. Every function is weak: a firmware binds a real DMA engine
 * by defining ta_dma_start_1d, ta_dma_start_2d and ta_dma_wait itself (start
 * returns a handle, wait blocks until that transfer is complete; the model
 * waits before it reads a destination or reuses a source).
 */
#include "tinyattn_rt.h"

/* Declared here rather than through <string.h> so the file stays freestanding;
 * boards get it from src/mem.c, the host from its C library. */
void *memcpy(void *dst, const void *src, unsigned long n);

static unsigned long long dma_bytes;

__attribute__((weak)) ta_dma_t ta_dma_start_1d(void *dst, const void *src, unsigned long bytes) {
  memcpy(dst, src, bytes);
  dma_bytes += bytes;
  return 0;
}

__attribute__((weak)) ta_dma_t ta_dma_start_2d(void *dst, const void *src, unsigned long row_bytes,
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
__attribute__((weak)) void ta_dma_wait(ta_dma_t handle) { (void)handle; }

unsigned long long ta_dma_bytes_moved(void) { return dma_bytes; }
