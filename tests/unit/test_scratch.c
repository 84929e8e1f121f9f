/* Unit tests of scratch formatting from several threads at once (libext2fs is not
 * thread-safe; scratch.c serialises it), each result checked with e2fsck -fn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"

struct worker {
        char path[64];
        char uuid[37];
        int r;
        struct hv_error e;
};

static void *format_one(void *arg) {
        struct worker *w = arg;
        struct scratch_opts o = { .fs = "ext4", .bytes_per_inode = 65536 };
        w->r = scratch_create(w->path, 2ULL << 30, &o, w->uuid, &w->e);
        return NULL;
}

static void test_concurrent(void **s) {
        (void)s;
        char dir[] = "/tmp/hvwg-scratch-unit-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct worker w[6];
        pthread_t t[6];
        memset(w, 0, sizeof(w));
        for (int i = 0; i < 6; i++) {
                snprintf(w[i].path, sizeof(w[i].path), "%s/s%d.img", dir, i);
                assert_int_equal(pthread_create(&t[i], NULL, format_one, &w[i]), 0);
        }
        for (int i = 0; i < 6; i++)
                pthread_join(t[i], NULL);
        for (int i = 0; i < 6; i++) {
                if (w[i].r < 0)
                        fail_msg("%s: %s", w[i].path, w[i].e.msg);
                for (int k = 0; k < i; k++)
                        assert_string_not_equal(w[i].uuid, w[k].uuid);
                char cmd[200];
                snprintf(cmd, sizeof(cmd), "e2fsck -fn %s >/dev/null 2>&1", w[i].path);
                assert_int_equal(system(cmd), 0);
                unlink(w[i].path);
        }
        rmdir(dir);
}

static void test_bad_input(void **s) {
        (void)s;
        struct scratch_opts o = { .fs = "ext4", .bytes_per_inode = 65536 };
        char uuid[37];
        struct hv_error e = { 0 };
        assert_true(scratch_create("/nonexistent-dir/x.img", 1ULL << 30, &o, uuid, &e) < 0);
        assert_non_null(strstr(e.msg, "/nonexistent-dir/x.img"));
        memset(&e, 0, sizeof(e));
        o.fs = "ext3";
        assert_true(scratch_format("/dev/null", 17ULL << 40, &o, true, uuid, &e) < 0);
        assert_non_null(strstr(e.msg, "16 TiB"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_concurrent),
                cmocka_unit_test(test_bad_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
