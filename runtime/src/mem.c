/*
 * The C library functions LLVM emits calls to on the bare-metal boards, where
 * there is no libc to provide them: memcpy/memset/memmove (struct copies,
 * zero-initialisation, its own loop idioms) and floorf (
 * at the end). memcpy (also behind ta_dma_*) copies words when both pointers
 * and the length allow it; the rest are byte loops.
 *
 * The runtime is built with -ffreestanding, which implies -fno-builtin, so
 * clang does not turn these loops back into calls to themselves.
 */
typedef unsigned int __attribute__((may_alias)) word_t;

__attribute__((weak)) void *memcpy(void *dst, const void *src, unsigned long n) {
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

__attribute__((weak)) void *memset(void *dst, int c, unsigned long n) {
  unsigned char *d = dst;
  while (n--)
    *d++ = (unsigned char)c;
  return dst;
}

__attribute__((weak)) void *memmove(void *dst, const void *src, unsigned long n) {
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

/*
 * floorf: llc emits calls to it where the FPU has no rounding instruction
 * (Cortex-M4's FPv4; the lowering's exp polynomial uses floor). Exact, on the
 * IEEE-754 bits: with e the unbiased exponent, |x| >= 2^23, infinities and
 * NaNs are already integral; |x| < 1 (e < 0) gives a signed zero or -1;
 * otherwise the bits below `unit` (the value 1 at exponent e) are the
 * fraction, cleared, then one unit is added to the magnitude of a negative
 * number that had a fraction. Zeros keep their sign.
 */
typedef union {
  float f;
  unsigned int u;
} f32_bits;

#define F32_SIGN 0x80000000u
#define F32_ONE 0x3f800000u

static int f32_exponent(f32_bits v) { return (int)((v.u >> 23) & 0xff) - 127; }

__attribute__((weak)) float floorf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  int negative = (v.u & F32_SIGN) != 0;
  if (e < 0) { /* |x| < 1: -1 for negatives, the signed zero otherwise (-0 stays -0) */
    v.u = (v.u & F32_SIGN) | (negative && (v.u << 1) ? F32_ONE : 0);
    return v.f;
  }
  unsigned unit = 0x00800000u >> e, fraction = v.u & (unit - 1);
  v.u -= fraction;
  if (fraction && negative)
    v.u += unit;
  return v.f;
}
