/*
 * A hand-written stand-in for generated model code plus its harness, used by
 * test_toolchain.py on every runnable target: reads in.bin, runs the "model"
 * between the counting markers, writes out.bin. Layouts (all little-endian):
 *
 *   in.bin : f32 alpha, f32 x[N], i8 a[N], i8 b[N], u8 src[ROWS][SRC_STRIDE]
 *   out.bin: i32 dot(a, b), u32 DMA bytes, f32 y[N] = alpha*x + x*x,
 *            u8 tile[ROWS][COLS] = src[:, COL0:COL0+COLS]
 */
#include "tinyattn_rt.h"

#define N 64
#define ROWS 8
#define COLS 16
#define SRC_STRIDE 40
#define COL0 8

struct input {
  float alpha;
  float x[N];
  signed char a[N], b[N];
  unsigned char src[ROWS][SRC_STRIDE];
};

struct output {
  int dot;
  unsigned int dma_bytes;
  float y[N];
  unsigned char tile[ROWS][COLS];
};

static struct input in;
static struct output out;
/* The DMA destination lives in the compiler's L1 arena section. */
__attribute__((section(".tinyattn.l1"))) static unsigned char l1_tile[ROWS][COLS];

static void model(void) {
  int acc = 0;
  for (int i = 0; i < N; i++)
    acc += in.a[i] * in.b[i];
  out.dot = acc;
  for (int i = 0; i < N; i++)
    out.y[i] = in.alpha * in.x[i] + in.x[i] * in.x[i];
  ta_dma_wait(ta_dma_start_2d(l1_tile, &in.src[0][COL0], COLS, ROWS, COLS, SRC_STRIDE));
  ta_dma_wait(ta_dma_start_1d(out.tile, l1_tile, sizeof l1_tile));
}

int main(void) {
  if (ta_read_file("in.bin", &in, sizeof in) != 0) {
    ta_puts("harness: cannot read in.bin\n");
    return 2;
  }
  ta_count_begin();
  model();
  ta_count_end();
  out.dma_bytes = (unsigned int)ta_dma_bytes_moved();
  if (ta_write_file("out.bin", &out, sizeof out) != 0) {
    ta_puts("harness: cannot write out.bin\n");
    return 2;
  }
  return 0;
}
