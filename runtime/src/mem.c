/*
 * The C library functions LLVM emits calls to on the bare-metal boards, where
 * there is no libc to provide them: memcpy/memset/memmove (struct copies,
 * zero-initialisation, its own loop idioms) and float rounding (floorf etc.,
 * at the end). memcpy (also behind ta_dma_*) copies words when both pointers
 * and the length allow it; the rest are byte loops.
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

/*
 * Float rounding: llc emits calls to these where the FPU has no rounding
 * instruction (Cortex-M4's FPv4; the lowering's exp polynomial uses floor).
 * Exact, on the IEEE-754 bits: with e the unbiased exponent, |x| >= 2^23,
 * infinities and NaNs are already integral; |x| < 1 (e < 0) gives a signed
 * zero or one; otherwise the bits below `unit` (the value 1 at exponent e)
 * are the fraction, cleared, then one unit is added to the magnitude where
 * the rounding mode asks for it. Zeros keep their sign.
 */
typedef union {
  float f;
  unsigned int u;
} f32_bits;

#define F32_SIGN 0x80000000u
#define F32_ONE 0x3f800000u

static int f32_exponent(f32_bits v) { return (int)((v.u >> 23) & 0xff) - 127; }

/* x with |x| < 1 rounded to the signed zero, or to the signed one if `one`. */
static float f32_small(f32_bits v, int one) {
  v.u = (v.u & F32_SIGN) | (one ? F32_ONE : 0);
  return v.f;
}

float floorf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  int negative = (v.u & F32_SIGN) != 0;
  if (e < 0)
    return f32_small(v, negative && (v.u << 1)); /* -0 stays -0 */
  unsigned unit = 0x00800000u >> e, fraction = v.u & (unit - 1);
  v.u -= fraction;
  if (fraction && negative)
    v.u += unit;
  return v.f;
}

float ceilf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  int negative = (v.u & F32_SIGN) != 0;
  if (e < 0)
    return f32_small(v, !negative && v.u); /* +0 stays +0, negatives go to -0 */
  unsigned unit = 0x00800000u >> e, fraction = v.u & (unit - 1);
  v.u -= fraction;
  if (fraction && !negative)
    v.u += unit;
  return v.f;
}

float truncf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  if (e < 0)
    return f32_small(v, 0);
  v.u &= ~((0x00800000u >> e) - 1);
  return v.f;
}

/* Halfway cases away from zero. */
float roundf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  if (e < 0)
    return f32_small(v, e == -1); /* [0.5, 1) rounds to one */
  unsigned unit = 0x00800000u >> e, fraction = v.u & (unit - 1);
  v.u -= fraction;
  if (fraction >= unit >> 1)
    v.u += unit;
  return v.f;
}

/* Halfway cases to even. For e = 0 the unit bit is the exponent's lowest
 * bit, which is set (127 is odd) just as the integer part 1 is odd. */
float roundevenf(float x) {
  f32_bits v = {x};
  int e = f32_exponent(v);
  if (e >= 23)
    return x;
  if (e < 0) /* (0.5, 1) rounds to one; 0.5 itself to the even zero */
    return f32_small(v, e == -1 && (v.u & 0x007fffffu));
  unsigned unit = 0x00800000u >> e, fraction = v.u & (unit - 1);
  v.u -= fraction;
  if (fraction > unit >> 1 || (fraction == unit >> 1 && (v.u & unit)))
    v.u += unit;
  return v.f;
}
