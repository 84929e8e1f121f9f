/* fetch.c: reading image sources. file:// is opened with openat2(RESOLVE_BENEATH) below an
 * allowed directory so neither ".." nor a symlink can lead out of it. */
#define _GNU_SOURCE
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define READ_CHUNK (256 * 1024)

int fetch_global_init(void) {
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
}

/* file:///path or file://localhost/path, percent-decoded. */
static int file_uri_path(const char *uri, char *out, size_t len) {
        const char *p = uri + strlen("file://");
        if (strncmp(p, "localhost/", 10) == 0)
                p += 9;
        if (*p != '/')
                return -EINVAL;
        size_t o = 0;
        for (; *p; p++) {
                char c = *p;
                if (c == '?' || c == '#')
                        return -EINVAL;
                if (c == '%') {
                        int a = hexval(p[1]), b = a >= 0 ? hexval(p[2]) : -1;
                        if (a < 0 || b < 0 || (a == 0 && b == 0))
                                return -EINVAL;
                        c = (char)(a * 16 + b);
                        p += 2;
                }
                if (o + 1 >= len)
                        return -ENAMETOOLONG;
                out[o++] = c;
        }
        out[o] = 0;
        return 0;
}

static long sys_openat2(int dirfd, const char *path, struct open_how *how) {
        return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

/* Opens the file of a file:// URI beneath one of the allowed directories. */
static int open_file_source(const char *uri, const struct hv_conf *c, struct hv_error *e) {
        char path[PATH_MAX];
        if (file_uri_path(uri, path, sizeof(path)) < 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "malformed file URI %s (expected file:///absolute/path)", uri);
        if (c->n_allowed_source_dirs == 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM,
                               "file:// sources are disabled: no AllowedSourceDirs in the configuration");
        for (unsigned i = 0; i < c->n_allowed_source_dirs; i++) {
                const char *dir = c->allowed_source_dirs[i];
                size_t dl = strlen(dir);
                while (dl > 1 && dir[dl - 1] == '/')
                        dl--;
                if (strncmp(path, dir, dl) != 0 || (path[dl] != '/' && dl != 1))
                        continue;
                const char *rel = path + dl;
                while (*rel == '/')
                        rel++;
                if (!*rel)
                        continue;
                int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        continue;
                struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
                long fd = sys_openat2(dfd, rel, &how);
                int err = errno;
                close(dfd);
                if (fd < 0 && err == ENOSYS)
                        return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "file:// needs openat2() (Linux 5.6+) to confine sources");
                if (fd < 0 && err == EXDEV)
                        return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM,
                                       "%s leads outside the allowed source directory %s (via .. or a symlink)", path, dir);
                if (fd < 0)
                        return hv_fail_errno(e, HV_E_FETCH_FAILED, err == ENOSPC ? EIO : err, "cannot open %s", path);
                struct stat st;
                if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        close((int)fd);
                        return hv_fail(e, HV_E_FETCH_FAILED, EINVAL, "%s is not a regular file", path);
                }
                return (int)fd;
        }
        return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s is not under an allowed source directory (AllowedSourceDirs)", path);
}

int fetch_check_uri(const char *uri, const struct hv_conf *c, enum fetch_scheme *scheme, struct hv_error *e) {
        if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
                const char *host = uri + (uri[4] == 's' ? 8 : 7);
                if (*host == 0 || *host == '/')
                        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "URL %s has no host", uri);
                for (const char *p = uri; *p; p++)
                        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "URL contains a space or control character");
                *scheme = FETCH_HTTP;
                return 0;
        }
        if (strncmp(uri, "file://", 7) == 0) {
                int fd = open_file_source(uri, c, e);
                if (fd < 0)
                        return fd;
                close(fd);
                *scheme = FETCH_FILE;
                return 0;
        }
        if (uri[0] == '/')
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "source %s is a path, not a URI: write file://%s", uri, uri);
        return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "unsupported source %.200s: use http://, https:// or file://", uri);
}

void fetch_derive_name(const char *uri, char *buf, size_t len) {
        buf[0] = 0;
        const char *start = strstr(uri, "://");
        start = start ? start + 3 : uri;
        size_t end = strcspn(start, "?#");
        const char *last = start;
        for (size_t i = 0; i < end; i++)
                if (start[i] == '/')
                        last = start + i + 1;
        size_t n = (size_t)(start + end - last);
        if (n == 0 || n >= len)
                return;
        memcpy(buf, last, n);
        buf[n] = 0;
        static const char *const sfx[] = { ".gz", ".raw", ".img" };
        /* ".gz" first, then at most one of ".raw"/".img": "sl7.img.gz" -> "sl7" */
        for (size_t i = 0; i < ELEMENTSOF(sfx); i++) {
                size_t l = strlen(buf), s = strlen(sfx[i]);
                if (l > s && strcmp(buf + l - s, sfx[i]) == 0) {
                        buf[l - s] = 0;
                        if (i > 0)
                                break;
                }
        }
}

static int run_file(const struct fetch_req *req, struct hv_error *e) {
        _cleanup_close_ int fd = open_file_source(req->uri, req->conf, e);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return hv_fail_errno(e, HV_E_FETCH_FAILED, errno, "cannot stat source");
        int r = req->total(req->userdata, (uint64_t)st.st_size, e);
        if (r < 0)
                return r;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        _cleanup_free_ uint8_t *buf = malloc(READ_CHUNK);
        if (!buf)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        uint64_t off = 0;
        for (;;) {
                if (atomic_load(req->cancel))
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                ssize_t n = read(fd, buf, READ_CHUNK);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return hv_fail_errno(e, HV_E_FETCH_FAILED, errno, "reading the source at byte %llu", (unsigned long long)off);
                }
                if (n == 0)
                        return 0;
                off += (uint64_t)n;
                r = req->data(req->userdata, buf, (size_t)n, e);
                if (r < 0)
                        return r;
        }
}

struct curl_ctx {
        const struct fetch_req *req;
        struct hv_error *e;
        CURL *curl;
        bool total_sent;
        int r;
};

static size_t curl_write(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        if (!c->total_sent) {
                c->total_sent = true;
                long code = 0;
                curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
                curl_off_t cl = -1;
                curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                c->r = c->req->total(c->req->userdata, cl > 0 ? (uint64_t)cl : 0, c->e);
                if (c->r < 0)
                        return 0;
        }
        c->r = c->req->data(c->req->userdata, (const uint8_t *)p, n, c->e);
        return c->r < 0 ? 0 : n;
}

static int curl_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        (void)dt; (void)dn; (void)ut; (void)un;
        struct curl_ctx *c = ud;
        return atomic_load(c->req->cancel) ? 1 : 0;
}

static int run_http(const struct fetch_req *req, struct hv_error *e) {
        CURL *curl = curl_easy_init();
        if (!curl)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "cannot initialise libcurl");
        struct curl_ctx c = { .req = req, .e = e, .curl = curl };
        char errbuf[CURL_ERROR_SIZE] = "";
        const struct hv_conf *cf = req->conf;
        bool ok = curl_easy_setopt(curl, CURLOPT_URL, req->uri) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)cf->max_redirects) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_USERAGENT, HV_USER_AGENT) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)cf->connect_timeout_sec) == CURLE_OK &&
                  /* a transfer that moves nothing for StallTimeoutSec is stalled */
                  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)cf->stall_timeout_sec) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curl_write) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, curl_progress) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
                  (!cf->ca_path[0] || curl_easy_setopt(curl, CURLOPT_CAINFO, cf->ca_path) == CURLE_OK) &&
                  (!cf->proxy[0] || curl_easy_setopt(curl, CURLOPT_PROXY, cf->proxy) == CURLE_OK);
        if (!ok) {
                curl_easy_cleanup(curl);
                return hv_fail(e, HV_E_ERRNO, EINVAL, "cannot configure libcurl");
        }
        CURLcode cr = curl_easy_perform(curl);
        long code = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        int r = 0;
        if (cr == CURLE_OK && !c.total_sent)
                r = req->total(req->userdata, 0, e); /* an empty body */
        else if (cr == CURLE_WRITE_ERROR && c.r < 0)
                r = c.r; /* our own error, already described */
        else if (cr == CURLE_ABORTED_BY_CALLBACK)
                r = hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        else if (cr == CURLE_HTTP_RETURNED_ERROR)
                r = hv_fail(e, HV_E_FETCH_FAILED, EIO, "HTTP status %ld fetching %s", code, req->uri);
        else if (cr == CURLE_OPERATION_TIMEDOUT && c.total_sent)
                r = hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download stalled: no data for %u s from %s",
                            cf->stall_timeout_sec, req->uri);
        else if (cr == CURLE_TOO_MANY_REDIRECTS)
                r = hv_fail(e, HV_E_FETCH_FAILED, ELOOP, "more than %u redirects fetching %s", cf->max_redirects, req->uri);
        else if (cr != CURLE_OK)
                r = hv_fail(e, HV_E_FETCH_FAILED, EIO, "fetching %s: %s", req->uri, errbuf[0] ? errbuf : curl_easy_strerror(cr));
        curl_easy_cleanup(curl);
        return r;
}

int fetch_run(const struct fetch_req *req, struct hv_error *e) {
        if (strncmp(req->uri, "file://", 7) == 0)
                return run_file(req, e);
        return run_http(req, e);
}
