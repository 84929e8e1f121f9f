/* Unit tests of the block-device scratch checks (libudev + libblkid) on loop devices: blank
 * accepted, foreign filesystem / mounted / partitioned / unknown scratch refused with messages
 * naming what was found, and device selection (smallest that fits, never twice). Needs root and
 * loop devices; skips with the reason otherwise. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scratch.h"

struct loopdev {
        char file[64];
        char dev[64];
};

static int sh(const char *fmt, ...) {
        char cmd[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

static bool loop_attach(struct loopdev *l, unsigned mib) {
        snprintf(l->file, sizeof(l->file), "/var/tmp/hvwg-loop-XXXXXX");
        int fd = mkstemp(l->file);
        if (fd < 0)
                return false;
        if (ftruncate(fd, (off_t)mib << 20) < 0) {
                close(fd);
                return false;
        }
        close(fd);
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "losetup -f --show -P %s 2>/dev/null", l->file);
        FILE *p = popen(cmd, "r");
        if (!p)
                return false;
        bool ok = fgets(l->dev, sizeof(l->dev), p) != NULL;
        pclose(p);
        l->dev[strcspn(l->dev, "\n")] = 0;
        return ok && l->dev[0] == '/';
}

static void loop_detach(struct loopdev *l) {
        sh("umount -q %s 2>/dev/null; losetup -d %s", l->dev, l->dev);
        unlink(l->file);
}

static void expect_refused(const char *dev, const char *const *uuids, size_t n, const char *words) {
        struct hv_error e = { 0 };
        uint64_t size;
        if (scratch_check_device(dev, uuids, n, &size, &e) >= 0)
                fail_msg("%s accepted; expected \"%s\"", dev, words);
        if (!strstr(e.msg, words) || !strstr(e.msg, dev))
                fail_msg("\"%s\" lacks \"%s\" or the device name", e.msg, words);
}

static void test_devices(void **s) {
        (void)s;
        if (geteuid() != 0) {
                printf("SKIP: needs root for loop devices\n");
                skip();
        }
        struct loopdev a;
        if (!loop_attach(&a, 96)) {
                printf("SKIP: cannot attach a loop device here\n");
                skip();
        }
        struct hv_error e = { 0 };
        uint64_t size = 0;
        /* blank: accepted */
        assert_int_equal(scratch_check_device(a.dev, NULL, 0, &size, &e), 0);
        assert_int_equal(size, 96ULL << 20);
        /* formatted by us: accepted only with its UUID on record */
        struct scratch_opts o = { .fs = "ext4", .bytes_per_inode = 65536 };
        char uuid[37];
        if (scratch_format(a.dev, size, &o, false, uuid, &e) < 0)
                fail_msg("%s", e.msg);
        assert_int_equal(sh("e2fsck -fn %s >/dev/null 2>&1", a.dev), 0);
        const char *mine[] = { "00000000-0000-4000-8000-000000000000", uuid };
        memset(&e, 0, sizeof(e));
        assert_int_equal(scratch_check_device(a.dev, mine, 2, &size, &e), 0);
        expect_refused(a.dev, mine, 1, "no record");
        /* mounted */
        assert_int_equal(sh("mkdir -p /var/tmp/hvwg-loop-mnt && mount %s /var/tmp/hvwg-loop-mnt", a.dev), 0);
        expect_refused(a.dev, mine, 2, "mounted on /var/tmp/hvwg-loop-mnt");
        assert_int_equal(sh("umount /var/tmp/hvwg-loop-mnt"), 0);
        /* a foreign filesystem */
        assert_int_equal(sh("mkfs.ext4 -q -F -L data %s >/dev/null 2>&1", a.dev), 0);
        expect_refused(a.dev, mine, 2, "label \"data\"");
        assert_int_equal(sh("wipefs -aq %s && mkswap -q %s >/dev/null", a.dev, a.dev), 0);
        expect_refused(a.dev, NULL, 0, "type swap");
        /* partitions */
        assert_int_equal(sh("wipefs -aq %s && printf 'label: dos\\nstart=2048, size=10M\\n' | sfdisk -q %s >/dev/null 2>&1; "
                            "partx -a %s 2>/dev/null; true", a.dev, a.dev, a.dev), 0);
        expect_refused(a.dev, NULL, 0, "partition");
        /* not block devices */
        expect_refused("/dev/null", NULL, 0, "not a block device");
        expect_refused(a.file, NULL, 0, "not a block device");

        /* selection: smallest that fits, each device once */
        struct loopdev b, c;
        assert_true(loop_attach(&b, 64));
        assert_true(loop_attach(&c, 128));
        const char *pats[] = { b.dev, c.dev, a.dev /* partitioned: never chosen */ };
        char got[64], got2[64], got3[64];
        memset(&e, 0, sizeof(e));
        assert_int_equal(scratch_claim_device(pats, 3, 60ULL << 20, NULL, 0, got, sizeof(got), &e), 0);
        assert_string_equal(got, b.dev);
        assert_int_equal(scratch_claim_device(pats, 3, 60ULL << 20, NULL, 0, got2, sizeof(got2), &e), 0);
        assert_string_equal(got2, c.dev);
        memset(&e, 0, sizeof(e));
        assert_true(scratch_claim_device(pats, 3, 60ULL << 20, NULL, 0, got3, sizeof(got3), &e) < 0);
        assert_int_equal(e.kind, HV_E_NO_SPACE);
        scratch_release_device(got);
        memset(&e, 0, sizeof(e));
        assert_int_equal(scratch_claim_device(pats, 3, 60ULL << 20, NULL, 0, got3, sizeof(got3), &e), 0);
        assert_string_equal(got3, b.dev);
        memset(&e, 0, sizeof(e));
        assert_true(scratch_claim_device(pats, 3, 1ULL << 30, NULL, 0, got3, sizeof(got3), &e) < 0);
        assert_non_null(strstr(e.msg, "no free scratch device"));
        scratch_release_device(b.dev);
        scratch_release_device(c.dev);
        loop_detach(&a);
        loop_detach(&b);
        loop_detach(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_devices) };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
