/*
 * The runtime API on the native host, on top of the C library, so the same
 * harness and generated code run unchanged as a normal executable (quick
 * functional checks without QEMU). Built hosted, unlike the boards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tinyattn_rt.h"

void ta_exit(int code) {
  fflush(stdout);
  exit(code);
}

void ta_puts(const char *s) { fputs(s, stdout); }

int ta_read_file(const char *path, void *dst, unsigned long bytes) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  /* Exactly `bytes` bytes: a full read followed by end of file. */
  int ok = fread(dst, 1, bytes, f) == bytes && fgetc(f) == EOF;
  fclose(f);
  return ok ? 0 : -1;
}

int ta_write_file(const char *path, const void *src, unsigned long bytes) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  int ok = fwrite(src, 1, bytes, f) == bytes;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* Mirror the boards' fault handlers: a message and TA_EXIT_TRAP. */
static void on_fault(int sig) {
  static const char msg[] = "tinyattn: fatal signal (host)\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0) {
    /* nothing left to report to */
  }
  _exit(TA_EXIT_TRAP);
}

__attribute__((constructor)) static void install_fault_handlers(void) {
  signal(SIGSEGV, on_fault);
  signal(SIGBUS, on_fault);
  signal(SIGILL, on_fault);
  signal(SIGFPE, on_fault);
}
