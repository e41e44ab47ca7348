/*
 * memcpy/memset/memmove for the bare-metal boards: LLVM lowers struct copies,
 * zero-initialisation and its own loop idioms to calls to these, and there is
 * no libc to provide them. memcpy (also behind ta_dma_*) copies words when
 * both pointers and the length allow it; the rest are byte loops.
 *
 * The runtime is built with -ffreestanding, which implies -fno-builtin, so
 * clang does not turn these loops back into calls to themselves.
 */
typedef unsigned int __attribute__((may_alias)) word_t;

void *memcpy(void *dst, const void *src, unsigned long n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if ((((unsigned long)d | (unsigned long)s | n) & (sizeof(word_t) - 1)) == 0) {
    word_t *dw = (word_t *)d;
    const word_t *sw = (const word_t *)s;
    for (n /= sizeof(word_t); n; n--)
      *dw++ = *sw++;
    return dst;
  }
  while (n--)
    *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, unsigned long n) {
  unsigned char *d = dst;
  while (n--)
    *d++ = (unsigned char)c;
  return dst;
}

void *memmove(void *dst, const void *src, unsigned long n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d < s) {
    while (n--)
      *d++ = *s++;
  } else {
    while (n--)
      d[n] = s[n];
  }
  return dst;
}
