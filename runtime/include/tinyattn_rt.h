/*
 * tinyattn runtime: the small C API that generated model code and its test
 * harnesses use on every board (QEMU mps2 / riscv-virt through semihosting,
 * and the native host build through stdio).
 *
 * Freestanding: no libc headers, so the same header works under
 * -ffreestanding -nostdlib on the boards.
 */
#ifndef TINYATTN_RT_H
#define TINYATTN_RT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exit code the fault/trap handlers use; toolchain.run() reports it as a crash. */
#define TA_EXIT_TRAP 3

/* Ends the program; on QEMU the code becomes QEMU's exit status. */
__attribute__((noreturn)) void ta_exit(int code);

/* Writes a NUL-terminated string to the console (QEMU: stderr; host: stdout). */
void ta_puts(const char *s);

/*
 * Whole-file binary I/O on the host file system (QEMU: relative to QEMU's
 * working directory). Return 0 on success, -1 on failure. ta_read_file fails
 * unless the file holds exactly `bytes` bytes.
 */
int ta_read_file(const char *path, void *dst, unsigned long bytes);
int ta_write_file(const char *path, const void *src, unsigned long bytes);

/*
 * DMA between memory levels. None of the emulated boards has a DMA engine,
 * so a transfer is a synchronous copy that completes before start returns;
 * the handle and ta_dma_wait exist so generated code is written as it would
 * be for a real asynchronous engine. Every byte copied is added to a counter
 * (ta_dma_bytes_moved) so tests can check the traffic a schedule implies.
 */
typedef unsigned int ta_dma_t;
ta_dma_t ta_dma_start_1d(void *dst, const void *src, unsigned long bytes);
/* Copies `rows` rows of `row_bytes` each; strides are the distance between
 * the starts of consecutive rows, in bytes. */
ta_dma_t ta_dma_start_2d(void *dst, const void *src, unsigned long row_bytes,
                         unsigned long rows, unsigned long dst_stride_bytes,
                         unsigned long src_stride_bytes);
void ta_dma_wait(ta_dma_t handle);
unsigned long long ta_dma_bytes_moved(void);

/*
 * Counting markers. The QEMU instruction-counting plugin is given the
 * addresses of these two functions and reports the instructions executed
 * from entering ta_count_begin to entering ta_count_end (summed over all
 * begin/end pairs). They are noinline and have side effects the compiler
 * cannot remove. On the host they do nothing.
 */
void ta_count_begin(void);
void ta_count_end(void);

/*
 * Retired-instruction counter where the ISA has one (RISC-V minstret).
 * Returns 0 on Arm M-profile (no such counter) and on the host. Note that
 * QEMU without -icount backs minstret with host time, not instructions:
 * use the counting plugin for exact counts.
 */
unsigned long long ta_read_instret(void);

#ifdef __cplusplus
}
#endif

#endif /* TINYATTN_RT_H */
