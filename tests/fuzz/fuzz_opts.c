/* libFuzzer target: the options dictionaries of FetchImage, CreateMachine, DestroyMachine
 * and StopMachine (opts.c), as the bus edge hands them over. Input: method byte, cores byte, then entries of
 * (type byte, key byte, value: NUL-terminated string | 8-byte integer | 1 byte). Invariants: a
 * refusal is InvalidArgs with a message; an accepted set gives parameters inside their bounds. */
#include <string.h>

#include "opts.h"

static const char *const keys[] = { "sha512", "size", "max_size", "compression", "replace", "memory_mib", "scratch_gib",
                                    "scratch_fs", "hypervisor", "network", "start", "keep_disks", "transient", "force",
                                    "timeout_sec", "x" };
static const char types[] = { 's', 't', 'b', '?' };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 2)
                return 0;
        unsigned method = data[0] % 4, cores = data[1];
        struct opt_value v[OPTS_MAX + 2];
        char strings[OPTS_MAX + 2][64];
        size_t n = 0, i = 2;
        while (i + 2 <= size && n < OPTS_MAX + 2) {
                struct opt_value *o = &v[n];
                memset(o, 0, sizeof(*o));
                o->type = types[data[i] % sizeof(types)];
                o->key = keys[data[i + 1] % (sizeof(keys) / sizeof(keys[0]))];
                i += 2;
                if (o->type == 's') {
                        size_t k = 0;
                        while (i < size && data[i] && k < sizeof(strings[n]) - 1)
                                strings[n][k++] = (char)data[i++];
                        strings[n][k] = 0;
                        i++;
                        o->s = strings[n];
                } else if (o->type == 't') {
                        if (i + 8 > size)
                                break;
                        memcpy(&o->t, data + i, 8);
                        i += 8;
                } else if (o->type == 'b' && i < size)
                        o->b = data[i++] & 1;
                n++;
        }
        struct hv_error e = { 0 };
        int r;
        if (method == 0) {
                struct fetch_params fp;
                r = opts_fetch(v, n, 1ULL << 36, GUNZIP_ISAL, &fp, &e);
                if (r == 0 && (fp.max_size == 0 || fp.max_size > 1ULL << 36 ||
                               (fp.sha512[0] && strspn(fp.sha512, "0123456789abcdef") != HV_SHA512_HEX)))
                        __builtin_trap();
        } else if (method == 1) {
                static const struct create_defaults d = { .hypervisor = "kvm", .scratch_fs = "ext4", .network = "",
                                                          .online_cpus = 8, .cpu_overcommit = 4, .memory_per_core_mib = 2048,
                                                          .scratch_per_core_gib = 20, .max_scratch_size = 64ULL << 40 };
                struct create_params cp;
                r = opts_create(v, n, cores, &d, &cp, &e);
                if (r == 0 && (cp.cores == 0 || cp.cores > 32 || cp.memory_mib == 0 || cp.memory_mib > (16ULL << 20) ||
                               cp.scratch_bytes > d.max_scratch_size || (cp.network[0] && !hv_name_valid(cp.network)) ||
                               (strcmp(cp.scratch_fs, "ext4") && strcmp(cp.scratch_fs, "ext3") && strcmp(cp.scratch_fs, "ext2"))))
                        __builtin_trap();
        } else if (method == 2) {
                bool keep;
                r = opts_destroy(v, n, &keep, &e);
        } else {
                struct stop_params sp;
                r = opts_stop(v, n, &sp, &e);
                if (r == 0 && sp.have_timeout && sp.timeout_sec > MAX_STOP_TIMEOUT_SEC)
                        __builtin_trap();
        }
        if (r < 0 && (!e.msg[0] || e.kind != HV_E_INVALID_ARGS))
                __builtin_trap(); /* every refusal is InvalidArgs and says why */
        if (r > 0)
                __builtin_trap();
        return 0;
}
