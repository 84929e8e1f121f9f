/* Unit tests of contents.c: os-release quoting, fstab fields, kernel command lines, units and
 * their ordering after /scratch, every lint finding, and the stored form back and forth. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "contents.h"

#define S(x) x, strlen(x)

static bool has(const struct ct_finding *f, unsigned n, const char *code) {
        for (unsigned i = 0; i < n; i++)
                if (strcmp(f[i].code, code) == 0)
                        return true;
        return false;
}

static void test_parsers(void **state) {
        (void)state;
        struct contents c = { 0 };
        contents_parse_os_release(&c, S("# comment\nNAME=\"X\"\nID=rocky\nVERSION_ID='9.3'\nPRETTY_NAME=\"Rocky \\\"Blue\\\" 9\" # tail\n"));
        assert_string_equal(c.os_id, "rocky");
        assert_string_equal(c.os_version_id, "9.3");
        assert_string_equal(c.os_pretty_name, "Rocky \"Blue\" 9");
        char nul[] = "ID=a\0b\nVERSION_ID=1\n";
        struct contents d = { 0 };
        contents_parse_os_release(&d, nul, sizeof(nul) - 1);
        assert_string_equal(d.os_id, "a"); /* a NUL ends the value, the next line still counts */
        assert_string_equal(d.os_version_id, "1");
        struct contents u = { 0 };
        contents_parse_os_release(&u, S("PRETTY_NAME=\"ok \xc3\xa9 bad \xff\x7f \xe2\x82\"\nID=\xc0\xaf\n"));
        contents_sanitize(&u);
        assert_string_equal(u.os_pretty_name, "ok \xc3\xa9 bad ?  ??"); /* é kept; 0xff, DEL, a cut sequence, an overlong '/' replaced */
        assert_string_equal(u.os_id, "??");
        contents_parse_fstab(&c, S("  # x\nUUID=1 / ext4 defaults 0 1\n\nLABEL=scratch\t/scratch ext4 nofail,noatime 0 2\nonlyone\n"));
        assert_int_equal(c.n_fstab, 2);
        assert_string_equal(c.fstab[1].file, "/scratch");
        assert_string_equal(c.fstab[1].options, "nofail,noatime");
        char many[8192] = "";
        for (int i = 0; i < 100; i++)
                strcat(many, "/dev/vdb /x ext4 defaults 0 0\n");
        struct contents e = { 0 };
        contents_parse_fstab(&e, many, strlen(many));
        assert_int_equal(e.n_fstab, CT_MAX_FSTAB); /* bounded */
        contents_scan_cmdline(&c, S("menuentry {\n  linux /vmlinuz root=x quiet\n}\n"));
        assert_true(c.cmdline_found && !c.console_serial);
        contents_scan_cmdline(&c, S("GRUB_CMDLINE_LINUX=\"console=ttyS0,115200\"\n"));
        assert_true(c.console_serial);
        contents_scan_unit(&c, "a.service", S("[Service]\nExecStart=/bin/x /scratch/y\n"));
        contents_scan_unit(&c, "b.service", S("[Unit]\nRequiresMountsFor=/scratch\n"));
        contents_scan_unit(&c, "c.service", S("[Unit]\n# /scratch in a comment only\n"));
        contents_scan_unit(&c, "d.service", S("[Unit]\nAfter=network.target scratch.mount\n[Service]\nWorkingDirectory=/scratch\n"));
        assert_int_equal(c.n_units, 3);
        assert_false(c.unit_ordered[0]);
        assert_true(c.unit_ordered[1] && c.unit_ordered[2]);
}

static void test_lint(void **state) {
        (void)state;
        struct ct_finding f[CT_MAX_FINDINGS];
        struct contents c = { .scanned = true };
        unsigned n = contents_lint(&c, f);
        assert_true(has(f, n, "root-not-found") && has(f, n, "no-kernel") && has(f, n, "no-bootloader"));
        assert_int_equal(f[0].level, CT_ERROR); /* errors first */
        c = (struct contents){ .scanned = true, .root = 1, .n_kernels = 1, .bootloader = "grub", .cmdline_found = true,
                               .console_serial = true, .fstab_found = true, .has_swap_partition = true };
        snprintf(c.kernels[0].version, sizeof(c.kernels[0].version), "6.1");
        c.kernels[0].initramfs = true;
        contents_parse_fstab(&c, S("LABEL=scratch /scratch ext4 nofail 0 2\n/dev/vdb2 none swap sw 0 0\n"));
        n = contents_lint(&c, f);
        for (unsigned i = 0; i < n; i++)
                assert_int_equal(f[i].level, CT_NOTE); /* a good image: notes only */
        char text[128];
        contents_scratch(&c, text, sizeof(text));
        assert_string_equal(text, "LABEL=scratch on /scratch (ext4, nofail)");
        struct contents bad = c;
        bad.n_fstab = 0;
        contents_parse_fstab(&bad, S("/dev/sda1 / ext4 defaults 0 1\n/dev/hdb1 /data ext4 defaults 0 2\n"));
        bad.console_serial = false;
        bad.kernels[0].initramfs = false;
        contents_scan_unit(&bad, "job.service", S("ExecStart=/x /scratch\n"));
        n = contents_lint(&bad, f);
        const char *want[] = { "fstab-device-name", "no-scratch-entry", "no-serial-console", "unit-scratch-order", "no-initramfs",
                               "swap-not-in-fstab" };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                if (!has(f, n, want[i]))
                        fail_msg("missing %s", want[i]);
        struct contents nofail = c;
        snprintf(nofail.fstab[0].options, sizeof(nofail.fstab[0].options), "defaults");
        n = contents_lint(&nofail, f);
        assert_true(has(f, n, "scratch-without-nofail"));
        struct contents none = { 0 };
        n = contents_lint(&none, f);
        assert_true(n == 1 && has(f, n, "not-scanned"));
}

static void test_stored(void **state) {
        (void)state;
        struct contents c = { .scanned = true, .root = 2, .os_id = "debian", .os_pretty_name = "Debian \"x\" \x01 é", .n_parts = 1 };
        contents_parse_fstab(&c, S("LABEL=scratch /scratch ext4 nofail 0 2\n"));
        contents_scan_unit(&c, "u.service", S("RequiresMountsFor=/scratch\n"));
        c.parts[0].number = 3;
        snprintf(c.parts[0].note, sizeof(c.parts[0].note), "cannot be read");
        contents_sanitize(&c); /* as contents_scan leaves it: the \x01 a space */
        assert_string_equal(c.os_pretty_name, "Debian \"x\"   é");
        char *json = contents_to_json(&c);
        assert_non_null(json);
        assert_null(strchr(json, '\n'));
        struct contents b;
        assert_int_equal(contents_from_json(&b, json, strlen(json)), 0);
        char *again = contents_to_json(&b);
        assert_string_equal(json, again);
        free(again);
        free(json);
        const char *bad[] = { "", "[]", "{\"scanned\": 1}", "{\"scanned\":true,\"root\":-1}", NULL };
        for (size_t i = 0; bad[i]; i++)
                assert_int_equal(contents_from_json(&b, bad[i], strlen(bad[i])), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parsers),
                cmocka_unit_test(test_lint),
                cmocka_unit_test(test_stored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
