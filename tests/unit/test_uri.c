/* Unit tests of uri.c (characters, file paths, allowed directories, redaction) and of the
 * confined open of file:// sources, with openat2 and with the path walk that replaces it where
 * a seccomp filter hides openat2: both must give the same answer for every case. */
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

#include "fetch.h"
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

/* ---- confined opens ---- */

static char base[] = "/tmp/hvwg-test-uri-XXXXXX";
static char outside[600];

static void mk(const char *rel, const char *content) {
        char p[700];
        snprintf(p, sizeof(p), "%s/%s", base, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
}

static void ln(const char *target, const char *rel) {
        char p[700];
        snprintf(p, sizeof(p), "%s/%s", base, rel);
        assert_int_equal(symlink(target, p), 0);
}

/* Opens rel both ways; both must agree. Returns what the file holds ("" for errors) or -errno. */
static int both(int dfd, const char *rel, char *content, size_t len) {
        int r[2];
        for (int k = 0; k < 2; k++) {
                int fd = fetch_open_beneath(dfd, rel, k == 0);
                r[k] = fd;
                if (fd >= 0) {
                        ssize_t n = read(fd, content, len - 1);
                        content[n > 0 ? n : 0] = 0;
                        close(fd);
                        r[k] = 0;
                }
        }
        if (r[0] != r[1])
                fail_msg("%s: openat2 gives %d, the walk %d", rel, r[0], r[1]);
        return r[0];
}

static void test_open_beneath(void **s) {
        (void)s;
        assert_non_null(mkdtemp(base));
        snprintf(outside, sizeof(outside), "%s.outside", base);
        int fo = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fo >= 0);
        close(fo);
        char p[700];
        snprintf(p, sizeof(p), "%s/sub", base);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/sub/deeper", base);
        assert_int_equal(mkdir(p, 0755), 0);
        mk("a.gz", "A");
        mk("sub/b.gz", "B");
        mk("sub/deeper/c.gz", "C");
        ln("a.gz", "rel-link");
        ln("../a.gz", "sub/up-link");
        ln("deeper", "sub/dir-link");
        ln(outside, "abs-link");
        ln("../hvwg-outside", "escape-link");
        ln("loop2", "loop1");
        ln("loop1", "loop2");
        snprintf(p, sizeof(p), "%s/fifo", base);
        assert_int_equal(mkfifo(p, 0644), 0);
        int dfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        char c[16];
        assert_int_equal(both(dfd, "a.gz", c, sizeof(c)), 0);
        assert_string_equal(c, "A");
        assert_int_equal(both(dfd, "sub/../a.gz", c, sizeof(c)), 0);
        assert_string_equal(c, "A");
        assert_int_equal(both(dfd, "./sub//deeper/c.gz", c, sizeof(c)), 0);
        assert_string_equal(c, "C");
        assert_int_equal(both(dfd, "rel-link", c, sizeof(c)), 0);
        assert_string_equal(c, "A");
        assert_int_equal(both(dfd, "sub/up-link", c, sizeof(c)), 0);
        assert_string_equal(c, "A");
        assert_int_equal(both(dfd, "sub/dir-link/c.gz", c, sizeof(c)), 0);
        assert_string_equal(c, "C");
        assert_int_equal(both(dfd, "../x", c, sizeof(c)), -EXDEV);
        assert_int_equal(both(dfd, "sub/../../x", c, sizeof(c)), -EXDEV);
        assert_int_equal(both(dfd, "abs-link", c, sizeof(c)), -EXDEV);
        assert_int_equal(both(dfd, "escape-link", c, sizeof(c)), -EXDEV);
        assert_int_equal(both(dfd, "loop1", c, sizeof(c)), -ELOOP);
        assert_int_equal(both(dfd, "missing", c, sizeof(c)), -ENOENT);
        assert_int_equal(both(dfd, "a.gz/x", c, sizeof(c)), -ENOTDIR);
        /* a FIFO opens at once (non-blocking); the caller then refuses it as not a regular file */
        for (int k = 0; k < 2; k++) {
                int fd = fetch_open_beneath(dfd, "fifo", k == 0);
                assert_true(fd >= 0);
                struct stat st;
                assert_int_equal(fstat(fd, &st), 0);
                assert_true(S_ISFIFO(st.st_mode));
                close(fd);
        }
        close(dfd);
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", base, outside);
        assert_int_equal(system(cmd), 0);
}

/* fetch_open_file: the whole check as the source thread runs it. */
static void test_open_file(void **s) {
        (void)s;
        char dir[] = "/tmp/hvwg-test-uri2-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct hv_conf c;
        hv_conf_defaults(&c);
        snprintf(c.allowed_source_dirs[0], sizeof(c.allowed_source_dirs[0]), "%s", dir);
        c.n_allowed_source_dirs = 1;
        char p[700], uri[800];
        snprintf(p, sizeof(p), "%s/fifo", dir);
        assert_int_equal(mkfifo(p, 0644), 0);
        struct hv_error e = { 0 };
        snprintf(uri, sizeof(uri), "file://%s", p);
        assert_true(fetch_open_file(uri, &c, &e) < 0); /* returns at once: no writer needed */
        assert_int_equal(e.kind, HV_E_FETCH_FAILED);
        assert_non_null(strstr(e.msg, "not a regular file"));
        snprintf(p, sizeof(p), "%s/ok.gz", dir);
        int fd = open(p, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        close(fd);
        snprintf(uri, sizeof(uri), "file://%s", p);
        memset(&e, 0, sizeof(e));
        fd = fetch_open_file(uri, &c, &e);
        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        close(fd);
        memset(&e, 0, sizeof(e));
        assert_true(fetch_open_file("file:///etc/passwd", &c, &e) < 0);
        assert_int_equal(e.kind, HV_E_SOURCE_NOT_ALLOWED);
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_chars),       cmocka_unit_test(test_file_path), cmocka_unit_test(test_allowed_dir),
                cmocka_unit_test(test_redact),      cmocka_unit_test(test_open_beneath), cmocka_unit_test(test_open_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
