/* bus_fetch.c: FetchImage. A file:// source is opened on a thread (a FIFO, a device or a slow
 * filesystem must never stall the loop) and the reply waits for it; the job then reads that fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus.h"
#include "errors.h"
#include "fetch.h"
#include "import.h"
#include "log.h"
#include "opts.h"

static void source_check_free(struct source_check *c) {
        free(c->audit);
        hv_conf_snap_unref(c->conf);
        if (c->fd >= 0)
                close(c->fd);
        sd_bus_message_unref(c->msg);
        free(c->source);
        free(c);
}

static struct source_check *check_for_name(struct manager *m, const char *name) {
        for (struct source_check *c = m->checks; c; c = c->next)
                if (strcmp(c->name, name) == 0)
                        return c;
        return NULL;
}

/* Conflicts of a fetch into `name` with what exists or runs; 0 when it may go ahead. */
static int fetch_conflicts(struct manager *m, const char *name, bool replace, sd_bus_error *ret) {
        struct job *other = jobs_find_target(m->jobs, &fetch_kind, name);
        if (other)
                return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is being fetched by job %u", name, other->id);
        if (check_for_name(m, name))
                return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is about to be fetched by another call", name);
        struct image *img = store_find(&m->store, name);
        if (img && !replace)
                return bus_fail(ret, HV_E_IMAGE_EXISTS, "image %s already exists (pass replace=true to replace it)", name);
        if (img)
                return bus_image_busy(m, name, ret);
        return 0;
}

/* A fetch job of source as fp asks (http(s)) that a new one may wait for (job_wait_for goes on
 * to the one that downloads when this one waits itself). */
static struct job *download_of(struct manager *m, const struct job *self, const char *source, const struct fetch_params *fp) {
        for (struct job *j = jobs_first(m->jobs); j; j = j->next)
                if (j != self && j->kind == &fetch_kind && fetch_joinable(j->payload, source, fp))
                        return j;
        return NULL;
}

/* Makes the job (not yet submitted). fd: the opened file source or -1. NULL: out of memory. */
static struct job *make_fetch_job(struct manager *m, const char *name, const char *source, uid_t uid, const struct fetch_params *fp,
                                  int *fd, bool world_readable, const struct image_origin *origin) {
        bool public = *fd < 0 || world_readable;
        struct fetch_job *f = fetch_job_new(name, source, fp, fd, public, m->snap, m->hvwg_gid, &m->store);
        struct job *j = f ? job_new(m->jobs, &fetch_kind, name, f->source_shown, uid, f) : NULL;
        if (!j)
                return NULL;
        if (origin)
                f->origin = *origin;
        /* replacing an image from the same URL: a conditional request, 304 keeps what we have */
        struct image *old = fp->replace ? store_find(&m->store, name) : NULL;
        if (old && old->source && strcmp(old->source, f->source_shown) == 0 && (!fp->sha512[0] || strcmp(fp->sha512, old->sha512) == 0)) {
                snprintf(f->if_none_match, sizeof(f->if_none_match), "%s", old->etag);
                snprintf(f->if_modified_since, sizeof(f->if_modified_since), "%s", old->last_modified);
        }
        /* one download per source: a second name waits for the first download and links it */
        struct job *lead = *fd < 0 && !f->if_none_match[0] && !f->if_modified_since[0] ? download_of(m, j, source, fp) : NULL;
        if (lead) {
                job_wait_for(j, lead);
                log_info("job %u: fetch %s as %s (uid %u): waits for job %u, which downloads it for image %s", j->id, j->source, name,
                         (unsigned)uid, j->after->id, j->after->target);
        } else
                log_info("job %u: fetch %s as %s (uid %u)", j->id, j->source, name, (unsigned)uid);
        return j;
}

/* Makes the job, replies (id, path) to msg and queues it. */
static int start_fetch_job(struct manager *m, sd_bus_message *msg, const char *name, const char *source, uid_t uid,
                           const struct fetch_params *fp, int *fd, bool world_readable) {
        struct job *j = make_fetch_job(m, name, source, uid, fp, fd, world_readable, NULL);
        return j ? bus_announce_job(m, msg, j) : -ENOMEM;
}

int bus_fetch_start(struct manager *m, const char *source, const char *name, const struct fetch_params *fp,
                    const struct image_origin *origin, uint32_t *ret_id, struct hv_error *e) {
        if (m->stopping)
                return hv_fail(e, HV_E_FAILED, ESHUTDOWN, "hvwgd is shutting down");
        enum uri_scheme scheme;
        int r = fetch_check_uri(source, &m->conf, &scheme, e);
        if (r < 0)
                return r;
        if (scheme == URI_FILE)
                return hv_fail(e, HV_E_SOURCE_NOT_ALLOWED, EPERM, "an image list's images are fetched over http(s) only");
        if (jobs_find_target(m->jobs, &fetch_kind, name) || store_find(&m->store, name))
                return hv_fail(e, HV_E_IMAGE_EXISTS, EEXIST, "image %s exists or is being fetched", name);
        if (jobs_count(m->jobs) >= m->conf.max_queued_jobs)
                return hv_fail(e, HV_E_LIMITS, EBUSY, "the job queue is full (MaxQueuedJobs=%u)", m->conf.max_queued_jobs);
        int no_fd = -1;
        struct job *j = make_fetch_job(m, name, source, 0, fp, &no_fd, false, origin);
        if (!j)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory");
        job_submit(j);
        *ret_id = j->id;
        return 0;
}

/* On the loop, when the thread has opened (or failed to open) the source. */
static void source_checked(void *data) {
        struct source_check *c = data;
        struct manager *m = c->m;
        manager_thread_done(m);
        struct source_check **pp = &m->checks;
        while (*pp != c)
                pp = &(*pp)->next;
        *pp = c->next;
        m->n_checks--;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        int r;
        if (c->fd < 0)
                r = bus_reply_error(&err, &c->err);
        else if (m->stopping)
                r = bus_fail(&err, HV_E_FAILED, "hvwgd is shutting down");
        else
                r = start_fetch_job(m, c->msg, c->name, c->source, c->uid, &c->fp, &c->fd, c->world_readable);
        if (r < 0) {
                char shown[HV_URI_MAX + 8];
                uri_redact(c->source, shown, sizeof(shown));
                log_info("FetchImage %s as %s (uid %u) refused: %s", shown, c->name, (unsigned)c->uid,
                         sd_bus_error_is_set(&err) ? err.message : strerror(-r));
                if (sd_bus_error_is_set(&err))
                        sd_bus_reply_method_error(c->msg, &err);
                else
                        sd_bus_reply_method_errnof(c->msg, -r, "cannot start the job: %m");
        }
        if (c->audit)
                audit_end(c->audit, r < 0 ? (sd_bus_error_is_set(&err) ? err.name : "errno") : NULL,
                          r < 0 ? (sd_bus_error_is_set(&err) ? err.message : strerror(-r)) : m->call.note);
        m->call.note[0] = 0; /* bus_announce_job's note, read here outside a handler */
        source_check_free(c);
}

static void *source_check_thread(void *arg) {
        struct source_check *c = arg;
        c->fd = fetch_open_file(c->source, &c->conf->c, &c->err);
        struct stat st;
        c->world_readable = c->fd >= 0 && fstat(c->fd, &st) == 0 && (st.st_mode & S_IROTH);
        if (loop_post(c->m->loop, source_checked, c) < 0)
                log_error("FetchImage: the opened source is lost (out of memory); the caller gets no reply");
        return NULL;
}

int bus_method_fetch_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        const char *source, *name_arg;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        int r;
        if ((r = bus_check_access(m, "FetchImage", &uid, ret)) < 0 || (r = sd_bus_message_read(msg, "ss", &source, &name_arg)) < 0 ||
            (r = bus_check_string(source, "source", ret)) < 0 || (r = bus_check_string(name_arg, "name", ret)) < 0 ||
            (r = bus_read_options(msg, opts, &n_opts, NULL, ret)) < 0)
                return r;
        struct hv_error e = { 0 };
        struct fetch_params fp;
        r = opts_fetch(opts, n_opts, m->conf.max_image_size, strcmp(m->conf.inflate, "zlib") == 0 ? GUNZIP_ZLIB : GUNZIP_ISAL, &fp,
                       &e);
        if (r < 0)
                return bus_reply_error(ret, &e);
        if (m->stopping)
                return bus_fail(ret, HV_E_FAILED, "hvwgd is shutting down");
        enum uri_scheme scheme;
        r = fetch_check_uri(source, &m->conf, &scheme, &e);
        if (r < 0)
                return bus_reply_error(ret, &e);
        char name[80];
        if (*name_arg)
                snprintf(name, sizeof(name), "%s", name_arg);
        else {
                fetch_derive_name(source, name, sizeof(name));
                if (!hv_name_valid(name)) {
                        char shown[HV_URI_MAX + 8];
                        uri_redact(source, shown, sizeof(shown));
                        return bus_fail(ret, HV_E_INVALID_ARGS,
                                        "cannot derive a valid image name from \"%.200s\": pass a name", shown);
                }
        }
        if ((r = bus_check_name(name, "image", ret)) < 0)
                return r;
        /* the same image from the same URL, asked for again while it downloads: a job of this
         * caller's that waits for that download (start_fetch_job) and ends as it does */
        struct job *same = scheme != URI_FILE ? jobs_find_target(m->jobs, &fetch_kind, name) : NULL;
        const struct fetch_job *sf = same ? same->payload : NULL;
        bool join_same = sf && fetch_joinable(sf, source, &fp) && !sf->if_none_match[0] && !sf->if_modified_since[0];
        if ((!join_same && (r = fetch_conflicts(m, name, fp.replace, ret)) < 0) || (r = bus_check_quota(m, uid, ret)) < 0)
                return r;
        int no_fd = -1;
        if (scheme != URI_FILE)
                return start_fetch_job(m, msg, name, source, uid, &fp, &no_fd, false);
        struct source_check *c = calloc(1, sizeof(*c));
        if (!c || !(c->source = strdup(source))) {
                free(c);
                return -ENOMEM;
        }
        c->m = m;
        c->conf = hv_conf_snap_ref(m->snap);
        c->msg = sd_bus_message_ref(msg);
        c->uid = uid;
        c->fp = fp;
        c->fd = -1;
        snprintf(c->name, sizeof(c->name), "%.64s", name); /* checked: at most 64 */
        pthread_t t;
        if (pthread_create(&t, NULL, source_check_thread, c) != 0) {
                source_check_free(c);
                return bus_fail(ret, HV_E_FAILED, "cannot start a thread to open the source");
        }
        pthread_detach(t);
        manager_thread_started(m);
        c->audit = bus_audit_defer(m);
        c->next = m->checks;
        m->checks = c;
        m->n_checks++;
        return 1; /* the reply comes from source_checked() */
}

