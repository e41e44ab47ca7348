/*
 * Console, exit and file I/O for the QEMU boards through semihosting: the
 * guest traps with an operation number and a pointer to an argument block,
 * and QEMU (run with -semihosting-config enable=on,target=native) performs
 * the operation on the host. Only the trapping instruction differs between
 * Arm and RISC-V; everything after semihost() is shared.
 */
#include "tinyattn_rt.h"

enum {
  SYS_OPEN = 0x01,
  SYS_CLOSE = 0x02,
  SYS_WRITE0 = 0x04,
  SYS_WRITE = 0x05,
  SYS_READ = 0x06,
  SYS_FLEN = 0x0c,
  SYS_EXIT_EXTENDED = 0x20,
};
enum { OPEN_RB = 1, OPEN_WB = 5 };           /* fopen modes "rb" and "wb" */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026 /* reason code for a normal exit */

#if defined(__arm__)
static long semihost(long op, void *arg) {
  register long r0 __asm__("r0") = op;
  register void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
#elif defined(__riscv)
static long semihost(long op, void *arg) {
  register long a0 __asm__("a0") = op;
  register void *a1 __asm__("a1") = arg;
  /* The exact uncompressed sequence QEMU looks for: keep the assembler from
   * emitting compressed forms under the C extension, and keep the three
   * instructions in one page (QEMU checks the neighbours of the ebreak only
   * there; across a page boundary the ebreak is a plain breakpoint trap). */
  __asm__ volatile(".option push\n"
                   ".option norvc\n"
                   ".balign 16\n"
                   "slli x0, x0, 0x1f\n"
                   "ebreak\n"
                   "srai x0, x0, 7\n"
                   ".option pop"
                   : "+r"(a0)
                   : "r"(a1)
                   : "memory");
  return a0;
}
#else
#error "semihosting is implemented for Arm and RISC-V only"
#endif

void ta_exit(int code) {
  long block[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
  semihost(SYS_EXIT_EXTENDED, block);
  for (;;) /* not reached when semihosting is enabled */
    ;
}

void ta_puts(const char *s) { semihost(SYS_WRITE0, (void *)s); }

static unsigned long cstrlen(const char *s) {
  unsigned long n = 0;
  while (s[n])
    n++;
  return n;
}

static long open_file(const char *path, long mode) {
  long block[3] = {(long)path, mode, (long)cstrlen(path)};
  return semihost(SYS_OPEN, block);
}

static void close_file(long fd) { semihost(SYS_CLOSE, &fd); }

int ta_read_file(const char *path, void *dst, unsigned long bytes) {
  long fd = open_file(path, OPEN_RB);
  if (fd < 0)
    return -1;
  /* SYS_READ returns the number of bytes NOT read. */
  long block[3] = {fd, (long)dst, (long)bytes};
  int ok = semihost(SYS_FLEN, &fd) == (long)bytes && semihost(SYS_READ, block) == 0;
  close_file(fd);
  return ok ? 0 : -1;
}

int ta_write_file(const char *path, const void *src, unsigned long bytes) {
  long fd = open_file(path, OPEN_WB);
  if (fd < 0)
    return -1;
  /* SYS_WRITE returns the number of bytes NOT written. */
  long block[3] = {fd, (long)src, (long)bytes};
  int ok = semihost(SYS_WRITE, block) == 0;
  close_file(fd);
  return ok ? 0 : -1;
}
