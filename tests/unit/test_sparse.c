/* Unit tests of sparse.c: zero detection and the hole-skipping writer, buffered and O_DIRECT. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sparse.h"
#include "util.h"

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
        sparse_done(&w);
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
        assert_int_equal(sparse_append(&w, buf, 1000, &e), 0); /* an unaligned tail waits for more */
        assert_true(w.direct);
        assert_int_equal(sparse_finish(&w, &e), 0); /* it is the last: O_DIRECT goes */
        assert_false(w.direct);
        sparse_done(&w);
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

/* Buffers of odd sizes at odd addresses (what the parallel decoder hands on): O_DIRECT stays
 * until the last partial block, the file reads back as the data, zero blocks are holes. */
static void test_sparse_writer_odd_buffers(void **state) {
        (void)state;
        char path[] = "/var/tmp/hvwg-direct-XXXXXX";
        int fd = mkostemp(path, O_DIRECT);
        if (fd < 0) {
                skip();
                return;
        }
        struct sparse_writer w;
        sparse_init(&w, fd);
        bool direct = w.direct;
        struct hv_error e = { 0 };
        size_t total = 6 << 20;
        uint8_t *want = calloc(1, total), *src = NULL;
        assert_int_equal(posix_memalign((void **)&src, 4096, total + 8192), 0);
        for (size_t i = 0; i < total; i++) /* data with zero stretches of 1-3 blocks and more */
                want[i] = (i / 40000) % 2 == 1 ? 0 : (uint8_t)(i * 7 + 1);
        uint32_t x = 12345;
        for (size_t pos = 0; pos < total;) {
                x = x * 1103515245u + 12345u;
                size_t n = 1 + (x >> 8) % 300000, shift = (x >> 4) % 4096;
                if (n > total - pos)
                        n = total - pos;
                memcpy(src + shift, want + pos, n);
                assert_int_equal(sparse_append(&w, src + shift, n, &e), 0);
                assert_int_equal(w.direct, direct);
                pos += n;
        }
        assert_int_equal(sparse_finish(&w, &e), 0);
        sparse_done(&w);
        uint8_t *got = NULL; /* aligned: the fd may still have O_DIRECT */
        assert_int_equal(posix_memalign((void **)&got, 4096, total), 0);
        assert_int_equal(pread(fd, got, total, 0), (ssize_t)total);
        assert_memory_equal(got, want, total);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true((uint64_t)st.st_blocks * 512 < total * 3 / 4); /* holes where the zeros were */
        free(got);
        free(want);
        free(src);
        close(fd);
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zero_detection),
                cmocka_unit_test(test_sparse_writer),
                cmocka_unit_test(test_sparse_writer_direct),
                cmocka_unit_test(test_sparse_writer_odd_buffers)
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
