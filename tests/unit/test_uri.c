/* Unit tests of uri.c: characters, file paths, allowed directories, redaction. */
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

#include "uri.h"

static void test_chars(void **s) {
        (void)s;
        struct hv_error e = { 0 };
        assert_int_equal(uri_check_chars("http://h/a%20b", false, &e), 0);
        static const char *const bad[] = {
                "http://h/a\nb", "http://h/a\rb", "http://h/\x7f", "http://h/a%0ab", "http://h/a%0Ab", "http://h/a%7f",
                "http://h/a%00", "http://h/a%1", "http://h/a%zz", "file:///x/y\ntable=mbr", "file:///x/%0apartition=9",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                memset(&e, 0, sizeof(e));
                if (uri_check_chars(bad[i], true, &e) >= 0)
                        fail_msg("accepted %s", bad[i]);
                assert_int_equal(e.kind, HV_E_INVALID_ARGS);
        }
        memset(&e, 0, sizeof(e));
        assert_true(uri_check_chars("http://h/a b", false, &e) < 0);
        assert_non_null(strstr(e.msg, "space"));
        memset(&e, 0, sizeof(e));
        assert_int_equal(uri_check_chars("file:///x/a b", true, &e), 0);
        enum uri_scheme sc;
        memset(&e, 0, sizeof(e));
        assert_true(uri_scheme("ftp://h/x", &sc, &e) < 0);
        assert_non_null(strstr(e.msg, "unsupported source"));
        memset(&e, 0, sizeof(e));
        assert_true(uri_scheme("ftp://u:secret@h/x", &sc, &e) < 0);
        assert_null(strstr(e.msg, "secret"));
        memset(&e, 0, sizeof(e));
        assert_int_equal(uri_scheme("https://h/x", &sc, &e), 0);
        assert_int_equal(sc, URI_HTTPS);
}

static void test_file_path(void **s) {
        (void)s;
        char p[64];
        assert_int_equal(uri_file_path("file:///a/b%20c", p, sizeof(p)), 0);
        assert_string_equal(p, "/a/b c");
        assert_int_equal(uri_file_path("file://localhost/a", p, sizeof(p)), 0);
        assert_string_equal(p, "/a");
        assert_int_equal(uri_file_path("file://host/a", p, sizeof(p)), -EINVAL);
        assert_int_equal(uri_file_path("file:///a?x", p, sizeof(p)), -EINVAL);
        assert_int_equal(uri_file_path("file:///a%0a", p, sizeof(p)), -EINVAL);
        assert_int_equal(uri_file_path("file:///a%00", p, sizeof(p)), -EINVAL);
        assert_int_equal(uri_file_path("file:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", p, sizeof(p)),
                         -ENAMETOOLONG);
}

static void test_allowed_dir(void **s) {
        (void)s;
        char dirs[3][512] = { "/srv/img/", "/data", "/" };
        const char *rel;
        assert_int_equal(uri_allowed_dir("/srv/img/a.gz", (const char (*)[512])dirs, 2, &rel), 0);
        assert_string_equal(rel, "a.gz");
        assert_int_equal(uri_allowed_dir("/data//x/y", (const char (*)[512])dirs, 2, &rel), 1);
        assert_string_equal(rel, "x/y");
        assert_int_equal(uri_allowed_dir("/database/x", (const char (*)[512])dirs, 2, &rel), -EPERM);
        assert_int_equal(uri_allowed_dir("/data", (const char (*)[512])dirs, 2, &rel), -EPERM);
        assert_int_equal(uri_allowed_dir("/etc/shadow", (const char (*)[512])dirs, 3, &rel), 2);
        assert_string_equal(rel, "etc/shadow");
}

static void redacts(const char *in, const char *want) {
        char out[256];
        uri_redact(in, out, sizeof(out));
        if (strcmp(out, want) != 0)
                fail_msg("redact(%s) = %s, want %s", in, out, want);
        char again[256];
        uri_redact(out, again, sizeof(again));
        assert_string_equal(again, out); /* idempotent: stored forms stay as they are */
}

static void test_redact(void **s) {
        (void)s;
        redacts("http://alice:S3cr3tT0ken@host/x.gz", "http://alice:***@host/x.gz");
        redacts("https://TOKEN@host:8443/x.gz", "https://***@host:8443/x.gz");
        redacts("https://h/x.gz?X-Amz-Signature=abc&X-Amz-Credential=def&flag", "https://h/x.gz?X-Amz-Signature=***&X-Amz-Credential=***&flag");
        redacts("https://h/x.gz#frag", "https://h/x.gz");
        redacts("http://u:p@w@host/a@b", "http://u:***@host/a@b");
        redacts("file:///srv/a.gz", "file:///srv/a.gz");
        redacts("http://h/plain", "http://h/plain");
        /* found by fuzz_uri: no scheme, though "://" follows a query */
        redacts("htihgz?sig=://&t=1#f", "htihgz?sig=***&t=***");
        char small[24];
        uri_redact("http://alice:S3cr3tT0ken@host/very/long/path.gz", small, sizeof(small));
        assert_null(strstr(small, "S3cr3t"));
        assert_true(strlen(small) < sizeof(small));
        assert_non_null(strstr(small, "..."));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chars),       cmocka_unit_test(test_file_path), cmocka_unit_test(test_allowed_dir),
                cmocka_unit_test(test_redact),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
