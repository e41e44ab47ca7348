/*
 * QEMU TCG plugin that counts the guest instructions executed between the
 * runtime's counting markers, exactly and repeatably.
 *
 *   qemu-system-... -plugin count_plugin.so,begin=0xADDR,end=0xADDR,out=FILE
 *                   [,marks=0xADDR0:0xADDR1:...,profile=FILE]
 *
 * Every instruction gets an inline 64-bit add (no helper call, so counting is
 * cheap and exact). The first instruction of ta_count_begin and of
 * ta_count_end additionally gets a callback: begin snapshots the running
 * total, end adds (total - snapshot) to the result. At exit FILE receives
 * "<instructions> <regions>\n", regions being the number of begin/end pairs.
 *
 * Profiling: mark i is the address of a function the profiled program calls
 * where region i starts (region 0 is the code between kernels). Each mark's
 * first instruction gets a callback that charges the instructions since the
 * last switch to the region being left, so every counted instruction lands in
 * exactly one region. The profile FILE receives "<region> <instructions>
 * <entries>\n" per region. Single vCPU boards only (plain counters).
 *
 * Debian ships QEMU with plugin support but without qemu-plugin.h, so the
 * few declarations used are written out below; they match the plugin API
 * version 1 of QEMU 7.2 (include/qemu/qemu-plugin.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *,
                                            qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_MARKS 4096

static uint64_t total, snapshot, counted, regions;
static uint64_t begin_addr, end_addr;
static const char *out_path, *profile_path;
static uint64_t marks[MAX_MARKS], spent[MAX_MARKS], entries[MAX_MARKS];
static size_t n_marks, current;
static int inside; /* between ta_count_begin and ta_count_end */
static uint64_t switched; /* the total at the last region switch */

static void charge(void) {
  spent[current] += total - switched;
  switched = total;
}

static void on_begin(unsigned int vcpu, void *udata) {
  snapshot = switched = total;
  current = 0;
  inside = 1;
}

static void on_end(unsigned int vcpu, void *udata) {
  counted += total - snapshot;
  regions++;
  if (inside)
    charge();
  inside = 0;
}

static void on_mark(unsigned int vcpu, void *udata) {
  if (!inside)
    return;
  charge();
  current = (size_t)(uintptr_t)udata;
  entries[current]++;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t pc = qemu_plugin_insn_vaddr(insn);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    if (pc == begin_addr)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
    if (pc == end_addr)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
    for (size_t m = 0; m < n_marks; m++)
      if (pc == marks[m])
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                               (void *)(uintptr_t)m);
  }
}

static void write_result(qemu_plugin_id_t id, void *udata) {
  FILE *f = fopen(out_path, "w");
  if (f) {
    fprintf(f, "%" PRIu64 " %" PRIu64 "\n", counted, regions);
    fclose(f);
  }
  FILE *p = profile_path ? fopen(profile_path, "w") : NULL;
  if (p) {
    for (size_t m = 0; m < n_marks; m++)
      fprintf(p, "%zu %" PRIu64 " %" PRIu64 "\n", m, spent[m], entries[m]);
    fclose(p);
  }
}

/* "0xA:0xB:..." -> marks; 0 if the list is empty or too long. */
static int parse_marks(const char *list) {
  for (const char *s = list; *s && n_marks < MAX_MARKS;) {
    char *next;
    marks[n_marks++] = strtoull(s, &next, 0);
    if (next == s)
      return 0;
    s = *next == ':' ? next + 1 : next;
  }
  return n_marks > 0 && n_marks < MAX_MARKS;
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], "begin=", 6))
      begin_addr = strtoull(argv[i] + 6, NULL, 0);
    else if (!strncmp(argv[i], "end=", 4))
      end_addr = strtoull(argv[i] + 4, NULL, 0);
    else if (!strncmp(argv[i], "out=", 4))
      out_path = argv[i] + 4;
    else if (!strncmp(argv[i], "profile=", 8))
      profile_path = argv[i] + 8;
    else if (!strncmp(argv[i], "marks=", 6)) {
      if (!parse_marks(argv[i] + 6)) {
        fprintf(stderr, "count_plugin: bad marks '%s'\n", argv[i] + 6);
        return -1;
      }
    }
    else {
      fprintf(stderr, "count_plugin: unknown argument '%s'\n", argv[i]);
      return -1;
    }
  }
  if (!begin_addr || !end_addr || !out_path) {
    fprintf(stderr, "count_plugin: needs begin=ADDR,end=ADDR,out=FILE\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_result, NULL);
  return 0;
}
