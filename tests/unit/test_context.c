/* Unit tests of context.c (what CreateMachine's context becomes, without I/O) and of
 * context_iso.c (the ISO written with libisofs, read back by libblkid and isoinfo): names,
 * refusals with their messages, the files in order, meta-data as YAML, context.sh sourced by
 * sh with hostile values that stay inert, the label, modes, temp files on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "context_iso.h"

#define BLOB(s) ((struct context_blob){ (const uint8_t *)(s), strlen(s) })

static void refused(const struct context_input *in, uint64_t max, const char *needle) {
        struct hv_error e = { 0 };
        assert_int_equal(context_check(in, max, &e), -EINVAL);
        assert_int_equal(e.kind, HV_E_INVALID_ARGS);
        if (!strstr(e.msg, needle))
                fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
}

static void test_names(void **s) {
        (void)s;
        static const char *const good[] = { "prolog.sh", "epilog.sh", "context.sh", "a", "x-1_2.3", "setup~" };
        static const char *const bad[] = { "", ".hidden", ".", "..", "a/b", "/etc", "a\\b", "with space", "tab\t", "nl\n",
                                           "user-data", "meta-data", "network-config", "vendor-data", "\x7f", "\xc3\xa9" };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_true(context_file_name_valid(good[i]));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (context_file_name_valid(bad[i]))
                        fail_msg("\"%s\" taken for a valid name", bad[i]);
        char n64[65], n65[66];
        memset(n64, 'a', 64);
        n64[64] = 0;
        memset(n65, 'a', 65);
        n65[65] = 0;
        assert_true(context_file_name_valid(n64));
        assert_false(context_file_name_valid(n65));
}

static void test_refusals(void **s) {
        (void)s;
        struct context_input *in = calloc(1, sizeof(*in));
        in->files[0] = (struct context_pair){ "../etc/passwd", BLOB("x") };
        in->n_files = 1;
        refused(in, 1 << 20, "invalid context file name \"../etc/passwd\"");
        in->files[0] = (struct context_pair){ "prolog.sh", BLOB("x") };
        in->files[1] = (struct context_pair){ "prolog.sh", BLOB("y") };
        in->n_files = 2;
        refused(in, 1 << 20, "context file \"prolog.sh\" is given twice");
        in->files[1] = (struct context_pair){ "context.sh", BLOB("A=1") };
        in->vars[0] = (struct context_pair){ "B", BLOB("2") };
        in->n_vars = 1;
        refused(in, 1 << 20, "context.sh is given both in context_files and as context_vars");
        in->n_files = 0;
        in->vars[0] = (struct context_pair){ "lower", BLOB("2") };
        refused(in, 1 << 20, "invalid context_vars key \"lower\"");
        in->vars[0] = (struct context_pair){ "1ABC", BLOB("2") };
        refused(in, 1 << 20, "invalid context_vars key \"1ABC\"");
        in->vars[0] = (struct context_pair){ "A B", BLOB("2") };
        refused(in, 1 << 20, "invalid context_vars key");
        in->n_vars = 0;
        in->meta[0] = (struct context_pair){ "key: injected", BLOB("v") };
        in->n_meta = 1;
        refused(in, 1 << 20, "invalid meta_data key");
        in->meta[0] = (struct context_pair){ "-dash", BLOB("v") };
        refused(in, 1 << 20, "invalid meta_data key");
        in->n_meta = 0;
        /* size: the total, named with its parts */
        static uint8_t big[5000];
        in->have_user_data = true;
        in->user_data = (struct context_blob){ big, sizeof(big) };
        refused(in, 4096, "the context is too large: 5000 bytes (user_data 5000");
        refused(in, 4096, "MaxContextSize=4096");
        struct hv_error e = { 0 };
        assert_int_equal(context_check(in, 5000, &e), 0);
        free(in);
}

static char *file_text(const struct context_files *cf, const char *name) {
        for (size_t i = 0; i < cf->n; i++)
                if (strcmp(cf->f[i].name, name) == 0)
                        return strndup((const char *)cf->f[i].data, cf->f[i].len);
        return NULL;
}

static void test_build(void **s) {
        (void)s;
        struct context_input *in = calloc(1, sizeof(*in));
        struct context_files cf;
        /* nothing given but a variable: user-data is still there (NoCloud needs it) */
        in->vars[0] = (struct context_pair){ "A", BLOB("1") };
        in->n_vars = 1;
        assert_true(context_given(in));
        assert_int_equal(context_build(in, "uuid-1", "vm1", &cf), 0);
        assert_int_equal(cf.n, 3);
        assert_string_equal(cf.f[0].name, "user-data");
        assert_string_equal(cf.f[1].name, "meta-data");
        assert_string_equal(cf.f[2].name, "context.sh");
        char *t = file_text(&cf, "user-data");
        assert_string_equal(t, "#cloud-config\n{}\n");
        free(t);
        t = file_text(&cf, "meta-data");
        assert_string_equal(t, "instance-id: \"uuid-1\"\nlocal-hostname: \"vm1\"\n");
        free(t);
        context_files_free(&cf);
        /* everything: the caller's meta-data keys override ours; values escaped as YAML */
        in->have_user_data = true;
        in->user_data = BLOB("#cloud-config\nruncmd:\n - [ sh, -c, 'echo hi' ]\n");
        in->have_network_config = true;
        in->network_config = BLOB("version: 2\n");
        in->meta[0] = (struct context_pair){ "local-hostname", BLOB("node-7") };
        in->meta[1] = (struct context_pair){ "role", BLOB("a \"quoted\"\nvalue\\") };
        in->n_meta = 2;
        in->files[0] = (struct context_pair){ "prolog.sh", BLOB("echo $A\n") };
        in->files[1] = (struct context_pair){ "empty", { (const uint8_t *)"", 0 } };
        in->n_files = 2;
        assert_int_equal(context_build(in, "uuid-2", "vm2", &cf), 0);
        assert_int_equal(cf.n, 6);
        static const char *const order[] = { "user-data", "meta-data", "network-config", "context.sh", "prolog.sh", "empty" };
        for (size_t i = 0; i < 6; i++)
                assert_string_equal(cf.f[i].name, order[i]);
        t = file_text(&cf, "meta-data");
        assert_string_equal(t, "instance-id: \"uuid-2\"\nlocal-hostname: \"node-7\"\nrole: \"a \\\"quoted\\\"\\x0avalue\\\\\"\n");
        free(t);
        assert_int_equal(cf.f[5].len, 0);
        assert_int_equal(context_files_size(&cf), strlen("#cloud-config\nruncmd:\n - [ sh, -c, 'echo hi' ]\n") + cf.f[1].len + 11 +
                                                          cf.f[3].len + 8);
        context_files_free(&cf);
        free(in);
}

/* context.sh sourced by sh: every value comes back as given, nothing runs. */
static void test_shell_inert(void **s) {
        (void)s;
        static const char *const values[] = { "plain", "it's", "'", "''", "$(touch /tmp/hvwg-ctx-pwned)", "`touch /tmp/hvwg-ctx-pwned`",
                                              "a\nb\nc", "; touch /tmp/hvwg-ctx-pwned", "\\'\\", "$HOME ${PATH}", "" };
        char *buf = NULL;
        size_t used = 0, cap = 0;
        char dir[] = "/tmp/hvwg-ctx-XXXXXX";
        assert_non_null(mkdtemp(dir));
        unlink("/tmp/hvwg-ctx-pwned");
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                char key[16];
                snprintf(key, sizeof(key), "V%zu", i);
                assert_int_equal(context_shell_assign(&buf, &used, &cap, key, values[i]), 0);
        }
        char path[256], cmd[600];
        snprintf(path, sizeof(path), "%s/context.sh", dir);
        FILE *f = fopen(path, "w");
        fwrite(buf, 1, used, f);
        fclose(f);
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                snprintf(cmd, sizeof(cmd), "sh -c '. %s && printf %%s \"$V%zu\"'", path, i);
                FILE *p = popen(cmd, "r");
                char out[256] = "";
                size_t n = fread(out, 1, sizeof(out) - 1, p);
                out[n] = 0;
                assert_int_equal(pclose(p), 0);
                if (strcmp(out, values[i]) != 0)
                        fail_msg("V%zu: \"%s\" came back as \"%s\"", i, values[i], out);
        }
        assert_int_equal(access("/tmp/hvwg-ctx-pwned", F_OK), -1);
        unlink(path);
        rmdir(dir);
        free(buf);
}

static char *iso_file(const char *iso, const char *name, size_t *len) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "isoinfo -R -i %s -x /%s", iso, name);
        FILE *p = popen(cmd, "r");
        char *out = calloc(1, 1 << 20);
        *len = fread(out, 1, (1 << 20) - 1, p);
        pclose(p);
        return out;
}

static void test_iso(void **s) {
        (void)s;
        if (system("command -v isoinfo >/dev/null 2>&1") != 0)
                skip(); /* tools/deps.sh installs genisoimage */
        char dir[] = "/tmp/hvwg-iso-XXXXXX", iso[256];
        assert_non_null(mkdtemp(dir));
        snprintf(iso, sizeof(iso), "%s/context.iso", dir);
        struct context_input *in = calloc(1, sizeof(*in));
        static uint8_t bin[70000];
        for (size_t i = 0; i < sizeof(bin); i++)
                bin[i] = (uint8_t)(i * 7 + 3);
        char longname[65];
        memset(longname, 'n', 64);
        longname[64] = 0;
        in->files[0] = (struct context_pair){ "prolog.sh", BLOB("#!/bin/sh\necho prolog\n") };
        in->files[1] = (struct context_pair){ "payload.bin", { bin, sizeof(bin) } };
        in->files[2] = (struct context_pair){ longname, BLOB("long") };
        in->n_files = 3;
        struct context_files cf;
        assert_int_equal(context_build(in, "11111111-2222-4333-8444-555555555555", "vm", &cf), 0);
        struct hv_error e = { 0 };
        assert_int_equal(context_iso_write(iso, &cf, NULL, &e), 0);
        struct stat st;
        assert_int_equal(stat(iso, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        char tmp[400];
        snprintf(tmp, sizeof(tmp), "%s.tmp", iso);
        assert_int_equal(access(tmp, F_OK), -1);
        /* the label NoCloud and findfs look for, case and all */
        blkid_probe pr = blkid_new_probe_from_filename(iso);
        assert_non_null(pr);
        assert_int_equal(blkid_do_safeprobe(pr), 0);
        const char *v = NULL;
        assert_int_equal(blkid_probe_lookup_value(pr, "TYPE", &v, NULL), 0);
        assert_string_equal(v, "iso9660");
        assert_int_equal(blkid_probe_lookup_value(pr, "LABEL", &v, NULL), 0);
        assert_string_equal(v, "cidata");
        blkid_free_probe(pr);
        /* exactly the files, with their contents (Rock Ridge names) */
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "isoinfo -R -f -i %s | LC_ALL=C sort", iso);
        FILE *p = popen(cmd, "r");
        char listing[1024] = "";
        size_t n = fread(listing, 1, sizeof(listing) - 1, p);
        listing[n] = 0;
        pclose(p);
        char expect[512];
        snprintf(expect, sizeof(expect), "/meta-data\n/%s\n/payload.bin\n/prolog.sh\n/user-data\n", longname);
        assert_string_equal(listing, expect);
        for (size_t i = 0; i < cf.n; i++) {
                size_t len = 0;
                char *got = iso_file(iso, cf.f[i].name, &len);
                if (len != cf.f[i].len || memcmp(got, cf.f[i].data, len) != 0)
                        fail_msg("%s: %zu bytes read back, %zu written, or other bytes", cf.f[i].name, len, cf.f[i].len);
                free(got);
        }
        /* Joliet too (readers without Rock Ridge) */
        snprintf(cmd, sizeof(cmd), "isoinfo -J -f -i %s | grep -c prolog.sh", iso);
        p = popen(cmd, "r");
        assert_int_equal(fgetc(p), '1');
        pclose(p);
        /* canceled: nothing left; a directory that is not there: an error, nothing left */
        atomic_bool abort_now = true;
        char iso2[300];
        snprintf(iso2, sizeof(iso2), "%s/second.iso", dir);
        e = (struct hv_error){ 0 };
        assert_int_equal(context_iso_write(iso2, &cf, &abort_now, &e), -ECANCELED);
        snprintf(tmp, sizeof(tmp), "%s.tmp", iso2);
        assert_int_equal(access(iso2, F_OK), -1);
        assert_int_equal(access(tmp, F_OK), -1);
        e = (struct hv_error){ 0 };
        assert_true(context_iso_write("/nonexistent-dir/x.iso", &cf, NULL, &e) < 0);
        assert_non_null(strstr(e.msg, "cannot create /nonexistent-dir/x.iso.tmp"));
        context_files_free(&cf);
        free(in);
        unlink(iso);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),     cmocka_unit_test(test_refusals), cmocka_unit_test(test_build),
                cmocka_unit_test(test_shell_inert), cmocka_unit_test(test_iso),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
