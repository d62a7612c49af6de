/*
 * tjx_insn_count: a QEMU TCG plugin (plugin API v1, QEMU 7.2) that counts the guest instructions
 * executed inside each call of one function, exactly.
 *
 * Arguments (-plugin tjx_insn_count.so,out=FILE,entry=0xADDR,ret=0xADDR[,ret=0xADDR...]):
 *   out    the file the counts are written to at exit: one line "call N" per completed call, in
 *          call order, then "total N" (every instruction of the run);
 *   entry  the function's first instruction (the Thumb bit cleared);
 *   ret    an address right after a `bl` to the function (a return site), outside the function.
 *
 * Every translation block adds its own length to one counter with an inline add, except the
 * boundary blocks (those starting at entry or at a return site): they get an exec callback that
 * first reads the counter (the instructions executed before the block) and then adds the block's
 * length itself, so the order of inline ops and callbacks cannot matter. A call is counted from
 * its entry block to the return site it comes back to: everything the function and its callees
 * execute, the returning instruction included, the calling `bl` excluded. Entries while already
 * inside (recursion, a loop back to the first instruction) do not restart the count.
 *
 * These are our own declarations of the few API v1 functions used (QEMU does not install
 * qemu-plugin.h); their signatures are those of QEMU 7.2's include/qemu/qemu-plugin.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                  void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                                 void (*cb)(unsigned int vcpu_index, void *userdata),
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                                     void *ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *),
                                           void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

#define MAX_RETURN_SITES 256

static uint64_t executed;            /* guest instructions so far (one vCPU: the MPS2 boards) */
static uint64_t entry_address;
static uint64_t return_sites[MAX_RETURN_SITES];
static unsigned n_return_sites;
static int inside;
static uint64_t call_start;
static uint64_t *calls;
static size_t n_calls, capacity, dropped_calls;
static char out_path[4096];

/* a boundary block's callback: userdata is the block's length, tagged with bit 63 on entry */
#define ENTRY_TAG (UINT64_C(1) << 63)

static void on_boundary(unsigned int vcpu_index, void *userdata)
{
    uint64_t tag = (uint64_t)(uintptr_t)userdata;
    (void)vcpu_index;
    if (tag & ENTRY_TAG)
    {
        if (!inside)
        {
            inside = 1;
            call_start = executed;
        }
    }
    else if (inside)
    {
        inside = 0;
        if (n_calls == capacity)
        {
            uint64_t *grown = realloc(calls, (capacity ? 2 * capacity : 1024) * sizeof *calls);
            if (grown == NULL)
            {
                dropped_calls++;
                executed += tag & ~ENTRY_TAG;
                return;
            }
            calls = grown;
            capacity = capacity ? 2 * capacity : 1024;
        }
        calls[n_calls++] = executed - call_start;
    }
    executed += tag & ~ENTRY_TAG;
}

static int is_return_site(uint64_t pc)
{
    for (unsigned i = 0; i < n_return_sites; i++)
    {
        if (return_sites[i] == pc)
        {
            return 1;
        }
    }
    return 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    uint64_t n = (uint64_t)qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (pc == entry_address)
    {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_boundary, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)(n | ENTRY_TAG));
    }
    else if (is_return_site(pc))
    {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_boundary, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    }
    else
    {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    }
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = fopen(out_path, "w");
    if (f == NULL)
    {
        fprintf(stderr, "tjx_insn_count: cannot write %s\n", out_path);
        return;
    }
    for (size_t i = 0; i < n_calls; i++)
    {
        fprintf(f, "call %llu\n", (unsigned long long)calls[i]);
    }
    if (inside)
    {
        fprintf(f, "unfinished %llu\n", (unsigned long long)(executed - call_start));
    }
    if (dropped_calls)
    {
        fprintf(f, "dropped %zu\n", dropped_calls);
    }
    fprintf(f, "total %llu\n", (unsigned long long)executed);
    fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    int have_entry = 0;
    (void)info;
    for (int i = 0; i < argc; i++)
    {
        const char *a = argv[i];
        if (strncmp(a, "out=", 4) == 0 && strlen(a + 4) < sizeof out_path)
        {
            strcpy(out_path, a + 4);
        }
        else if (strncmp(a, "entry=", 6) == 0)
        {
            entry_address = strtoull(a + 6, NULL, 0);
            have_entry = 1;
        }
        else if (strncmp(a, "ret=", 4) == 0 && n_return_sites < MAX_RETURN_SITES)
        {
            return_sites[n_return_sites++] = strtoull(a + 4, NULL, 0);
        }
        else
        {
            fprintf(stderr, "tjx_insn_count: unknown or excess argument '%s'\n", a);
            return -1;
        }
    }
    if (!out_path[0] || !have_entry || n_return_sites == 0)
    {
        fprintf(stderr, "tjx_insn_count: needs out=FILE, entry=ADDR and at least one ret=ADDR\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
