/* Unit tests of opts.c: FetchImage, CreateMachine and DestroyMachine options as the bus edge
 * hands them over (key, type, value), with the defaults, every refusal and its message; and the
 * scratch disk sizing they use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "opts.h"

#define S(k, v) { .key = k, .type = 's', .s = v }
#define T(k, v) { .key = k, .type = 't', .t = v }
#define B(k, v) { .key = k, .type = 'b', .b = v }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char HEX_UPPER[] = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
                                "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

static void refused(int r, const struct hv_error *e, const char *needle) {
        assert_int_equal(r, -EINVAL);
        assert_int_equal(e->kind, HV_E_INVALID_ARGS);
        if (!strstr(e->msg, needle))
                fail_msg("message \"%s\" lacks \"%s\"", e->msg, needle);
}

static void test_fetch(void **s) {
        (void)s;
        struct fetch_params fp;
        struct hv_error e = { 0 };
        assert_int_equal(opts_fetch(NULL, 0, 1000, GUNZIP_ZLIB, &fp, &e), 0);
        assert_true(fp.compressed && !fp.replace && !fp.have_size && fp.sha512[0] == 0);
        assert_int_equal(fp.max_size, 1000);
        assert_int_equal(fp.engine, GUNZIP_ZLIB);

        struct opt_value all[] = { S("sha512", HEX_UPPER), T("size", 77), T("max_size", 500), S("compression", "none"),
                                   B("replace", true) };
        assert_int_equal(opts_fetch(all, N(all), 1000, GUNZIP_ISAL, &fp, &e), 0);
        assert_int_equal(strlen(fp.sha512), 128);
        assert_true(strspn(fp.sha512, "0123456789abcdef") == 128); /* lower-cased */
        assert_true(fp.have_size && fp.size == 77 && fp.max_size == 500 && !fp.compressed && fp.replace);

        struct opt_value bigger[] = { T("max_size", 5000) }; /* never above MaxImageSize */
        assert_int_equal(opts_fetch(bigger, 1, 1000, GUNZIP_ISAL, &fp, &e), 0);
        assert_int_equal(fp.max_size, 1000);

        struct { struct opt_value v; const char *needle; } bad[] = {
                { S("sha512", "abc"), "128 hexadecimal digits, got 3" },
                { S("sha512", "g123"), "128 hexadecimal" },
                { S("compression", "bzip2"), "\"gzip\" or \"none\", got \"bzip2\"" },
                { T("max_size", 0), "max_size must be greater than 0" },
                { S("size", "12"), "option size must have type 't', got 's'" },
                { { .key = "replace", .type = '?' }, "must have type 'b'" },
                { S("colour", "red"), "unknown option \"colour\" (known: sha512, size, max_size, compression, replace)" },
        };
        for (size_t i = 0; i < N(bad); i++) {
                memset(&e, 0, sizeof(e));
                refused(opts_fetch(&bad[i].v, 1, 1000, GUNZIP_ISAL, &fp, &e), &e, bad[i].needle);
        }
        struct opt_value twice[] = { T("size", 1), T("size", 2) };
        memset(&e, 0, sizeof(e));
        refused(opts_fetch(twice, 2, 1000, GUNZIP_ISAL, &fp, &e), &e, "option size given twice");
        struct opt_value many[OPTS_MAX + 1];
        for (size_t i = 0; i < N(many); i++)
                many[i] = (struct opt_value)B("replace", false);
        memset(&e, 0, sizeof(e));
        refused(opts_fetch(many, N(many), 1000, GUNZIP_ISAL, &fp, &e), &e, "more than 32 options");
}

static const struct create_defaults D = {
        .hypervisor = "qemu", .scratch_fs = "ext4", .network = "", .online_cpus = 4, .cpu_overcommit = 2,
        .memory_per_core_mib = 2048, .scratch_per_core_gib = 20, .max_scratch_size = 64ULL << 40,
};

static void test_create(void **s) {
        (void)s;
        struct create_params cp;
        struct hv_error e = { 0 };
        assert_int_equal(opts_create(NULL, 0, 3, &D, &cp, &e), 0);
        assert_int_equal(cp.cores, 3);
        assert_int_equal(cp.memory_mib, 3 * 2048);
        assert_int_equal(cp.scratch_bytes, 60ULL << 30);
        assert_int_equal(cp.hv, DOM_QEMU);
        assert_string_equal(cp.scratch_fs, "ext4");
        assert_string_equal(cp.network, "");
        assert_true(cp.start);

        struct opt_value all[] = { T("memory_mib", 512), T("scratch_gib", 7), S("scratch_fs", "ext2"), S("hypervisor", "xen-pv"),
                                   S("network", "default"), B("start", false) };
        assert_int_equal(opts_create(all, N(all), 8, &D, &cp, &e), 0);
        assert_true(cp.memory_mib == 512 && cp.scratch_bytes == 7ULL << 30 && cp.hv == DOM_XEN_PV && !cp.start);
        assert_string_equal(cp.scratch_fs, "ext2");
        assert_string_equal(cp.network, "default");
        struct opt_value none[] = { T("scratch_gib", 0) }; /* no scratch disk */
        assert_int_equal(opts_create(none, 1, 1, &D, &cp, &e), 0);
        assert_int_equal(cp.scratch_bytes, 0);

        struct { uint32_t cores; struct opt_value v; const char *needle; } bad[] = {
                { 0, B("start", true), "cores must be between 1 and 8 (4 online CPUs × CpuOvercommit=2), got 0" },
                { 9, B("start", true), "got 9" },
                { 1, T("memory_mib", 0), "memory_mib must be between 1 and" },
                { 1, T("memory_mib", (16ULL << 20) + 1), "memory_mib must be between 1 and" },
                { 1, S("hypervisor", "vbox"), "unknown hypervisor \"vbox\"" },
                { 1, S("scratch_fs", "xfs"), "unknown scratch_fs \"xfs\"" },
                { 1, S("network", "a/b"), "invalid network name \"a/b\"" },
                { 1, T("cores", 2), "unknown option \"cores\"" },
                { 1, S("start", "yes"), "option start must have type 'b', got 's'" },
        };
        for (size_t i = 0; i < N(bad); i++) {
                memset(&e, 0, sizeof(e));
                refused(opts_create(&bad[i].v, 1, bad[i].cores, &D, &cp, &e), &e, bad[i].needle);
        }
}

static void test_scratch_sizing(void **s) {
        (void)s;
        uint64_t v;
        struct hv_error e = { 0 };
        assert_int_equal(scratch_size(4, 20, false, 0, 64ULL << 40, &v, &e), 0);
        assert_int_equal(v, 80ULL << 30);
        assert_int_equal(scratch_size(4, 20, true, 7, 64ULL << 40, &v, &e), 0);
        assert_int_equal(v, 7ULL << 30); /* the option wins */
        assert_int_equal(scratch_size(4, 20, true, 0, 64ULL << 40, &v, &e), 0);
        assert_int_equal(v, 0); /* scratch_gib=0: no scratch disk */
        memset(&e, 0, sizeof(e));
        assert_true(scratch_size(0, 20, false, 0, 64ULL << 40, &v, &e) < 0);
        assert_non_null(strstr(e.msg, "cores"));
        memset(&e, 0, sizeof(e));
        assert_true(scratch_size(64, 2000, false, 0, 64ULL << 40, &v, &e) < 0);
        assert_non_null(strstr(e.msg, "MaxScratchSize"));
        memset(&e, 0, sizeof(e));
        assert_true(scratch_size(1, 0, true, UINT64_MAX / 2, 64ULL << 40, &v, &e) < 0);
        memset(&e, 0, sizeof(e));
        assert_true(scratch_size(4, 0, false, 0, 64ULL << 40, &v, &e) < 0);
        assert_non_null(strstr(e.msg, "0 GiB"));
}

static void test_destroy(void **s) {
        (void)s;
        bool keep = true;
        struct hv_error e = { 0 };
        assert_int_equal(opts_destroy(NULL, 0, &keep, &e), 0);
        assert_false(keep);
        struct opt_value k[] = { B("keep_disks", true) };
        assert_int_equal(opts_destroy(k, 1, &keep, &e), 0);
        assert_true(keep);
        struct opt_value bad[] = { B("force", true) };
        refused(opts_destroy(bad, 1, &keep, &e), &e, "unknown option \"force\" (known: keep_disks)");
}

static void test_transient(void **s) {
        (void)s;
        const struct create_defaults d = { .hypervisor = "qemu", .scratch_fs = "ext4", .network = "", .online_cpus = 4,
                                           .cpu_overcommit = 1, .memory_per_core_mib = 100, .scratch_per_core_gib = 1,
                                           .max_scratch_size = 1ULL << 40 };
        struct create_params cp;
        struct hv_error e = { 0 };
        assert_int_equal(opts_create(NULL, 0, 1, &d, &cp, &e), 0);
        assert_false(cp.transient);
        struct opt_value t[] = { B("transient", true) };
        assert_int_equal(opts_create(t, 1, 1, &d, &cp, &e), 0);
        assert_true(cp.transient && cp.start);
        struct opt_value bad[] = { B("transient", true), B("start", false) };
        refused(opts_create(bad, 2, 1, &d, &cp, &e), &e, "start=false cannot go with transient=true");
}

static void test_stop(void **s) {
        (void)s;
        struct stop_params sp;
        struct hv_error e = { 0 };
        assert_int_equal(opts_stop(NULL, 0, &sp, &e), 0);
        assert_true(!sp.force && !sp.have_timeout);
        struct opt_value all[] = { B("force", true), T("timeout_sec", 0) };
        assert_int_equal(opts_stop(all, 2, &sp, &e), 0);
        assert_true(sp.force && sp.have_timeout && sp.timeout_sec == 0);
        struct opt_value day[] = { T("timeout_sec", 86400) };
        assert_int_equal(opts_stop(day, 1, &sp, &e), 0);
        struct opt_value past[] = { T("timeout_sec", 86401) };
        refused(opts_stop(past, 1, &sp, &e), &e, "timeout_sec must be at most 86400");
        struct opt_value type[] = { S("force", "yes") };
        e = (struct hv_error){ 0 };
        refused(opts_stop(type, 1, &sp, &e), &e, "option force must have type 'b'");
        e = (struct hv_error){ 0 };
        struct opt_value unknown[] = { B("keep_disks", true) };
        refused(opts_stop(unknown, 1, &sp, &e), &e, "unknown option \"keep_disks\" (known: force, timeout_sec)");
}

static void test_capacity(void **s) {
        (void)s;
        struct hv_error e = { 0 };
        struct capacity c = { .online_cpus = 8, .cpu_overcommit = 2, .ram_mib = 10000, .reserved_memory_mib = 2000,
                              .committed_cores = 10, .committed_memory_mib = 5000 };
        assert_int_equal(capacity_check(&c, 6, 3000, &e), 0); /* exactly 16 cores, exactly 8000 MiB */
        assert_int_equal(capacity_check(&c, 7, 100, &e), -EBUSY);
        assert_int_equal(e.kind, HV_E_LIMITS);
        assert_non_null(strstr(e.msg, "not enough CPU: 10 cores committed to machines + 7 asked = 17, more than 16 (8 online CPUs × CpuOvercommit=2)"));
        e = (struct hv_error){ 0 };
        assert_int_equal(capacity_check(&c, 1, 3001, &e), -EBUSY);
        assert_non_null(strstr(e.msg, "not enough memory: 5000 MiB committed to machines + 3001 MiB asked = 8001 MiB, more than 8000 MiB"));
        assert_non_null(strstr(e.msg, "ReservedMemoryMiB=2000"));
        /* reserved above the RAM: nothing fits */
        c = (struct capacity){ .online_cpus = 1, .cpu_overcommit = 1, .ram_mib = 1000, .reserved_memory_mib = 4000 };
        e = (struct hv_error){ 0 };
        assert_int_equal(capacity_check(&c, 1, 1, &e), -EBUSY);
        /* no online CPU count: taken as 1 */
        c = (struct capacity){ .online_cpus = -1, .cpu_overcommit = 1, .ram_mib = 1000 };
        assert_int_equal(capacity_check(&c, 1, 1, &e), 0);
        assert_int_equal(capacity_check(&c, 2, 1, &e), -EBUSY);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_transient),
                cmocka_unit_test(test_stop),
                cmocka_unit_test(test_capacity),
                cmocka_unit_test(test_fetch),
                cmocka_unit_test(test_create),
                cmocka_unit_test(test_scratch_sizing),
                cmocka_unit_test(test_destroy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
