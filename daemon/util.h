/* util.h: small helpers shared by the daemon and the client: cleanup, errors, names, sizes. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
/* func##p for a pointer type whose free function takes the pointer (and may not take NULL). */
#define HV_DEFINE_CLEANUP(type, func)                  \
        static inline void func##p(type *p) {          \
                if (*p)                                \
                        func(*p);                      \
        }
/* Hands a pointer over: returns it and clears the variable (its cleanup then does nothing). */
#define HV_TAKE_PTR(p)                                 \
        ({                                             \
                __typeof__(p) _p = (p);                \
                (p) = NULL;                            \
                _p;                                    \
        })
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define HV_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* The kinds of failure the D-Bus contract names (shared/API.md); errors.c maps them to names.
 * HV_E_ERRNO means "map errno". */
enum hv_kind {
        HV_E_ERRNO = 0,
        HV_E_INVALID_ARGS,
        HV_E_ACCESS,
        HV_E_LIMITS,       /* a quota or a queue bound (LimitsExceeded) */
        HV_E_FAILED,       /* nothing more specific (Failed): shutting down, no thread */
        HV_E_IMAGE_EXISTS,
        HV_E_NO_SUCH_IMAGE,
        HV_E_IMAGE_BUSY,
        HV_E_MACHINE_EXISTS,
        HV_E_NO_SUCH_MACHINE,
        HV_E_NO_SUCH_JOB,
        HV_E_SOURCE_NOT_ALLOWED,
        HV_E_FETCH_FAILED,
        HV_E_CHECKSUM,
        HV_E_SIZE,
        HV_E_BAD_COMPRESSION,
        HV_E_TOO_LARGE,
        HV_E_BAD_TABLE,
        HV_E_LVM,
        HV_E_NO_SPACE,
        HV_E_LIBVIRT,
        HV_E_CANCELED,
        /* image lists (additions to API.md) */
        HV_E_LIST_INVALID,       /* not JSON, a field missing or bad, created in the future */
        HV_E_SIGNATURE,          /* the S/MIME signature does not verify, or the chain is not trusted */
        HV_E_REVOKED,            /* the signer's certificate is revoked by a CRL in [Lists] CAPath */
        HV_E_ENDORSER,           /* signer or issuer not the pinned DNs, or the list's claim not the signer */
        HV_E_LIST_EXPIRED,
        HV_E_LIST_ROLLBACK,      /* older than the list we have */
        HV_E_LIST_IDENTIFIER,    /* another dc:identifier than the subscription's */
        HV_E_NO_SUCH_SUBSCRIPTION,
        HV_E_SUBSCRIPTION_EXISTS,
        HV_E_IMAGE_EXPIRED,      /* its list dropped it or expired: CreateMachine refuses it */
};

/* An error travels as a negative errno return value plus this record, filled where the
 * problem is known. */
struct hv_error {
        enum hv_kind kind;
        int err; /* positive errno */
        char msg[1024];
};

/* Fills *e (if non-NULL and not yet set) and returns -err (or -EIO when err is 0).
 * ENOSPC and EDQUOT always become HV_E_NO_SPACE. */
int hv_fail(struct hv_error *e, enum hv_kind kind, int err, const char *fmt, ...) HV_PRINTF(4, 5);
/* Same, appending ": strerror(err)" to the message. */
int hv_fail_errno(struct hv_error *e, enum hv_kind kind, int err, const char *fmt, ...) HV_PRINTF(4, 5);
bool hv_error_set(const struct hv_error *e);

/* Image and machine names: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, not "." or "..". */
bool hv_name_valid(const char *name);

/* "64G", "512M", "1T", "4096", "1.5G" is refused; suffixes K/M/G/T (binary), optional "iB"/"B". */
int hv_parse_size(const char *s, uint64_t *ret);
/* Non-negative decimal integer that fits an unsigned int and lies in [min,max]. */
int hv_parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret);
/* "1.9 GiB"; buf of at least 32 bytes. */
const char *hv_format_size(uint64_t bytes, char *buf, size_t len);

uint64_t hv_now_usec(void);      /* CLOCK_REALTIME */
uint64_t hv_mono_usec(void);     /* CLOCK_MONOTONIC */
uint64_t hv_thread_cpu_usec(void); /* the calling thread's CPU time */

/* A token bucket (pure): bytes at `rate` per second, a quarter second's worth of burst. */
struct hv_rate {
        double tokens;
        uint64_t last_usec;
};
/* Takes n bytes at now_usec; returns how long (µs) the taker should wait before the next
 * take so that the bytes of all takers keep to rate. rate 0: no limit (0). */
uint64_t hv_rate_take(struct hv_rate *r, uint64_t now_usec, uint64_t n, uint64_t rate);
int hv_mkdir_p(const char *path, unsigned mode);
int hv_fsync_dir(const char *path);
int hv_fsync_parent(const char *path);
/* Writes the whole buffer at offset; -errno on failure (never 0 bytes without an error). */
int hv_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
int hv_write_all(int fd, const void *buf, size_t len);
/* Writes `content` to `path` as temp + fsync + rename + directory fsync. */
int hv_write_file_atomic(const char *path, const char *content, size_t len, unsigned mode);
/* Reads a small file whole (max bytes); NUL-terminated. */
int hv_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
void hv_hex(const uint8_t *in, size_t n, char *out);
/* Shell-quotes one word into buf at *used ('…', a ' as '\''): sh reads it back as exactly
 * that word. -ENOSPC when it does not fit (4 × strlen + 3 bytes always do). */
int hv_shell_quote(const char *word, char *buf, size_t len, size_t *used);
/* Fault injection for the tests: true when the environment variable HVWGD_FAULT names point
 * (comma-separated). Unset in every real deployment. */
bool hv_fault(const char *point);
/* A random (version 4) UUID, and its 36-character text form (out: 37 bytes). */
void hv_uuid_random(uint8_t u[16]);
void hv_uuid_format(const uint8_t u[16], char *out);
