/* fetch.c: reading image sources. file:// is opened beneath an allowed directory so neither
 * ".." nor a symlink can lead out of it; http(s) goes through libcurl with bounds on size, rate,
 * time and where redirects may lead. */
#define _GNU_SOURCE
#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "log.h"

#define READ_CHUNK (256 * 1024)
#define MAX_SYMLINKS 40 /* the kernel's own bound */
#define MAX_WALK_DEPTH 256

int fetch_global_init(void) {
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

int fetch_check_uri(const char *uri, const struct hv_conf *c, enum uri_scheme *scheme, struct hv_error *e) {
        int r = uri_scheme(uri, scheme, e);
        if (r < 0 || *scheme != URI_FILE)
                return r;
        char path[PATH_MAX];
        if (uri_file_path(uri, path, sizeof(path)) < 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "malformed file URI (expected file:///absolute/path)");
        if (c->n_allowed_source_dirs == 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM,
                               "file:// sources are disabled: no AllowedSourceDirs in the configuration");
        const char *rel;
        if (uri_allowed_dir(path, c->allowed_source_dirs, c->n_allowed_source_dirs, &rel) < 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s is not under an allowed source directory (AllowedSourceDirs)",
                               path);
        return 0;
}

#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

static void close_all(int *fds, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                close(fds[i]);
}

/* The path walk: a stack of directory fds, ".." pops (never past the base), symlinks are read
 * and spliced in front of what is left of the path. */
static int open_beneath_walk(int dirfd, const char *rel) {
        char rest[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX];
        if (snprintf(rest, sizeof(rest), "%s", rel) >= (int)sizeof(rest))
                return -ENAMETOOLONG;
        int stack[MAX_WALK_DEPTH];
        unsigned depth = 0, links = 0;
        stack[depth++] = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (stack[0] < 0)
                return -errno;
        char *p = rest;
        for (;;) {
                while (*p == '/')
                        p++;
                if (!*p) {
                        close_all(stack, depth);
                        return -EISDIR;
                }
                char *end = strchrnul(p, '/');
                char *after = end;
                while (*after == '/')
                        after++;
                bool last = *after == 0;
                char comp[NAME_MAX + 1];
                size_t n = (size_t)(end - p);
                if (n > NAME_MAX) {
                        close_all(stack, depth);
                        return -ENAMETOOLONG;
                }
                memcpy(comp, p, n);
                comp[n] = 0;
                p = after;
                int top = stack[depth - 1];
                if (strcmp(comp, ".") == 0) {
                        if (last) {
                                close_all(stack, depth);
                                return -EISDIR;
                        }
                        continue;
                }
                if (strcmp(comp, "..") == 0) {
                        if (depth == 1) {
                                close_all(stack, depth);
                                return -EXDEV;
                        }
                        close(stack[--depth]);
                        if (last) {
                                close_all(stack, depth);
                                return -EISDIR;
                        }
                        continue;
                }
                int fd = openat(top, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0) {
                        int err = errno;
                        if (fd >= 0)
                                close(fd);
                        close_all(stack, depth);
                        return -err;
                }
                if (S_ISLNK(st.st_mode)) {
                        ssize_t l = readlinkat(fd, "", target, sizeof(target) - 1);
                        int err = errno;
                        close(fd);
                        if (l < 0 || ++links > MAX_SYMLINKS || (l > 0 && target[0] == '/')) {
                                close_all(stack, depth);
                                return l < 0 ? -err : (links > MAX_SYMLINKS ? -ELOOP : -EXDEV);
                        }
                        target[l] = 0;
                        if (snprintf(tmp, sizeof(tmp), "%s/%s", target, p) >= (int)sizeof(tmp)) {
                                close_all(stack, depth);
                                return -ENAMETOOLONG;
                        }
                        memcpy(rest, tmp, strlen(tmp) + 1);
                        p = rest;
                        continue;
                }
                if (last) {
                        close(fd);
                        /* O_NOFOLLOW: a symlink put here since the look above is refused, not followed */
                        int r = openat(top, comp, OPEN_FLAGS | O_NOFOLLOW);
                        int err = errno;
                        close_all(stack, depth);
                        return r < 0 ? -err : r;
                }
                if (!S_ISDIR(st.st_mode) || depth == MAX_WALK_DEPTH) {
                        close(fd);
                        close_all(stack, depth);
                        return S_ISDIR(st.st_mode) ? -ELOOP : -ENOTDIR;
                }
                stack[depth++] = fd;
        }
}

static atomic_bool openat2_filtered;

int fetch_open_beneath(int dirfd, const char *rel, bool use_openat2) {
        if (use_openat2 && !atomic_load(&openat2_filtered)) {
                struct open_how how = { .flags = OPEN_FLAGS, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
                long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;
                if (errno != ENOSYS && errno != EPERM)
                        return -errno;
                /* a kernel before 5.6, or a seccomp filter that cannot inspect openat2's flags */
                if (!atomic_exchange(&openat2_filtered, true))
                        log_info("openat2() is not available (%s): confining file:// sources by walking their paths", strerror(errno));
        }
        return open_beneath_walk(dirfd, rel);
}

int fetch_open_file(const char *uri, const struct hv_conf *c, struct hv_error *e) {
        enum uri_scheme scheme;
        int r = fetch_check_uri(uri, c, &scheme, e);
        if (r < 0)
                return r;
        char path[PATH_MAX];
        const char *rel;
        if (scheme != URI_FILE || uri_file_path(uri, path, sizeof(path)) < 0)
                return hv_fail(e, HV_E_INVALID_ARGS, EINVAL, "not a file:// URI");
        int i = uri_allowed_dir(path, c->allowed_source_dirs, c->n_allowed_source_dirs, &rel);
        if (i < 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s is not under an allowed source directory", path);
        const char *dir = c->allowed_source_dirs[i];
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return hv_fail_errno(e, HV_E_FETCH_FAILED, errno, "cannot open the allowed source directory %s", dir);
        int fd = fetch_open_beneath(dfd, rel, true);
        if (fd == -EXDEV || fd == -ELOOP)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s leads outside the allowed source directory %s (via .. or a symlink)",
                               path, dir);
        if (fd == -EISDIR)
                return hv_fail(e, HV_E_FETCH_FAILED, EINVAL, "%s is not a regular file", path);
        if (fd < 0)
                return hv_fail_errno(e, HV_E_FETCH_FAILED, -fd == ENOSPC ? EIO : -fd, "cannot open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return hv_fail(e, HV_E_FETCH_FAILED, EINVAL, "%s is not a regular file", path);
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                int err = errno;
                close(fd);
                return hv_fail_errno(e, HV_E_FETCH_FAILED, err, "cannot prepare %s for reading", path);
        }
        return fd;
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
        if (req->fd < 0)
                return hv_fail(e, HV_E_FETCH_FAILED, EBADF, "the source %s was not opened", req->uri_shown);
        struct stat st;
        if (fstat(req->fd, &st) < 0)
                return hv_fail_errno(e, HV_E_FETCH_FAILED, errno, "cannot stat source");
        int r = req->total(req->userdata, (uint64_t)st.st_size, e);
        if (r < 0)
                return r;
        (void)posix_fadvise(req->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        _cleanup_free_ uint8_t *buf = malloc(READ_CHUNK);
        if (!buf)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        uint64_t off = 0;
        for (;;) {
                if (atomic_load(req->cancel))
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
                ssize_t n = pread(req->fd, buf, READ_CHUNK, (off_t)off);
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

enum curl_abort { ABORT_NONE, ABORT_CANCEL, ABORT_STALL, ABORT_DEADLINE, ABORT_REDIRECT };

struct curl_ctx {
        const struct fetch_req *req;
        struct hv_error *e;
        CURL *curl;
        bool total_sent;
        int r;
        enum curl_abort abort;
        uint64_t start_usec, last_data_usec;
        curl_off_t last_dlnow;
        bool first_internal;
        char redirect_ip[64];
        /* across tries: what reached req->data, and the first response's validator */
        uint64_t delivered;
        char etag[256], last_modified[64];
        /* this try: resumed with Range, its body's first bytes seen, its response's headers */
        bool resumed, body_started;
        char cur_etag[256], cur_last_modified[64], via[256], x_cache[128];
};

/* A header line of the response (of each response: a redirect's too). */
static size_t curl_header(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        char line[512];
        size_t l = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        memcpy(line, p, l);
        line[l] = 0;
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "HTTP/", 5) == 0) { /* a new response: its headers start */
                c->cur_etag[0] = c->cur_last_modified[0] = c->via[0] = c->x_cache[0] = 0;
                return n;
        }
        static const struct { const char *name; size_t off, len; } keep[] = {
                { "etag:", offsetof(struct curl_ctx, cur_etag), sizeof(((struct curl_ctx *)0)->cur_etag) },
                { "last-modified:", offsetof(struct curl_ctx, cur_last_modified), sizeof(((struct curl_ctx *)0)->cur_last_modified) },
                { "via:", offsetof(struct curl_ctx, via), sizeof(((struct curl_ctx *)0)->via) },
                { "x-cache:", offsetof(struct curl_ctx, x_cache), sizeof(((struct curl_ctx *)0)->x_cache) },
        };
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                size_t kl = strlen(keep[i].name);
                if (strncasecmp(line, keep[i].name, kl) != 0)
                        continue;
                const char *v = line + kl;
                v += strspn(v, " \t");
                /* a validator goes back into a request header: printable ASCII only */
                bool clean = true;
                for (const char *q = v; *q; q++)
                        clean &= (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f;
                if (clean)
                        snprintf((char *)c + keep[i].off, keep[i].len, "%s", v);
        }
        return n;
}

/* The first bytes of a try's body: a resumed try must have got the rest of the same file. */
static int body_start(struct curl_ctx *c) {
        c->body_started = true;
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        if (!c->resumed) {
                snprintf(c->etag, sizeof(c->etag), "%s", c->cur_etag);
                snprintf(c->last_modified, sizeof(c->last_modified), "%s", c->cur_last_modified);
                if (c->via[0] || c->x_cache[0])
                        log_info("fetching %s: through a cache (Via: %s, X-Cache: %s)", c->req->uri_shown, c->via[0] ? c->via : "-",
                                 c->x_cache[0] ? c->x_cache : "-");
                return 0;
        }
        if (code == 206)
                return 0;
        log_warning("fetching %s: the server answered the resumed request with %ld%s: starting over from byte 0", c->req->uri_shown,
                    code, code == 200 ? " (it ignores Range, or the file changed)" : "");
        return -ERESTART;
}

static size_t curl_write(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        if (!c->body_started && (c->r = body_start(c)) < 0)
                return 0;
        if (!c->total_sent) {
                c->total_sent = true;
                curl_off_t cl = -1;
                curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                c->r = c->req->total(c->req->userdata, cl > 0 ? (uint64_t)cl : 0, c->e);
                if (c->r < 0)
                        return 0;
        }
        c->r = c->req->data(c->req->userdata, (const uint8_t *)p, n, c->e);
        if (c->r >= 0)
                c->delivered += n;
        return c->r < 0 ? 0 : n;
}

/* Called about once a second even when nothing arrives: cancel, stall and the overall deadline. */
static int curl_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        (void)dt; (void)ut; (void)un;
        struct curl_ctx *c = ud;
        const struct hv_conf *cf = c->req->conf;
        uint64_t now = hv_mono_usec();
        if (atomic_load(c->req->cancel)) {
                c->abort = ABORT_CANCEL;
                return 1;
        }
        if (dn != c->last_dlnow) {
                c->last_dlnow = dn;
                c->last_data_usec = now;
        } else if (now - c->last_data_usec > (uint64_t)cf->stall_timeout_sec * 1000000ULL) {
                c->abort = ABORT_STALL;
                return 1;
        }
        if (cf->max_download_time_sec && now - c->start_usec > (uint64_t)cf->max_download_time_sec * 1000000ULL) {
                c->abort = ABORT_DEADLINE;
                return 1;
        }
        return 0;
}

/* Loopback and link-local addresses belong to this host (and its metadata services). */
static bool host_internal(const struct sockaddr *sa, char *text, size_t len) {
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                uint32_t a = ntohl(in->sin_addr.s_addr);
                inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)len);
                return (a >> 24) == 127 || (a >> 16) == 0xa9fe || a == 0;
        }
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
                inet_ntop(AF_INET6, a6, text, (socklen_t)len);
                if (IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_UNSPECIFIED(a6))
                        return true;
                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        struct sockaddr_in v4 = { .sin_family = AF_INET };
                        memcpy(&v4.sin_addr, &a6->s6_addr[12], 4);
                        return host_internal((const struct sockaddr *)&v4, text, len);
                }
        }
        return false;
}

/* Every connection curl opens (the first request's, and a redirect's to another host): a
 * redirect may not lead to this host's own services unless the caller's URL already did (then
 * the caller could name them anyway). A socket callback rather than CURLOPT_PREREQFUNCTION:
 * it exists in every libcurl a site runs (EL9 has 7.76). */
static curl_socket_t curl_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
        (void)purpose;
        struct curl_ctx *c = ud;
        char text[INET6_ADDRSTRLEN] = "?";
        bool internal = host_internal(&a->addr, text, sizeof(text));
        long redirects = 0;
        if (curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_COUNT, &redirects) != CURLE_OK)
                redirects = 1; /* unknown: judge it as a redirect */
        if (redirects == 0)
                c->first_internal |= internal;
        else if (internal && !c->first_internal && !c->req->conf->allow_loopback_redirects) {
                snprintf(c->redirect_ip, sizeof(c->redirect_ip), "%s", text);
                c->abort = ABORT_REDIRECT;
                return CURL_SOCKET_BAD;
        }
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int curl_result(struct curl_ctx *c, CURLcode cr, const char *errbuf, struct hv_error *e) {
        const struct fetch_req *req = c->req;
        const struct hv_conf *cf = req->conf;
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        char a[32];
        if (cr == CURLE_OK && !c->total_sent)
                return req->total(req->userdata, 0, e); /* an empty body */
        if (cr == CURLE_OK)
                return 0;
        if (cr == CURLE_WRITE_ERROR && c->r == -ERESTART)
                return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "the server of %s cannot resume the download", req->uri_shown);
        if (cr == CURLE_WRITE_ERROR && c->r < 0)
                return c->r; /* our own error, already described */
        switch (c->abort) {
        case ABORT_CANCEL:
                return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        case ABORT_STALL:
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download stalled: no data for %u s from %s (StallTimeoutSec)",
                               cf->stall_timeout_sec, req->uri_shown);
        case ABORT_DEADLINE:
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download of %s did not finish within %u s (MaxDownloadTimeSec)",
                               req->uri_shown, cf->max_download_time_sec);
        case ABORT_REDIRECT:
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM,
                               "%s redirected to %s, an address of this host (loopback or link-local): refused "
                               "(AllowLoopbackRedirects=no)", req->uri_shown, c->redirect_ip);
        case ABORT_NONE:
                break;
        }
        if (cr == CURLE_HTTP_RETURNED_ERROR)
                return hv_fail(e, HV_E_FETCH_FAILED, EIO, "HTTP status %ld fetching %s", code, req->uri_shown);
        if (cr == CURLE_OPERATION_TIMEDOUT && c->total_sent)
                return hv_fail(e, HV_E_FETCH_FAILED, ETIMEDOUT, "download too slow: below %s/s for %u s from %s (LowSpeedLimit)",
                               hv_format_size(cf->low_speed_limit, a, sizeof(a)), cf->low_speed_time_sec, req->uri_shown);
        if (cr == CURLE_TOO_MANY_REDIRECTS)
                return hv_fail(e, HV_E_FETCH_FAILED, ELOOP, "more than %u redirects fetching %s", cf->max_redirects, req->uri_shown);
        if (cr == CURLE_UNSUPPORTED_PROTOCOL && curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_COUNT, &code) == CURLE_OK && code > 0)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "%s redirected to a scheme that is not allowed (an https source "
                               "may only redirect to https)", req->uri_shown);
        return hv_fail(e, HV_E_FETCH_FAILED, EIO, "fetching %s: %s", req->uri_shown, errbuf[0] ? errbuf : curl_easy_strerror(cr));
}

/* Whether a failed try is worth another: the connection or the server failed, not the
 * request (4xx), the caller (cancel), the limits or our own checks. */
static bool retryable(const struct curl_ctx *c, CURLcode cr) {
        if (c->abort == ABORT_STALL)
                return true;
        if (c->abort != ABORT_NONE || (cr == CURLE_WRITE_ERROR && c->r < 0))
                return false;
        long code = 0;
        switch (cr) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        case CURLE_OPERATION_TIMEDOUT: /* connect timeout, or slower than LowSpeedLimit */
                return true;
        case CURLE_HTTP_RETURNED_ERROR:
                curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
                return code >= 500 || code == 408 || code == 429;
        default:
                return false;
        }
}

static bool setup(CURL *curl, const struct fetch_req *req, struct curl_ctx *c, char *errbuf) {
        const struct hv_conf *cf = req->conf;
        /* no downgrade: an https source may only be redirected to https */
        const char *redir = strncmp(req->uri, "https://", 8) == 0 ? "https" : "http,https";
        return curl_easy_setopt(curl, CURLOPT_URL, req->uri) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, redir) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_MAXREDIRS, (long)cf->max_redirects) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_USERAGENT, HV_USER_AGENT) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)cf->connect_timeout_sec) == CURLE_OK &&
               /* the minimum average rate; a complete stall is caught sooner by curl_progress */
               (!cf->low_speed_limit ||
                (curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, (long)cf->low_speed_limit) == CURLE_OK &&
                 curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)cf->low_speed_time_sec) == CURLE_OK)) &&
               curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, curl_write) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_WRITEDATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, curl_header) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_HEADERDATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, curl_progress) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, curl_open_socket) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, c) == CURLE_OK &&
               (!cf->ca_path[0] || curl_easy_setopt(curl, CURLOPT_CAINFO, cf->ca_path) == CURLE_OK) &&
               (!cf->proxy[0] || curl_easy_setopt(curl, CURLOPT_PROXY, cf->proxy) == CURLE_OK);
}

/* Sleeps delay_sec, watching for a cancel. */
static bool backoff_wait(const struct fetch_req *req, unsigned delay_sec) {
        uint64_t until = hv_mono_usec() + (uint64_t)delay_sec * 1000000ULL;
        while (hv_mono_usec() < until) {
                if (atomic_load(req->cancel))
                        return false;
                usleep(100000);
        }
        return true;
}

static int run_http(const struct fetch_req *req, struct hv_error *e) {
        const struct hv_conf *cf = req->conf;
        uint64_t now = hv_mono_usec();
        struct curl_ctx c = { .req = req, .e = e, .start_usec = now };
        for (unsigned attempt = 0;; attempt++) {
                CURL *curl = curl_easy_init();
                if (!curl)
                        return hv_fail(e, HV_E_ERRNO, ENOMEM, "cannot initialise libcurl");
                char errbuf[CURL_ERROR_SIZE] = "", if_range[320] = "";
                struct curl_slist *headers = NULL;
                c.curl = curl;
                c.r = 0;
                c.abort = ABORT_NONE;
                c.last_data_usec = hv_mono_usec();
                c.last_dlnow = 0;
                c.body_started = false;
                c.resumed = c.delivered > 0;
                bool ok = setup(curl, req, &c, errbuf);
                if (ok && c.resumed) {
                        /* the rest of the same file, or (If-Range) the whole of a changed one */
                        snprintf(if_range, sizeof(if_range), "If-Range: %s", c.etag[0] ? c.etag : c.last_modified);
                        ok = (headers = curl_slist_append(NULL, if_range)) &&
                             curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
                             curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)c.delivered) == CURLE_OK;
                }
                if (!ok) {
                        curl_slist_free_all(headers);
                        curl_easy_cleanup(curl);
                        return hv_fail(e, HV_E_ERRNO, EINVAL, "cannot configure libcurl");
                }
                CURLcode cr = curl_easy_perform(curl);
                if (cr == CURLE_RANGE_ERROR && c.resumed) { /* curl saw a 200 where the rest (206) was asked for */
                        curl_slist_free_all(headers);
                        curl_easy_cleanup(curl);
                        log_warning("fetching %s: the server answered the resumed request with the whole file (it ignores Range, "
                                    "or the file changed): starting over from byte 0", req->uri_shown);
                        return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "the server of %s cannot resume the download", req->uri_shown);
                }
                bool again = cr != CURLE_OK && retryable(&c, cr);
                struct hv_error te = { 0 };
                int r = curl_result(&c, cr, errbuf, again ? &te : e);
                curl_slist_free_all(headers);
                curl_easy_cleanup(curl);
                if (r >= 0 || r == -ERESTART || !again)
                        return r;
                if (attempt >= cf->retries)
                        return hv_fail(e, te.kind, te.err, "%s (after %u tries; [Fetch] Retries=%u)", te.msg, attempt + 1, cf->retries);
                if (c.delivered && !c.etag[0] && !c.last_modified[0]) {
                        log_warning("fetching %s: %s; the server sent neither ETag nor Last-Modified, so the download cannot "
                                    "resume safely: starting over", req->uri_shown, te.msg);
                        return hv_fail(e, HV_E_FETCH_FAILED, ERESTART, "%s", te.msg);
                }
                /* exponential backoff with jitter: 1, 2, 4 … s up to RetryMaxDelaySec, × 0.5–1.5 */
                uint8_t rnd;
                if (getrandom(&rnd, 1, GRND_NONBLOCK) != 1)
                        rnd = 128;
                unsigned base = attempt < 16 ? 1u << attempt : cf->retry_max_delay_sec;
                if (base > cf->retry_max_delay_sec)
                        base = cf->retry_max_delay_sec;
                unsigned delay = (unsigned)((base * (128u + rnd) + 255) / 256);
                log_info("fetching %s: %s; try %u of %u in %u s%s", req->uri_shown, te.msg, attempt + 2, cf->retries + 1, delay,
                         c.delivered ? ", resuming after the bytes already here" : "");
                if (req->retrying)
                        req->retrying(req->userdata, attempt + 1, cf->retries, delay, te.msg);
                if (!backoff_wait(req, delay))
                        return hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled");
        }
}

int fetch_run(const struct fetch_req *req, struct hv_error *e) {
        if (strncmp(req->uri, "file://", 7) == 0)
                return run_file(req, e);
        return run_http(req, e);
}
