/* Unit tests of copy.c: the root disk copy keeps holes and data. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "util.h"

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
                cmocka_unit_test(test_copy_sparse)
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
