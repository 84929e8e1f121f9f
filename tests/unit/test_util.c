#define _GNU_SOURCE
/* Unit tests of names, error mapping, sparse zero detection and image metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "copy.h"
#include "sparse.h"
#include "store.h"
#include "util.h"

static void test_names(void **state) {
        (void)state;
        const char *good[] = { "a", "A", "0", "sl7", "cvm-4.0_x86-64.v2", "a.", "a..b", "x-", NULL };
        for (size_t i = 0; good[i]; i++)
                if (!hv_name_valid(good[i]))
                        fail_msg("\"%s\" refused", good[i]);
        char n64[65], n65[66];
        memset(n64, 'a', 64);
        n64[64] = 0;
        memset(n65, 'a', 65);
        n65[65] = 0;
        assert_true(hv_name_valid(n64));
        assert_false(hv_name_valid(n65));
        const char *bad[] = { "", ".", "..", "../x", "a/b", "/a", ".hidden", "-x", "_x", "a b", "a\nb", "ä", "a;rm", "a$b", NULL };
        for (size_t i = 0; bad[i]; i++)
                if (hv_name_valid(bad[i]))
                        fail_msg("\"%s\" accepted", bad[i]);
        assert_false(hv_name_valid(NULL));
}

static void test_error_names(void **state) {
        (void)state;
        struct hv_error e = { 0 };
        assert_int_equal(hv_fail(&e, HV_E_CHECKSUM, EBADMSG, "x %d", 1), -EBADMSG);
        assert_string_equal(hv_error_name(&e), "org.hepix.hvwg1.Error.ChecksumMismatch");
        assert_string_equal(e.msg, "x 1");
        /* first error wins */
        hv_fail(&e, HV_E_SIZE, EBADMSG, "second");
        assert_string_equal(e.msg, "x 1");
        /* ENOSPC is always NoSpace and never "Success" */
        struct hv_error s = { 0 };
        hv_fail_errno(&s, HV_E_ERRNO, ENOSPC, "writing");
        assert_string_equal(hv_error_name(&s), "org.hepix.hvwg1.Error.NoSpace");
        assert_non_null(strstr(s.msg, "No space left"));
        struct hv_error q = { 0 };
        hv_fail(&q, HV_E_FETCH_FAILED, EDQUOT, "quota");
        assert_string_equal(hv_error_name(&q), "org.hepix.hvwg1.Error.NoSpace");
        struct hv_error z = { 0 };
        assert_int_equal(hv_fail(&z, HV_E_ERRNO, 0, "unknown"), -EIO);
        assert_string_equal(hv_error_name(&z), "org.freedesktop.DBus.Error.Failed");
}

static void test_zero_detection(void **state) {
        (void)state;
        uint8_t b[8192] = { 0 };
        assert_true(sparse_is_zero(b, sizeof(b)));
        assert_true(sparse_is_zero(b, 0));
        assert_true(sparse_is_zero(b, 3));
        size_t probes[] = { 0, 1, 15, 16, 17, 4095, 8191 };
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
                b[probes[i]] = 1;
                assert_false(sparse_is_zero(b, sizeof(b)));
                b[probes[i]] = 0;
        }
}

static void test_sparse_writer(void **state) {
        (void)state;
        char path[] = "/tmp/hvwg-sparse-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        struct sparse_writer w;
        sparse_init(&w, fd);
        struct hv_error e = { 0 };
        size_t n = 1 << 20;
        uint8_t *buf = calloc(1, n);
        memset(buf + 8192, 0xab, 100);         /* block 2 has data */
        memset(buf + 512 * 1024, 0xcd, 4096);  /* one full block */
        assert_int_equal(sparse_append(&w, buf, n, &e), 0);
        /* an odd-sized chunk keeps working across block boundaries */
        memset(buf, 0, n);
        buf[10] = 7;
        assert_int_equal(sparse_append(&w, buf, 3000, &e), 0);
        memset(buf, 0, n);
        assert_int_equal(sparse_append(&w, buf, n, &e), 0); /* trailing hole */
        assert_int_equal(sparse_finish(&w, &e), 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal((uint64_t)st.st_size, 2 * n + 3000);
        assert_true((uint64_t)st.st_blocks * 512 <= 4 * 4096 + 8192);
        uint8_t c;
        assert_int_equal(pread(fd, &c, 1, 8192 + 50), 1);
        assert_int_equal(c, 0xab);
        assert_int_equal(pread(fd, &c, 1, n + 10), 1);
        assert_int_equal(c, 7);
        assert_int_equal(pread(fd, &c, 1, 2 * n + 2999), 1);
        assert_int_equal(c, 0);
        free(buf);
        close(fd);
        unlink(path);
}

static void test_sparse_writer_direct(void **state) {
        (void)state;
        char path[] = "/var/tmp/hvwg-direct-XXXXXX";
        int fd = mkostemp(path, O_DIRECT);
        if (fd < 0) {
                skip(); /* a filesystem without O_DIRECT */
                return;
        }
        struct sparse_writer w;
        sparse_init(&w, fd);
        assert_true(w.direct);
        struct hv_error e = { 0 };
        uint8_t *buf = NULL;
        assert_int_equal(posix_memalign((void **)&buf, 4096, 1 << 20), 0);
        memset(buf, 0, 1 << 20);
        memset(buf + 4096, 0x5a, 8192);
        assert_int_equal(sparse_append(&w, buf, 1 << 20, &e), 0);
        assert_true(w.direct);
        buf[0] = 9;
        assert_int_equal(sparse_append(&w, buf, 1000, &e), 0); /* unaligned tail: O_DIRECT goes */
        assert_false(w.direct);
        assert_int_equal(sparse_finish(&w, &e), 0);
        uint8_t c;
        assert_int_equal(pread(fd, &c, 1, 4096 + 100), 1);
        assert_int_equal(c, 0x5a);
        assert_int_equal(pread(fd, &c, 1, 1 << 20), 1);
        assert_int_equal(c, 9);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, (1 << 20) + 1000);
        free(buf);
        close(fd);
        unlink(path);
}

static void fill(int fd, uint64_t off, size_t len, uint8_t seed) {
        uint8_t *b = malloc(len);
        for (size_t i = 0; i < len; i++)
                b[i] = (uint8_t)(seed + i * 7 + (i >> 12));
        assert_int_equal(hv_pwrite_all(fd, b, len, off), 0);
        free(b);
}

static void test_copy_sparse(void **state) {
        (void)state;
        char src[] = "/var/tmp/hvwg-copy-src-XXXXXX";
        int fd = mkstemp(src);
        assert_true(fd >= 0);
        uint64_t size = (10ULL << 20) + 123; /* an odd tail: the last write cannot be O_DIRECT */
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        fill(fd, 0, 8192, 1);
        fill(fd, 5ULL << 20, (4 << 20) + 8192, 2); /* spans a 4 MiB copy buffer */
        fill(fd, size - 5000, 5000, 3);
        fsync(fd);
        char dst[64];
        snprintf(dst, sizeof(dst), "%s.copy", src);
        struct hv_error e = { 0 };
        bool reflinked = true;
        if (copy_sparse(src, dst, NULL, NULL, NULL, &reflinked, &e) < 0)
                fail_msg("%s", e.msg);
        struct stat a, b;
        assert_int_equal(stat(src, &a), 0);
        assert_int_equal(stat(dst, &b), 0);
        assert_int_equal(a.st_size, b.st_size);
        assert_true(b.st_blocks <= a.st_blocks + 64); /* holes stay holes */
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "cmp -s %s %s", src, dst);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(unlink(dst), 0);
        /* canceled: an error, and nothing left */
        atomic_bool cancel = true;
        memset(&e, 0, sizeof(e));
        assert_true(copy_sparse(src, dst, NULL, NULL, &cancel, NULL, &e) < 0);
        assert_int_equal(e.kind, HV_E_CANCELED);
        assert_int_equal(access(dst, F_OK), -1);
        /* an existing destination is never overwritten */
        int keep = open(dst, O_CREAT | O_WRONLY, 0600);
        close(keep);
        memset(&e, 0, sizeof(e));
        assert_true(copy_sparse(src, dst, NULL, NULL, NULL, NULL, &e) < 0);
        assert_int_equal(access(dst, F_OK), 0);
        unlink(dst);
        close(fd);
        unlink(src);
}


int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),          cmocka_unit_test(test_error_names),
                cmocka_unit_test(test_zero_detection), cmocka_unit_test(test_sparse_writer),
                  cmocka_unit_test(test_sparse_writer_direct),
                cmocka_unit_test(test_copy_sparse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
