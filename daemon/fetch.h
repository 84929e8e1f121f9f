/* fetch.h: image sources: http(s) through libcurl, file:// confined to AllowedSourceDirs. */
#pragma once
#include <stdatomic.h>

#include "conf.h"

#define HV_USER_AGENT "hvwgd/" HVWGD_VERSION

typedef int (*fetch_data_fn)(void *userdata, const uint8_t *p, size_t n, struct hv_error *e);
typedef int (*fetch_total_fn)(void *userdata, uint64_t total, struct hv_error *e);

struct fetch_req {
        const char *uri;
        const struct hv_conf *conf;
        atomic_bool *cancel;
        fetch_data_fn data;    /* every byte of the source, in order */
        fetch_total_fn total;  /* the source's size, once known (file size, Content-Length) */
        void *userdata;
};

enum fetch_scheme { FETCH_HTTP, FETCH_FILE };

/* Checks the scheme, and for file:// that the file opens beneath an allowed directory.
 * Refusals: SourceNotAllowed, InvalidArgs; a missing file is FetchFailed. */
int fetch_check_uri(const char *uri, const struct hv_conf *c, enum fetch_scheme *scheme, struct hv_error *e);
/* The image name a source implies: its basename without .gz, then .raw/.img. "" if none. */
void fetch_derive_name(const char *uri, char *buf, size_t len);
/* Streams the source to req->data on the calling thread. Cancel is seen within ~100 ms. */
int fetch_run(const struct fetch_req *req, struct hv_error *e);
/* Once per process, before threads. */
int fetch_global_init(void);
