/* fetch.c: reading image sources. file:// is opened beneath an allowed directory so neither
 * ".." nor a symlink can lead out of it; http(s) is fetch_http.c (libcurl, with bounds on size,
 * rate, time and where redirects may lead, and retries). */
#define _GNU_SOURCE
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

int fetch_run(const struct fetch_req *req, struct hv_error *e) {
        if (strncmp(req->uri, "file://", 7) == 0)
                return run_file(req, e);
        return fetch_http(req, e);
}
