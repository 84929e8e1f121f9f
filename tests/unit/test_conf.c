/* Unit tests of the configuration parser and loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"

static unsigned warnings;
static char last_warning[512];

static void warn(const char *file, unsigned line, const char *msg, void *ud) {
        (void)ud;
        warnings++;
        snprintf(last_warning, sizeof(last_warning), "%s:%u: %s", file, line, msg);
}

static int parse(struct hv_conf *c, const char *text, struct hv_error *e) {
        memset(e, 0, sizeof(*e));
        return hv_conf_parse(c, text, strlen(text), "test.conf", warn, NULL, e);
}

static void test_defaults(void **state) {
        (void)state;
        struct hv_conf c;
        hv_conf_defaults(&c);
        assert_string_equal(c.image_root, "/var/lib/hvwgd/images");
        assert_string_equal(c.machine_root, "/var/lib/hvwgd/machines");
        assert_int_equal(c.max_image_size, 64ULL << 30);
        assert_int_equal(c.n_allowed_source_dirs, 0);
        assert_int_equal(c.scratch_per_core_gib, 20);
        assert_int_equal(c.memory_per_core_mib, 2048);
        assert_string_equal(c.scratch_filesystem, "ext4");
        assert_string_equal(c.hypervisor, "auto");
        assert_int_equal(c.max_concurrent, 2);
        assert_int_equal(c.connect_timeout_sec, 30);
}

static void test_valid_file(void **state) {
        (void)state;
        struct hv_conf c;
        struct hv_error e;
        hv_conf_defaults(&c);
        warnings = 0;
        assert_int_equal(parse(&c,
                               "# comment\n; another\n\n[Storage]\nImageRoot = /srv/img \nMachineRoot=/srv/m\nMaxImageSize=512M\n"
                               "AllowedSourceDirs=/a /b\t/c\n[Machine]\nScratchPerCoreGiB=10\nMemoryPerCoreMiB=4096\n"
                               "ScratchFilesystem=ext3\nHypervisor=kvm\nLibvirtURI=qemu:///system\nNetwork=default\n"
                               "ScratchDevices=/dev/sdb /dev/disk/by-partlabel/hvwg-*\nScratchAllocation=fallocate\n"
                               "ScratchBytesPerInode=1M\nMaxScratchSize=10T\n"
                               "[Fetch]\nMaxConcurrent=4\nConnectTimeoutSec=5\nInflate=zlib\n",
                               &e),
                         0);
        assert_int_equal(warnings, 0);
        assert_string_equal(c.image_root, "/srv/img");
        assert_string_equal(c.machine_root, "/srv/m");
        assert_int_equal(c.max_image_size, 512ULL << 20);
        assert_int_equal(c.n_allowed_source_dirs, 3);
        assert_string_equal(c.allowed_source_dirs[2], "/c");
        assert_int_equal(c.scratch_per_core_gib, 10);
        assert_int_equal(c.memory_per_core_mib, 4096);
        assert_string_equal(c.scratch_filesystem, "ext3");
        assert_string_equal(c.hypervisor, "kvm");
        assert_string_equal(c.libvirt_uri, "qemu:///system");
        assert_string_equal(c.network, "default");
        assert_int_equal(c.n_scratch_devices, 2);
        assert_string_equal(c.scratch_devices[1], "/dev/disk/by-partlabel/hvwg-*");
        assert_string_equal(c.scratch_allocation, "fallocate");
        assert_int_equal(c.scratch_bytes_per_inode, 1 << 20);
        assert_int_equal(c.max_scratch_size, 10ULL << 40);
        assert_int_equal(c.max_concurrent, 4);
        assert_int_equal(c.connect_timeout_sec, 5);
        assert_string_equal(c.inflate, "zlib");
}

static void test_unknown_key_warns(void **state) {
        (void)state;
        struct hv_conf c;
        struct hv_error e;
        hv_conf_defaults(&c);
        warnings = 0;
        assert_int_equal(parse(&c, "[Storage]\nImageRot=/x\n", &e), 0);
        assert_int_equal(warnings, 1);
        assert_non_null(strstr(last_warning, "test.conf:2"));
        assert_non_null(strstr(last_warning, "ImageRot"));
        assert_string_equal(c.image_root, "/var/lib/hvwgd/images");
}

static void expect_error(const char *text, const char *where, const char *what) {
        struct hv_conf c;
        struct hv_error e;
        hv_conf_defaults(&c);
        assert_true(parse(&c, text, &e) < 0);
        if (!strstr(e.msg, where) || (what && !strstr(e.msg, what)))
                fail_msg("error \"%s\" does not contain \"%s\" / \"%s\"", e.msg, where, what ? what : "");
}

static void test_malformed(void **state) {
        (void)state;
        expect_error("[Storage]\nthis is not a key value\n", "test.conf:2:", "KEY=VALUE");
        expect_error("\n\n[Nope]\n", "test.conf:3:", "unknown section [Nope]");
        expect_error("[Storage\n", "test.conf:1:", "section");
        expect_error("ImageRoot=/x\n", "test.conf:1:", "outside");
        expect_error("[Storage]\nMaxImageSize=12Q\n", "test.conf:2:", "MaxImageSize");
        expect_error("[Storage]\nMaxImageSize=-5\n", "test.conf:2:", "size");
        expect_error("[Storage]\nMaxImageSize=\n", "test.conf:2:", "size");
        expect_error("[Storage]\nImageRoot=relative/path\n", "test.conf:2:", "absolute");
        expect_error("[Storage]\nAllowedSourceDirs=/ok relative\n", "test.conf:2:", "absolute");
        expect_error("[Machine]\nHypervisor=vmware\n", "test.conf:2:", "auto, kvm, qemu or xen");
        expect_error("[Machine]\nScratchFilesystem=xfs\n", "test.conf:2:", "ext4");
        expect_error("[Machine]\nMemoryPerCoreMiB=0\n", "test.conf:2:", "at least 1");
        expect_error("[Machine]\nScratchPerCoreGiB=ten\n", "test.conf:2:", "whole number");
        expect_error("[Machine]\nNetwork=../x\n", "test.conf:2:", "network");
        expect_error("[Fetch]\nMaxConcurrent=0\n", "test.conf:2:", "MaxConcurrent");
        expect_error("[Machine]\nScratchDevices=/dev/sdb loop0\n", "test.conf:2:", "absolute");
        expect_error("[Machine]\nScratchAllocation=lazy\n", "test.conf:2:", "sparse or fallocate");
        expect_error("[Machine]\nScratchBytesPerInode=1K\n", "test.conf:2:", "ScratchBytesPerInode");
        expect_error("[Machine]\nMaxScratchSize=0\n", "test.conf:2:", "MaxScratchSize");
        expect_error("[Fetch]\nMaxConcurrent=99999999999999999999\n", "test.conf:2:", "MaxConcurrent");
        expect_error("[Fetch]\nInflate=lz4\n", "test.conf:2:", "isal or zlib");
        expect_error("[Fetch]\n=5\n", "test.conf:2:", "empty key");
}

static void test_sizes(void **state) {
        (void)state;
        struct { const char *s; uint64_t v; } ok[] = {
                { "0", 0 }, { "4096", 4096 }, { "1K", 1024 }, { "1k", 1024 }, { "3M", 3ULL << 20 }, { "64G", 64ULL << 30 },
                { "2T", 2ULL << 40 }, { "5GiB", 5ULL << 30 }, { "7B", 7 }, { "16383T", 16383ULL << 40 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                uint64_t v;
                assert_int_equal(hv_parse_size(ok[i].s, &v), 0);
                assert_int_equal(v, ok[i].v);
        }
        const char *bad[] = { "", "G", "1.5G", "-1", "1 G", "1GB ", "1X", "99999999999999999999", "20000000T", "1Gi", NULL };
        for (size_t i = 0; bad[i]; i++) {
                uint64_t v;
                if (hv_parse_size(bad[i], &v) >= 0)
                        fail_msg("size \"%s\" was accepted", bad[i]);
        }
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void test_dropins_in_order(void **state) {
        (void)state;
        char dir[] = "/tmp/hvwg-conf-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char main_path[256], d[300], p[400];
        snprintf(main_path, sizeof(main_path), "%s/hvwgd.conf", dir);
        snprintf(d, sizeof(d), "%s.d", main_path);
        write_file(main_path, "[Storage]\nImageRoot=/main\nMachineRoot=/main-m\n[Fetch]\nMaxConcurrent=3\n");
        assert_int_equal(mkdir(d, 0755), 0);
        snprintf(p, sizeof(p), "%s/20-b.conf", d);
        write_file(p, "[Storage]\nImageRoot=/from-20\n");
        snprintf(p, sizeof(p), "%s/10-a.conf", d);
        write_file(p, "[Storage]\nImageRoot=/from-10\nMaxImageSize=1G\n");
        snprintf(p, sizeof(p), "%s/30-ignored.txt", d);
        write_file(p, "garbage that would not parse\n");
        struct hv_conf c;
        struct hv_error e = { 0 };
        hv_conf_defaults(&c);
        assert_int_equal(hv_conf_load(&c, main_path, true, warn, NULL, &e), 0);
        assert_string_equal(c.image_root, "/from-20"); /* 20 after 10: later wins */
        assert_string_equal(c.machine_root, "/main-m");
        assert_int_equal(c.max_image_size, 1ULL << 30);
        assert_int_equal(c.max_concurrent, 3);
        /* an error in a drop-in names the drop-in and the line */
        snprintf(p, sizeof(p), "%s/40-bad.conf", d);
        write_file(p, "[Fetch]\n\nMaxConcurrent=lots\n");
        hv_conf_defaults(&c);
        memset(&e, 0, sizeof(e));
        assert_true(hv_conf_load(&c, main_path, true, warn, NULL, &e) < 0);
        assert_non_null(strstr(e.msg, "40-bad.conf:3:"));
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

/* The bounds against hostile sources and callers, and the defaults derived from other keys. */
static void test_bounds(void **state) {
        (void)state;
        struct hv_conf c;
        struct hv_error e;
        hv_conf_defaults(&c);
        assert_int_equal(hv_conf_running_per_user(&c), 1);      /* MaxConcurrent 2 - 1 */
        assert_int_equal(hv_conf_max_download(&c), (64ULL << 30) + (1ULL << 30) + (1ULL << 20));
        assert_int_equal(c.max_queued_jobs, 256);
        assert_int_equal(c.low_speed_limit, 10240);
        assert_false(c.allow_loopback_redirects);
        assert_int_equal(parse(&c, "[Fetch]\nMaxConcurrent=8\nLowSpeedLimit=0\nMaxDownloadSize=1G\nAllowLoopbackRedirects=yes\n"
                                   "MaxQueuedJobs=3\nMaxDownloadTimeSec=3600\n", &e), 0);
        assert_int_equal(hv_conf_running_per_user(&c), 7);
        assert_int_equal(hv_conf_max_download(&c), 1ULL << 30);
        assert_int_equal(c.low_speed_limit, 0);
        assert_true(c.allow_loopback_redirects);
        assert_int_equal(c.max_queued_jobs, 3);
        assert_int_equal(parse(&c, "[Fetch]\nRunningJobsPerUser=2\n", &e), 0);
        assert_int_equal(hv_conf_running_per_user(&c), 2);
        assert_true(parse(&c, "[Fetch]\nAllowLoopbackRedirects=maybe\n", &e) < 0);
        assert_non_null(strstr(e.msg, "test.conf:2: AllowLoopbackRedirects=maybe: expected yes or no"));
        assert_true(parse(&c, "[Fetch]\nMaxQueuedJobs=0\n", &e) < 0);
        assert_true(parse(&c, "[Fetch]\nLowSpeedLimit=fast\n", &e) < 0);
        /* speculative decoding: auto with 4 threads or more, never on one */
        assert_string_equal(c.inflate_speculate, "auto");
        assert_false(hv_conf_inflate_speculate(&c, 2));
        assert_true(hv_conf_inflate_speculate(&c, 4));
        assert_int_equal(parse(&c, "[Fetch]\nInflateSpeculate=yes\n", &e), 0);
        assert_true(hv_conf_inflate_speculate(&c, 2));
        assert_false(hv_conf_inflate_speculate(&c, 1));
        assert_int_equal(parse(&c, "[Fetch]\nInflateSpeculate=no\n", &e), 0);
        assert_false(hv_conf_inflate_speculate(&c, 8));
        assert_true(parse(&c, "[Fetch]\nInflateSpeculate=sometimes\n", &e) < 0);
        assert_non_null(strstr(e.msg, "expected auto, yes or no"));
}

static void test_reload_apply(void **state) {
        (void)state;
        struct hv_conf live, next;
        hv_conf_defaults(&live);
        hv_conf_defaults(&next);
        char kept[256];
        hv_conf_apply_reload(&live, &next, kept, sizeof(kept));
        assert_string_equal(kept, "");
        strcpy(next.image_root, "/elsewhere");
        strcpy(next.libvirt_uri, "qemu:///session");
        next.jobs_per_user = 3;
        next.max_image_size = 1 << 30;
        hv_conf_apply_reload(&live, &next, kept, sizeof(kept));
        assert_string_equal(kept, "ImageRoot, LibvirtURI");
        assert_string_equal(live.image_root, "/var/lib/hvwgd/images");
        assert_string_equal(live.libvirt_uri, "");
        assert_int_equal(live.jobs_per_user, 3);
        assert_int_equal(live.max_image_size, 1 << 30);
        struct hv_conf_snap *s1 = hv_conf_snap_new(&live);
        assert_non_null(hv_conf_snap_ref(s1));
        hv_conf_snap_unref(s1);
        assert_int_equal(s1->c.jobs_per_user, 3); /* still held once */
        hv_conf_snap_unref(s1);
}

static void test_missing_file(void **state) {
        (void)state;
        struct hv_conf c;
        struct hv_error e = { 0 };
        hv_conf_defaults(&c);
        assert_int_equal(hv_conf_load(&c, "/nonexistent/hvwgd.conf", false, warn, NULL, &e), 0);
        assert_true(hv_conf_load(&c, "/nonexistent/hvwgd.conf", true, warn, NULL, &e) < 0);
        assert_non_null(strstr(e.msg, "/nonexistent/hvwgd.conf"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),       cmocka_unit_test(test_valid_file),
                cmocka_unit_test(test_unknown_key_warns), cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_sizes),          cmocka_unit_test(test_dropins_in_order),
                cmocka_unit_test(test_missing_file),   cmocka_unit_test(test_bounds),
                cmocka_unit_test(test_reload_apply),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
