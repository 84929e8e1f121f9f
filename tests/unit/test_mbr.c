/* Unit tests of the MBR/EBR parser: tables made by sfdisk (compared with sfdisk --json) and
 * hand-made bad tables, each refusal checked for its error name and what its message names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inspect.h"
#include "mbr.h"

/* ---- a virtual image: a few written sectors, zeros elsewhere ---- */

struct vimg {
        uint64_t size;
        uint64_t *lba;
        uint8_t (*sec)[512];
        size_t n, cap;
};

static uint8_t *vsec(struct vimg *v, uint64_t lba) {
        for (size_t i = 0; i < v->n; i++)
                if (v->lba[i] == lba)
                        return v->sec[i];
        if (v->n == v->cap) {
                v->cap = v->cap ? v->cap * 2 : 8;
                v->lba = realloc(v->lba, v->cap * sizeof(*v->lba));
                v->sec = realloc(v->sec, v->cap * sizeof(*v->sec));
        }
        v->lba[v->n] = lba;
        memset(v->sec[v->n], 0, 512);
        return v->sec[v->n++];
}

static int vread(void *ud, uint64_t off, void *buf, size_t len) {
        struct vimg *v = ud;
        assert_int_equal(off % 512, 0);
        assert_int_equal(len, 512);
        memset(buf, 0, len);
        for (size_t i = 0; i < v->n; i++)
                if (v->lba[i] == off / 512)
                        memcpy(buf, v->sec[i], 512);
        return 0;
}

static void ventry(struct vimg *v, uint64_t sector, unsigned idx, uint8_t boot, uint8_t type, uint32_t lba, uint32_t count) {
        uint8_t *s = vsec(v, sector);
        uint8_t *p = s + 446 + 16 * idx;
        p[0] = boot;
        p[4] = type;
        for (int i = 0; i < 4; i++) {
                p[8 + i] = (uint8_t)(lba >> (8 * i));
                p[12 + i] = (uint8_t)(count >> (8 * i));
        }
        s[510] = 0x55;
        s[511] = 0xaa;
}

static void vfree(struct vimg *v) {
        free(v->lba);
        free(v->sec);
}

static int vparse(struct vimg *v, struct mbr_table *t, struct hv_error *e) {
        memset(e, 0, sizeof(*e));
        return mbr_parse(v->size, vread, v, t, e);
}

/* Refused with the given error kind and a message containing each of the words. */
static void expect_refused(struct vimg *v, enum hv_kind kind, ...) {
        struct mbr_table t;
        struct hv_error e;
        int r = vparse(v, &t, &e);
        if (r >= 0)
                fail_msg("table accepted; expected a refusal");
        if (e.kind != kind)
                fail_msg("kind %d, expected %d: %s", e.kind, kind, e.msg);
        va_list ap;
        va_start(ap, kind);
        for (const char *w; (w = va_arg(ap, const char *));)
                if (!strstr(e.msg, w))
                        fail_msg("message \"%s\" lacks \"%s\"", e.msg, w);
        va_end(ap);
}

#define MiB (1ULL << 20)

static void test_no_signature(void **s) {
        (void)s;
        struct vimg v = { .size = 64 * MiB };
        vsec(&v, 0);
        expect_refused(&v, HV_E_BAD_TABLE, "no partition table", "0x55AA", NULL);
        vfree(&v);
}

static void test_empty_table(void **s) {
        (void)s;
        struct vimg v = { .size = 64 * MiB };
        uint8_t *p = vsec(&v, 0);
        p[510] = 0x55;
        p[511] = 0xaa;
        expect_refused(&v, HV_E_BAD_TABLE, "no partition table", "empty", NULL);
        vfree(&v);
}

static void test_gpt(void **s) {
        (void)s;
        struct vimg v = { .size = 64 * MiB };
        ventry(&v, 0, 0, 0, 0xee, 1, 131071);
        expect_refused(&v, HV_E_BAD_TABLE, "partition 1", "0xEE", "GPT", NULL);
        vfree(&v);
        struct vimg h = { .size = 64 * MiB };
        ventry(&h, 0, 0, 0x80, 0x83, 2048, 4096);
        ventry(&h, 0, 1, 0, 0xee, 1, 2047);
        expect_refused(&h, HV_E_BAD_TABLE, "partition 2", "GPT", "hybrid", NULL);
        vfree(&h);
}

static void test_primary_rules(void **s) {
        (void)s;
        struct vimg v = { .size = 64 * MiB };
        ventry(&v, 0, 0, 0x81, 0x83, 2048, 4096);
        expect_refused(&v, HV_E_BAD_TABLE, "partition 1", "boot flag 0x81", NULL);
        vfree(&v);

        struct vimg z = { .size = 64 * MiB };
        ventry(&z, 0, 0, 0, 0x83, 2048, 4096);
        ventry(&z, 0, 1, 0, 0x83, 8192, 0);
        expect_refused(&z, HV_E_BAD_TABLE, "partition 2", "0x83", "size is zero", NULL);
        vfree(&z);

        struct vimg p = { .size = 64 * MiB };
        ventry(&p, 0, 2, 0, 0x83, 2048, 131072);
        expect_refused(&p, HV_E_BAD_TABLE, "partition 3", "LBA 2048+131072", "past the end", "67108864 bytes", NULL);
        vfree(&p);

        struct vimg l = { .size = 64 * MiB };
        ventry(&l, 0, 0, 0, 0x83, 0, 100);
        expect_refused(&l, HV_E_BAD_TABLE, "partition 1", "LBA 0", NULL);
        vfree(&l);

        struct vimg o = { .size = 64 * MiB };
        ventry(&o, 0, 0, 0, 0x83, 2048, 10000);
        ventry(&o, 0, 3, 0, 0x82, 12000, 1000);
        expect_refused(&o, HV_E_BAD_TABLE, "partition 1", "overlaps partition 4", "LBA 12000+1000", NULL);
        vfree(&o);

        struct vimg lvm = { .size = 64 * MiB };
        ventry(&lvm, 0, 0, 0x80, 0x83, 2048, 2048);
        ventry(&lvm, 0, 1, 0, 0x8e, 4096, 2048);
        expect_refused(&lvm, HV_E_LVM, "partition 2", "0x8e", "LVM", NULL);
        vfree(&lvm);
}

/* The case: logical 5 at LBA 2049+2048 (EBR at 2048, relative 1) holds LBA 4096, the
 * EBR of logical 6, which itself starts after it (no overlap of data partitions). */
static void test_logical_covers_ebr(void **s) {
        (void)s;
        struct vimg v = { .size = 16 * MiB };
        ventry(&v, 0, 0, 0, 0x05, 2048, 16 * 2048 - 2048);
        ventry(&v, 2048, 0, 0, 0x83, 1, 2048);       /* logical 5: 2049..4096 inclusive */
        ventry(&v, 2048, 1, 0, 0x05, 2048, 4096);    /* next EBR at 2048 + 2048 = 4096 */
        ventry(&v, 4096, 0, 0, 0x83, 1, 2048);       /* logical 6: 4097..6144 */
        expect_refused(&v, HV_E_BAD_TABLE, "logical partition 5", "LBA 2049+2048", "extended boot record at LBA 4096",
                       "logical partition 6", NULL);
        vfree(&v);
        /* one sector shorter: the same chain is fine */
        struct vimg ok = { .size = 16 * MiB };
        ventry(&ok, 0, 0, 0, 0x05, 2048, 16 * 2048 - 2048);
        ventry(&ok, 2048, 0, 0, 0x83, 1, 2047);
        ventry(&ok, 2048, 1, 0, 0x05, 2048, 4096);
        ventry(&ok, 4096, 0, 0, 0x83, 1, 2048);
        struct mbr_table t;
        struct hv_error e;
        if (vparse(&ok, &t, &e) < 0)
                fail_msg("%s", e.msg);
        assert_int_equal(t.n, 3);
        vfree(&ok);
}

static void test_sizes(void **s) {
        (void)s;
        struct vimg v = { .size = 100 };
        expect_refused(&v, HV_E_BAD_TABLE, "100 bytes", "sector", NULL);
        vfree(&v);
        struct vimg w = { .size = 64 * MiB + 100 };
        ventry(&w, 0, 0, 0, 0x83, 2048, 2048);
        expect_refused(&w, HV_E_BAD_TABLE, "67108964", "multiple of 512", NULL);
        vfree(&w);
}

/* Extended partition at 10000 of 100000 sectors; logicals chained by the caller. */
static void extended(struct vimg *v, uint8_t type) {
        v->size = 100000ULL * 512;
        ventry(v, 0, 0, 0x80, 0x83, 2048, 4096);
        ventry(v, 0, 1, 0, type, 10000, 90000);
}

static void test_logicals(void **s) {
        (void)s;
        uint8_t types[] = { 0x05, 0x0f, 0x85 };
        for (size_t k = 0; k < 3; k++) {
                struct vimg v = { 0 };
                extended(&v, types[k]);
                /* three logicals: EBRs at 10000, 20000, 30000 */
                ventry(&v, 10000, 0, 0, 0x83, 2048, 5000);
                ventry(&v, 10000, 1, 0, 0x05, 10000, 8000);
                ventry(&v, 20000, 0, 0x80, 0x82, 2048, 5000);
                ventry(&v, 20000, 1, 0, 0x05, 20000, 8000);
                ventry(&v, 30000, 0, 0, 0x83, 100, 60000 - 100);
                struct mbr_table t;
                struct hv_error e;
                if (vparse(&v, &t, &e) < 0)
                        fail_msg("%s", e.msg);
                assert_int_equal(t.n, 5);
                assert_int_equal(t.parts[2].number, 5);
                assert_int_equal(t.parts[2].offset, 12048ULL * 512);
                assert_int_equal(t.parts[3].number, 6);
                assert_int_equal(t.parts[3].offset, 22048ULL * 512);
                assert_true(t.parts[3].bootable);
                assert_int_equal(t.n_bootable, 2);
                assert_int_equal(t.parts[4].number, 7);
                assert_int_equal(t.parts[4].size, 59900ULL * 512);
                vfree(&v);
        }
}

static void test_logical_refusals(void **s) {
        (void)s;
        struct vimg o = { 0 };
        extended(&o, 0x05);
        ventry(&o, 10000, 0, 0, 0x83, 2048, 9000);
        ventry(&o, 10000, 1, 0, 0x05, 5000, 8000);
        ventry(&o, 15000, 0, 0, 0x83, 100, 5000);
        expect_refused(&o, HV_E_BAD_TABLE, "partition 5", "overlaps partition 6", NULL);
        vfree(&o);

        struct vimg out = { 0 };
        extended(&out, 0x05);
        ventry(&out, 10000, 0, 0, 0x83, 2048, 1000);
        ventry(&out, 10000, 1, 0, 0x05, 95000, 100);
        expect_refused(&out, HV_E_BAD_TABLE, "LBA 105000", "outside extended partition 2", NULL);
        vfree(&out);

        struct vimg self = { 0 };
        extended(&self, 0x05);
        ventry(&self, 10000, 0, 0, 0x83, 2048, 1000);
        ventry(&self, 10000, 1, 0, 0x05, 0, 100);
        expect_refused(&self, HV_E_BAD_TABLE, "loops", NULL);
        vfree(&self);

        struct vimg back = { 0 };
        extended(&back, 0x05);
        ventry(&back, 10000, 0, 0, 0x83, 2048, 1000);
        ventry(&back, 10000, 1, 0, 0x05, 10000, 5000);
        ventry(&back, 20000, 0, 0, 0x83, 2048, 1000);
        ventry(&back, 20000, 1, 0, 0x05, 0x7fffffff & 10000, 5000); /* points back to itself */
        expect_refused(&back, HV_E_BAD_TABLE, "loops back to LBA 20000", NULL);
        vfree(&back);

        struct vimg back2 = { 0 };
        extended(&back2, 0x05);
        ventry(&back2, 10000, 0, 0, 0x83, 2048, 1000);
        ventry(&back2, 10000, 1, 0, 0x05, 10000, 5000);
        ventry(&back2, 20000, 0, 0, 0x83, 2048, 1000);
        ventry(&back2, 20000, 1, 0, 0x05, 0, 5000); /* back to the first EBR */
        expect_refused(&back2, HV_E_BAD_TABLE, "loops", NULL);
        vfree(&back2);

        struct vimg lvm = { 0 };
        extended(&lvm, 0x0f);
        ventry(&lvm, 10000, 0, 0, 0x83, 2048, 1000);
        ventry(&lvm, 10000, 1, 0, 0x05, 10000, 5000);
        ventry(&lvm, 20000, 0, 0, 0x8e, 2048, 1000);
        expect_refused(&lvm, HV_E_LVM, "partition 6", "LVM", NULL);
        vfree(&lvm);

        /* found by fuzz_mbr (tests/fuzz/corpus/mbr/regress-logical-ee): 0xEE as a logical */
        struct vimg ee = { 0 };
        extended(&ee, 0x85);
        ventry(&ee, 10000, 0, 0, 0xee, 2048, 1000);
        expect_refused(&ee, HV_E_BAD_TABLE, "logical partition 5", "0xEE", NULL);
        vfree(&ee);

        struct vimg past = { 0 };
        extended(&past, 0x05);
        ventry(&past, 10000, 0, 0, 0x83, 2048, 95000);
        expect_refused(&past, HV_E_BAD_TABLE, "partition 5", NULL);
        vfree(&past);
}

static void test_long_chain(void **s) {
        (void)s;
        struct vimg v = { .size = 4000000ULL * 512 };
        ventry(&v, 0, 0, 0, 0x05, 2048, 3000000);
        for (uint32_t i = 0; i < 10000; i++) {
                uint64_t ebr = 2048 + (uint64_t)i * 200;
                ventry(&v, ebr, 0, 0, 0x83, 100, 50);
                ventry(&v, ebr, 1, 0, 0x05, (i + 1) * 200, 200);
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        expect_refused(&v, HV_E_BAD_TABLE, "more than 128 logical partitions", NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        /* a bound, not a benchmark: an unbounded walk of 10000 EBRs would still be fast, but the
         * parser must stop at 128 */
        vfree(&v);
}

/* ---- tables written by sfdisk, compared with sfdisk --json ---- */

static char *make_image(const char *script, unsigned mib) {
        char *path = strdup("/tmp/hvwg-mbr-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)mib << 20), 0);
        close(fd);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "sfdisk -q --no-reread --no-tell-kernel %s >/dev/null 2>&1", path);
        FILE *p = popen(cmd, "w");
        assert_non_null(p);
        fputs(script, p);
        assert_int_equal(pclose(p), 0);
        return path;
}

static int fread_cb(void *ud, uint64_t off, void *buf, size_t len) {
        return pread(*(int *)ud, buf, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
}

static void compare_with_sfdisk(const char *script, unsigned mib, unsigned expect_n) {
        char *path = make_image(script, mib);
        int fd = open(path, O_RDONLY);
        struct mbr_table t;
        struct hv_error e = { 0 };
        if (mbr_parse((uint64_t)mib << 20, fread_cb, &fd, &t, &e) < 0)
                fail_msg("%s", e.msg);
        close(fd);
        assert_int_equal(t.n, expect_n);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "sfdisk --json %s", path);
        FILE *p = popen(cmd, "r");
        char *js = calloc(1, 1 << 16);
        size_t n = fread(js, 1, (1 << 16) - 1, p);
        pclose(p);
        js[n] = 0;
        json_object *root = json_tokener_parse(js), *pt, *parts;
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "partitiontable", &pt));
        assert_true(json_object_object_get_ex(pt, "partitions", &parts));
        assert_int_equal(json_object_array_length(parts), t.n);
        for (size_t i = 0; i < t.n; i++) {
                json_object *o = json_object_array_get_idx(parts, i), *v;
                json_object_object_get_ex(o, "node", &v);
                const char *node = json_object_get_string(v);
                size_t nl = strlen(node);
                while (nl > 0 && node[nl - 1] >= '0' && node[nl - 1] <= '9')
                        nl--;
                unsigned num = (unsigned)atoi(node + nl); /* "/tmp/x1" -> 1, "/tmp/x0p5" -> 5 */
                const struct mbr_part *m = NULL;
                for (size_t k = 0; k < t.n; k++)
                        if (t.parts[k].number == num)
                                m = &t.parts[k];
                if (!m)
                        fail_msg("sfdisk has %s, we do not", node);
                json_object_object_get_ex(o, "start", &v);
                assert_int_equal(m->offset, (uint64_t)json_object_get_int64(v) * 512);
                json_object_object_get_ex(o, "size", &v);
                assert_int_equal(m->size, (uint64_t)json_object_get_int64(v) * 512);
                json_object_object_get_ex(o, "type", &v);
                assert_int_equal(m->type, strtoul(json_object_get_string(v), NULL, 16));
                bool boot = json_object_object_get_ex(o, "bootable", &v) && json_object_get_boolean(v);
                assert_int_equal(m->bootable, boot);
        }
        json_object_put(root);
        free(js);
        unlink(path);
        free(path);
}

static void test_sfdisk_tables(void **s) {
        (void)s;
        compare_with_sfdisk("label: dos\nstart=2048, type=83, bootable\n", 32, 1);
        compare_with_sfdisk("label: dos\nstart=2048, size=20M, type=83, bootable\nsize=8M, type=82\n", 32, 2);
        const char *ext[] = { "5", "f", "85" };
        for (int i = 0; i < 3; i++) {
                char script[512];
                snprintf(script, sizeof(script),
                         "label: dos\nstart=2048, size=10M, type=83, bootable\nsize=40M, type=%s\n"
                         "size=5M, type=83\nsize=5M, type=83\n"
                         "size=10M, type=83\nsize=10M, type=82\nsize=10M, type=83\n",
                         ext[i]);
                compare_with_sfdisk(script, 128, 7);
        }
}

static void test_sfdisk_gpt(void **s) {
        (void)s;
        char *path = make_image("label: gpt\nstart=2048, size=10M, type=L\n", 32);
        int fd = open(path, O_RDONLY);
        struct mbr_table t;
        struct hv_error e = { 0 };
        assert_true(mbr_parse(32 << 20, fread_cb, &fd, &t, &e) < 0);
        assert_int_equal(e.kind, HV_E_BAD_TABLE);
        assert_non_null(strstr(e.msg, "GPT"));
        close(fd);
        unlink(path);
        free(path);
}

static void test_whole_disk_fs(void **s) {
        (void)s;
        char path[] = "/tmp/hvwg-fs-XXXXXX";
        int fd = mkstemp(path);
        assert_int_equal(ftruncate(fd, 16 << 20), 0);
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "mke2fs -q -F -t ext4 %s >/dev/null 2>&1", path);
        assert_int_equal(system(cmd), 0);
        struct mbr_table t;
        struct hv_error e = { 0 };
        assert_true(inspect_fd(fd, 16 << 20, &t, &e) < 0);
        assert_non_null(strstr(e.msg, "no partition table"));
        assert_non_null(strstr(e.msg, "whole-disk ext4"));
        close(fd);
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_signature),   cmocka_unit_test(test_empty_table),
                cmocka_unit_test(test_gpt),            cmocka_unit_test(test_primary_rules),
                cmocka_unit_test(test_sizes),          cmocka_unit_test(test_logicals),
                cmocka_unit_test(test_logical_refusals), cmocka_unit_test(test_long_chain),
                cmocka_unit_test(test_sfdisk_tables),  cmocka_unit_test(test_sfdisk_gpt),
                cmocka_unit_test(test_whole_disk_fs),  cmocka_unit_test(test_logical_covers_ebr),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
