/* util.c: helpers shared by the daemon and the client. */
#define _GNU_SOURCE
#include "util.h"

#include "names.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static void vfail(struct hv_error *e, enum hv_kind kind, int err, bool with_errno, const char *fmt, va_list ap) {
        if (!e || hv_error_set(e))
                return;
        e->kind = (err == ENOSPC || err == EDQUOT) ? HV_E_NO_SPACE : kind;
        e->err = err ? err : EIO;
        int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        if (with_errno && n >= 0 && (size_t)n < sizeof(e->msg))
                snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(e->err));
}

int hv_fail(struct hv_error *e, enum hv_kind kind, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfail(e, kind, err, false, fmt, ap);
        va_end(ap);
        return -(err ? err : EIO);
}

int hv_fail_errno(struct hv_error *e, enum hv_kind kind, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfail(e, kind, err, true, fmt, ap);
        va_end(ap);
        return -(err ? err : EIO);
}

bool hv_error_set(const struct hv_error *e) {
        return e->err != 0 || e->msg[0] != 0;
}

bool hv_name_valid(const char *name) {
        if (!name)
                return false;
        size_t n = strlen(name);
        if (n < 1 || n > 64)
                return false;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (i == 0 ? !alnum : !(alnum || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

int hv_parse_size(const char *s, uint64_t *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        uint64_t v = 0;
        const char *p = s;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        unsigned shift = 0;
        switch (*p) {
        case 'K': case 'k': shift = 10; p++; break;
        case 'M': case 'm': shift = 20; p++; break;
        case 'G': case 'g': shift = 30; p++; break;
        case 'T': case 't': shift = 40; p++; break;
        default: break;
        }
        if (shift && strcmp(p, "iB") == 0)
                p += 2;
        else if (strcmp(p, "B") == 0)
                p += 1;
        if (*p)
                return -EINVAL;
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

int hv_parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

const char *hv_format_size(uint64_t b, char *buf, size_t len) {
        static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        if (b < 1024) {
                snprintf(buf, len, "%llu B", (unsigned long long)b);
                return buf;
        }
        double v = (double)b;
        size_t i = 0;
        while (v >= 1024.0 && i + 1 < ELEMENTSOF(u)) {
                v /= 1024.0;
                i++;
        }
        snprintf(buf, len, "%.1f %s", v, u[i]);
        return buf;
}

static uint64_t clock_usec(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}
uint64_t hv_now_usec(void) { return clock_usec(CLOCK_REALTIME); }
uint64_t hv_mono_usec(void) { return clock_usec(CLOCK_MONOTONIC); }
uint64_t hv_thread_cpu_usec(void) { return clock_usec(CLOCK_THREAD_CPUTIME_ID); }

int hv_mkdir_p(const char *path, unsigned mode) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int hv_fsync_dir(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int hv_fsync_parent(const char *path) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        char *slash = strrchr(buf, '/');
        if (!slash)
                return hv_fsync_dir(".");
        if (slash == buf)
                slash[1] = 0;
        else
                *slash = 0;
        return hv_fsync_dir(buf);
}

int hv_pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ENOSPC; /* a zero-length write on a regular file means no room */
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

int hv_write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int hv_write_file_atomic(const char *path, const char *content, size_t len, unsigned mode) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int r = hv_write_all(fd, content, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return hv_fsync_parent(path);
}

int hv_read_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* a FIFO never blocks: refused below */
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        char *buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        for (;;) {
                ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n == (size_t)st.st_size)
                        break;
        }
        buf[n] = 0;
        *ret = buf;
        if (ret_len)
                *ret_len = n;
        return 0;
}

void hv_uuid_random(uint8_t u[16]) {
        size_t got = 0;
        while (got < 16) {
                ssize_t n = getrandom(u + got, 16 - got, 0);
                if (n > 0)
                        got += (size_t)n;
        }
        u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
        u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}

void hv_uuid_format(const uint8_t u[16], char *out) {
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
                 u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

void hv_hex(const uint8_t *in, size_t n, char *out) {
        static const char d[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = d[in[i] >> 4];
                out[2 * i + 1] = d[in[i] & 15];
        }
        out[2 * n] = 0;
}

bool hv_fault(const char *point) {
        const char *v = getenv("HVWGD_FAULT");
        size_t n = strlen(point);
        for (const char *p = v; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
                if (strncmp(p, point, n) == 0 && (p[n] == ',' || p[n] == 0))
                        return true;
        }
        return false;
}

int hv_shell_quote(const char *word, char *buf, size_t len, size_t *used) {
        size_t u = *used;
#define PUT(c)                          \
        do {                            \
                if (u + 1 >= len)       \
                        return -ENOSPC; \
                buf[u++] = (c);         \
        } while (0)
        PUT('\'');
        for (const char *p = word; *p; p++) {
                if (*p == '\'') {
                        PUT('\'');
                        PUT('\\');
                        PUT('\'');
                        PUT('\'');
                } else
                        PUT(*p);
        }
        PUT('\'');
#undef PUT
        buf[u] = 0;
        *used = u;
        return 0;
}

uint64_t hv_rate_take(struct hv_rate *r, uint64_t now_usec, uint64_t n, uint64_t rate) {
        if (!rate)
                return 0;
        double burst = (double)rate / 4;
        if (!r->last_usec)
                r->tokens = burst;
        else if (now_usec > r->last_usec)
                r->tokens += (double)(now_usec - r->last_usec) * (double)rate / 1e6;
        if (r->tokens > burst)
                r->tokens = burst;
        r->last_usec = now_usec > r->last_usec ? now_usec : r->last_usec;
        r->tokens -= (double)n;
        return r->tokens < 0 ? (uint64_t)(-r->tokens * 1e6 / (double)rate) : 0;
}
