/* Unit tests of fetch.c's parts without a transfer: the URI check FetchImage runs on the loop,
 * the image name a source implies, and the confined open of file:// sources, with openat2 and
 * with the path walk that replaces it where a seccomp filter hides openat2: both must give the
 * same answer for every case. */
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

static void test_derive_name(void **s) {
        (void)s;
        static const char *const cases[][2] = {
                { "http://h/sl7.img.gz", "sl7" },         { "https://h/a/b/debian-12.raw.gz", "debian-12" },
                { "file:///x/y/img.gz", "img" },           { "http://h/x.raw", "x" },
                { "http://h/x.img.raw", "x.img" },        /* one of .raw/.img only */
                { "http://h/x.gz.gz", "x.gz" },           /* one .gz only */
                { "http://h/dir/", "" },                  { "http://h/f.gz?token=abc#frag", "f" },
                { "http://h/", "" },                      { "noscheme/name.gz", "name" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[80];
                fetch_derive_name(cases[i][0], buf, sizeof(buf));
                if (strcmp(buf, cases[i][1]) != 0)
                        fail_msg("%s: \"%s\", not \"%s\"", cases[i][0], buf, cases[i][1]);
        }
        char small[4];
        fetch_derive_name("http://h/longname.gz", small, sizeof(small)); /* does not fit: no name */
        assert_string_equal(small, "");
}

static void test_check_uri(void **s) {
        (void)s;
        struct hv_conf c;
        hv_conf_defaults(&c);
        struct hv_error e = { 0 };
        enum uri_scheme sc;
        assert_int_equal(fetch_check_uri("https://h/x.gz", &c, &sc, &e), 0);
        assert_int_equal(sc, URI_HTTPS);
        assert_int_equal(fetch_check_uri("http://h/x.gz", &c, &sc, &e), 0);
        assert_int_equal(sc, URI_HTTP);
        /* file:// without AllowedSourceDirs: refused, saying why */
        assert_true(fetch_check_uri("file:///srv/x.gz", &c, &sc, &e) < 0);
        assert_int_equal(e.kind, HV_E_SOURCE_NOT_ALLOWED);
        assert_non_null(strstr(e.msg, "no AllowedSourceDirs"));
        snprintf(c.allowed_source_dirs[0], sizeof(c.allowed_source_dirs[0]), "/srv/images");
        c.n_allowed_source_dirs = 1;
        memset(&e, 0, sizeof(e));
        assert_int_equal(fetch_check_uri("file:///srv/images/a/x.gz", &c, &sc, &e), 0);
        assert_int_equal(sc, URI_FILE);
        static const char *const outside[] = { "file:///srv/imagesX/x.gz", "file:///srv/x.gz", "file:///etc/shadow" };
        for (size_t i = 0; i < 3; i++) {
                memset(&e, 0, sizeof(e));
                assert_true(fetch_check_uri(outside[i], &c, &sc, &e) < 0);
                assert_int_equal(e.kind, HV_E_SOURCE_NOT_ALLOWED);
        }
        static const char *const bad[] = { "file://host/x.gz", "ftp://h/x", "gopher://h", "http://h/a\nb", "file:///srv/images/%0a" };
        for (size_t i = 0; i < 5; i++) {
                memset(&e, 0, sizeof(e));
                if (fetch_check_uri(bad[i], &c, &sc, &e) >= 0)
                        fail_msg("accepted %s", bad[i]);
                assert_true(e.msg[0] != 0);
        }
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
        /* each path: what both ways must answer (0 with the file's contents, or -errno) */
        static const struct {
                const char *rel;
                int r;
                const char *content;
        } cases[] = {
                { "a.gz", 0, "A" },          { "sub/../a.gz", 0, "A" },        { "./sub//deeper/c.gz", 0, "C" },
                { "rel-link", 0, "A" },      { "sub/up-link", 0, "A" },        { "sub/dir-link/c.gz", 0, "C" },
                { "../x", -EXDEV, "" },      { "sub/../../x", -EXDEV, "" },    { "abs-link", -EXDEV, "" },
                { "escape-link", -EXDEV, "" }, { "loop1", -ELOOP, "" },        { "missing", -ENOENT, "" },
                { "a.gz/x", -ENOTDIR, "" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char c[16] = "";
                int r = both(dfd, cases[i].rel, c, sizeof(c));
                if (r != cases[i].r || (r == 0 && strcmp(c, cases[i].content) != 0))
                        fail_msg("%s: %d \"%s\", not %d \"%s\"", cases[i].rel, r, c, cases[i].r, cases[i].content);
        }
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
                cmocka_unit_test(test_derive_name),
                cmocka_unit_test(test_check_uri),
                cmocka_unit_test(test_open_beneath),
                cmocka_unit_test(test_open_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
