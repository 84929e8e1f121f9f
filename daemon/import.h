/* import.h: the fetch job kind (FetchImage): read + SHA-512 | inflate | sparse write, verify,
 * inspect, publish into the image store. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "conf.h"
#include "job.h"
#include "opts.h"
#include "store.h"

struct fetch_job {
        char target[HV_NAME_MAX + 1];
        char *source;          /* as the caller gave it: only the transfer uses it */
        char *source_shown;    /* redacted: logs, metadata, messages */
        int source_fd;         /* file://: the source opened when the call was checked, else -1 */
        bool source_public;    /* a digest of it may be shown to anyone (http(s), world-readable file) */
        struct fetch_params fp;
        struct hv_conf_snap *conf;
        gid_t group;           /* published images are 0440 root:group ((gid_t)-1: 0400) */
        struct store *store;   /* the loop's: finished() inserts the published image */
        char if_none_match[256], if_modified_since[64]; /* replace of an image from the same URL */
        bool not_modified;     /* the source answered 304: nothing was written */
        struct image_origin origin; /* a subscription's image: recorded in its metadata */
        struct image *image;
        /* import_join.c: what the download this job waited for left (set on the loop before
         * this job starts): a second name of its image, or its failure */
        char join_from[HV_NAME_MAX + 1]; /* the image's name, or the failed job's id */
        struct image *join_image;
        bool join_failed;
        struct hv_error join_error;
};

extern const struct job_kind fetch_kind;

/* import_join.c. Whether a fetch of source with fp may wait for job a's download instead of
 * downloading again: the same http(s) URL, compression and no contradicting sha512/size. */
bool fetch_joinable(const struct fetch_job *a, const char *source, const struct fetch_params *fp);
/* kind->joined of fetch_kind. */
bool fetch_joined(void *payload, struct job *leader, int result);
/* Worker: publishes the joined download's image under this job's name, or fails as it did.
 * -EAGAIN: the image went away meanwhile; download after all. */
int fetch_join_run(struct job_ctl *ctl, struct fetch_job *j, struct hv_error *e);

/* A payload for fetch_kind; takes over *fd (set to -1). NULL: out of memory. */
struct fetch_job *fetch_job_new(const char *target, const char *source, const struct fetch_params *fp, int *fd, bool source_public,
                                struct hv_conf_snap *conf, gid_t group, struct store *store);
