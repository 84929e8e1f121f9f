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
#include <string.h>
#include <sys/stat.h>
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
};

static size_t curl_write(char *p, size_t size, size_t nmemb, void *ud) {
        struct curl_ctx *c = ud;
        size_t n = size * nmemb;
        if (!c->total_sent) {
                c->total_sent = true;
                curl_off_t cl = -1;
                curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
                c->r = c->req->total(c->req->userdata, cl > 0 ? (uint64_t)cl : 0, c->e);
                if (c->r < 0)
                        return 0;
        }
        c->r = c->req->data(c->req->userdata, (const uint8_t *)p, n, c->e);
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

static int curl_result(struct curl_ctx *c, CURLcode cr, const char *errbuf) {
        const struct fetch_req *req = c->req;
        const struct hv_conf *cf = req->conf;
        struct hv_error *e = c->e;
        long code = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
        char a[32];
        if (cr == CURLE_OK && !c->total_sent)
                return req->total(req->userdata, 0, e); /* an empty body */
        if (cr == CURLE_OK)
                return 0;
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

static int run_http(const struct fetch_req *req, struct hv_error *e) {
        CURL *curl = curl_easy_init();
        if (!curl)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "cannot initialise libcurl");
        uint64_t now = hv_mono_usec();
        struct curl_ctx c = { .req = req, .e = e, .curl = curl, .start_usec = now, .last_data_usec = now };
        char errbuf[CURL_ERROR_SIZE] = "";
        const struct hv_conf *cf = req->conf;
        /* no downgrade: an https source may only be redirected to https */
        const char *redir = strncmp(req->uri, "https://", 8) == 0 ? "https" : "http,https";
        bool ok = curl_easy_setopt(curl, CURLOPT_URL, req->uri) == CURLE_OK &&
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
                  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, curl_progress) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, curl_open_socket) == CURLE_OK &&
                  curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &c) == CURLE_OK &&
                  (!cf->ca_path[0] || curl_easy_setopt(curl, CURLOPT_CAINFO, cf->ca_path) == CURLE_OK) &&
                  (!cf->proxy[0] || curl_easy_setopt(curl, CURLOPT_PROXY, cf->proxy) == CURLE_OK);
        if (!ok) {
                curl_easy_cleanup(curl);
                return hv_fail(e, HV_E_ERRNO, EINVAL, "cannot configure libcurl");
        }
        CURLcode cr = curl_easy_perform(curl);
        int r = curl_result(&c, cr, errbuf);
        curl_easy_cleanup(curl);
        return r;
}

int fetch_run(const struct fetch_req *req, struct hv_error *e) {
        if (strncmp(req->uri, "file://", 7) == 0)
                return run_file(req, e);
        return run_http(req, e);
}
