/* fetch.h: image sources: http(s) through libcurl, file:// confined to AllowedSourceDirs. */
#pragma once
#include <stdatomic.h>

#include "conf.h"
#include "uri.h"

#define HV_USER_AGENT "hvwgd/" HVWGD_VERSION

typedef int (*fetch_data_fn)(void *userdata, const uint8_t *p, size_t n, struct hv_error *e);
typedef int (*fetch_total_fn)(void *userdata, uint64_t total, struct hv_error *e);

struct fetch_req {
        const char *uri;       /* as the caller gave it: used for the transfer only */
        const char *uri_shown; /* redacted (uri_redact): the only form any message holds */
        int fd;                /* file://: the source opened by fetch_open_file(); not closed here */
        const struct hv_conf *conf;
        atomic_bool *cancel;
        fetch_data_fn data;    /* every byte of the source, in order */
        fetch_total_fn total;  /* the source's size, once known (file size, Content-Length) */
        /* http(s): a conditional request (replace of an image from the same URL): a 304 makes
         * fetch_run return -EALREADY ("not modified"). NULL or "": unconditional. */
        const char *if_none_match, *if_modified_since;
        /* http(s): the response's ETag and Last-Modified ("" when absent), for the metadata */
        void (*validators)(void *userdata, const char *etag, const char *last_modified);
        /* http(s): a try failed and another follows after delay_sec (may be NULL) */
        void (*retrying)(void *userdata, unsigned attempt, unsigned max, unsigned delay_sec, const char *why);
        void *userdata;
};

/* Pure (no I/O, safe on the event loop): the URI's characters and scheme, and for file:// that
 * its path lies under an allowed directory. Refusals: InvalidArgs, SourceNotAllowed. */
int fetch_check_uri(const char *uri, const struct hv_conf *c, enum uri_scheme *scheme, struct hv_error *e);
/* Opens a file:// source beneath its allowed directory (never on the event loop: the path may
 * sit on a slow filesystem). Opens non-blocking, so a FIFO or device cannot block, and refuses
 * anything but a regular file. The fd (blocking again, O_CLOEXEC) is the source from then on:
 * swapping the path afterwards changes nothing. A missing file is FetchFailed. */
int fetch_open_file(const char *uri, const struct hv_conf *c, struct hv_error *e);
/* Opens rel beneath dirfd for reading (O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC), refusing with
 * -EXDEV any ".." or symlink that leads out and any absolute symlink. With use_openat2 it asks
 * the kernel (openat2 RESOLVE_BENEATH); without, or where a seccomp filter answers openat2 with
 * ENOSYS/EPERM (systemd's RestrictSUIDSGID= does), it walks the path one component at a time
 * with O_PATH|O_NOFOLLOW and resolves symlinks itself by the same rules. fd or -errno. */
int fetch_open_beneath(int dirfd, const char *rel, bool use_openat2);
/* The image name a source implies: its basename without .gz, then .raw/.img. "" if none. */
void fetch_derive_name(const char *uri, char *buf, size_t len);
/* Streams the source to req->data on the calling thread. Cancel is seen within ~100 ms.
 * http(s): a dropped connection, a stall or a 5xx is tried again ([Fetch] Retries, backoff with
 * jitter up to RetryMaxDelaySec), continuing with Range: from the byte where the stream
 * stopped, guarded by If-Range: with the first response's ETag (or Last-Modified); so the
 * stream stays one stream. Where that cannot be (a server that ignores Range, a validator that
 * changed, none at all) it returns -ERESTART: the caller starts over from byte 0. */
int fetch_run(const struct fetch_req *req, struct hv_error *e);
/* fetch_http.c: the http(s) part of fetch_run. */
int fetch_http(const struct fetch_req *req, struct hv_error *e);
/* Once per process, before threads. */
int fetch_global_init(void);
