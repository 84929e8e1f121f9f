/* bus.c: the D-Bus surface (shared/API.md): Manager and Job vtables, argument validation,
 * access checks and the one place where internal errors become D-Bus error names. Handlers
 * parse, check, hand work to a job and reply; they never do the work. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>

#include "fetch.h"
#include "log.h"
#include "manager.h"
#include "opts.h"
#include "scratch.h"

#define MAX_STRING 4096

/* A FetchImage call whose file:// source is opened on a thread (a FIFO, a device or a slow
 * filesystem must never stall the loop); the reply waits for it. It holds the image name. */
struct source_check {
        struct manager *m;
        struct hv_conf_snap *conf;
        sd_bus_message *msg;
        char name[HV_NAME_MAX + 1];
        char *source;
        uid_t uid;
        struct fetch_params fp;
        int fd;
        bool world_readable;
        struct hv_error err;
        struct source_check *next;
};

static int reply_error(sd_bus_error *ret, const struct hv_error *e) {
        return sd_bus_error_set(ret, hv_error_name(e), e->msg[0] ? e->msg : strerror(e->err));
}

/* Mutating calls: root, or a member of the group hvwg. The bus policy says the same; this is
 * the second lock, from the caller's credentials. */
static int check_access(struct manager *m, sd_bus_message *msg, const char *what, uid_t *ret_uid, sd_bus_error *ret) {
        sd_bus_creds *c = NULL;
        int r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                                       SD_BUS_CREDS_AUGMENT, &c);
        if (r < 0)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_ACCESS_DENIED, "%s: cannot determine the caller's credentials", what);
        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;
        bool ok = false;
        if (sd_bus_creds_get_euid(c, &uid) >= 0 && uid == 0)
                ok = true;
        if (!ok && m->hvwg_gid != (gid_t)-1) {
                if (sd_bus_creds_get_egid(c, &gid) >= 0 && gid == m->hvwg_gid)
                        ok = true;
                const gid_t *gids = NULL;
                int n = sd_bus_creds_get_supplementary_gids(c, &gids);
                for (int i = 0; i < n && !ok; i++)
                        if (gids[i] == m->hvwg_gid)
                                ok = true;
        }
        sd_bus_creds_unref(c);
        if (!ok)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s is allowed only to root and members of the group hvwg (caller uid %ld)", what,
                                         (long)(int)uid);
        if (ret_uid)
                *ret_uid = uid;
        return 1;
}

static int check_string(const char *s, const char *what, sd_bus_error *ret) {
        if (strlen(s) > MAX_STRING)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_INVALID_ARGS, "%s is longer than %d bytes", what, MAX_STRING);
        return 0;
}

static int check_name(const char *name, const char *what, sd_bus_error *ret) {
        if (!hv_name_valid(name))
                return sd_bus_error_setf(ret, SD_BUS_ERROR_INVALID_ARGS,
                                         "invalid %s name \"%.80s\": use 1-64 characters A-Z a-z 0-9 . _ -, starting with a letter or digit",
                                         what, name);
        return 0;
}

/* The first argument of a method: an image or machine name, validated. */
static int read_name(sd_bus_message *msg, const char *what, const char **name, sd_bus_error *ret) {
        int r = sd_bus_message_read(msg, "s", name);
        if (r < 0)
                return r;
        return check_name(*name, what, ret);
}

/* Sends a reply built step by step (r: the result of building it) and drops it. */
static int send_reply(sd_bus_message *reply, int r) {
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        sd_bus_message_unref(reply);
        return r;
}

/* ---- Manager properties ---- */

static int prop_conf_string(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply,
                            void *ud, sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)err;
        struct manager *m = ud;
        const char *v = "";
        if (strcmp(prop, "Version") == 0)
                v = HVWGD_VERSION;
        else if (strcmp(prop, "ImageRoot") == 0)
                v = m->conf.image_root;
        else if (strcmp(prop, "MachineRoot") == 0)
                v = m->conf.machine_root;
        else if (strcmp(prop, "LibvirtURI") == 0)
                v = m->conf.libvirt_uri;
        else if (strcmp(prop, "Hypervisor") == 0)
                v = m->hypervisor;
        return sd_bus_message_append(reply, "s", v);
}

static int prop_conf_u64(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply,
                         void *ud, sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)err;
        struct manager *m = ud;
        uint64_t v = 0;
        if (strcmp(prop, "ScratchPerCoreGiB") == 0)
                v = m->conf.scratch_per_core_gib;
        else if (strcmp(prop, "MemoryPerCoreMiB") == 0)
                v = m->conf.memory_per_core_mib;
        else if (strcmp(prop, "MaxImageSize") == 0)
                v = m->conf.max_image_size;
        return sd_bus_message_append(reply, "t", v);
}

static int prop_active_jobs(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply,
                            void *ud, sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)prop; (void)err;
        return sd_bus_message_append(reply, "u", job_count_active(ud));
}

/* ---- Manager methods ---- */

/* Options: the a{sv} dictionary read into opt_value entries (strings point into msg); what the
 * keys mean and whether they are right is opts.c's (pure) business. */
static int read_options(sd_bus_message *msg, struct opt_value *v, size_t *n, sd_bus_error *ret) {
        *n = 0;
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                if (*n == OPTS_MAX)
                        return sd_bus_error_setf(ret, SD_BUS_ERROR_INVALID_ARGS, "more than %d options", OPTS_MAX);
                struct opt_value *o = &v[(*n)++];
                const char *type = NULL;
                char t;
                if ((r = sd_bus_message_read(msg, "s", &o->key)) < 0 || (r = sd_bus_message_peek_type(msg, &t, &type)) < 0)
                        return r;
                o->type = type && strlen(type) == 1 ? type[0] : '?';
                int b = 0;
                if (o->type == 's')
                        r = sd_bus_message_read(msg, "v", "s", &o->s);
                else if (o->type == 't')
                        r = sd_bus_message_read(msg, "v", "t", &o->t);
                else if (o->type == 'b') {
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        o->b = b;
                } else
                        r = sd_bus_message_skip(msg, "v");
                if (r < 0 || (r = sd_bus_message_exit_container(msg)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* Bounds at call time: non-root callers may have JobsPerUser jobs at once (queued or running),
 * and the queue as a whole holds MaxQueuedJobs (root's jobs too). Calls whose source is still
 * being opened count as jobs. */
static int check_quota(struct manager *m, uid_t uid, sd_bus_error *ret) {
        unsigned mine = 0, all = m->n_checks;
        for (struct job *j = m->jobs; j; j = j->next) {
                mine += j->owner == uid;
                all++;
        }
        for (struct source_check *c = m->checks; c; c = c->next)
                mine += c->uid == uid;
        if (all >= m->conf.max_queued_jobs)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "the job queue is full: %u jobs (MaxQueuedJobs=%u); try again when some have ended", all,
                                         m->conf.max_queued_jobs);
        if (uid != 0 && mine >= m->conf.jobs_per_user)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_LIMITS_EXCEEDED, "uid %u already has %u jobs (JobsPerUser=%u)", (unsigned)uid,
                                         mine, m->conf.jobs_per_user);
        return 0;
}

static struct job *job_for_target(struct manager *m, enum job_type type, const char *name) {
        for (struct job *j = m->jobs; j; j = j->next)
                if (j->type == type && strcmp(j->target, name) == 0)
                        return j;
        return NULL;
}

/* An image may not be removed or replaced while a machine or a create job uses it. */
static int image_busy(struct manager *m, const char *name, sd_bus_error *ret) {
        for (struct job *j = m->jobs; j; j = j->next)
                if (j->type == JOB_CREATE && strcmp(j->create.image, name) == 0)
                        return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is being copied by job %u", name, j->id);
        if (machine_image_in_use(m, name))
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is used by a machine", name);
        return 0;
}

/* Announces a job just made (JobNew, ActiveJobs), replies (id, path) and queues it. */
static int announce_job(struct manager *m, sd_bus_message *msg, struct job *j) {
        bus_emit_job_new(m, j);
        bus_emit_active_jobs(m);
        int r = sd_bus_reply_method_return(msg, "uo", j->id, j->path);
        job_schedule(m);
        return r;
}

static void source_check_free(struct source_check *c) {
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
        struct job *other = job_for_target(m, JOB_FETCH, name);
        if (other)
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is being fetched by job %u", name, other->id);
        if (check_for_name(m, name))
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is about to be fetched by another call", name);
        struct image *img = store_find(&m->store, name);
        if (img && !replace)
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_EXISTS, "image %s already exists (pass replace=true to replace it)", name);
        if (img)
                return image_busy(m, name, ret);
        return 0;
}

/* Makes the job, replies (id, path) to msg and queues it. fd: the opened file source or -1. */
static int start_fetch_job(struct manager *m, sd_bus_message *msg, const char *name, const char *source, uid_t uid,
                           const struct fetch_params *fp, int *fd, bool world_readable) {
        struct job *j = job_new(m, JOB_FETCH, name, source, uid);
        if (!j)
                return -ENOMEM;
        j->fetch = *fp;
        j->source_fd = *fd;
        j->source_public = *fd < 0 || world_readable;
        *fd = -1;
        log_info("job %u: fetch %s as %s (uid %u)", j->id, j->source_shown, name, (unsigned)uid);
        return announce_job(m, msg, j);
}

/* On the loop, when the thread has opened (or failed to open) the source. */
static void source_checked(struct manager *m, void *data) {
        struct source_check *c = data;
        struct source_check **pp = &m->checks;
        while (*pp != c)
                pp = &(*pp)->next;
        *pp = c->next;
        m->n_checks--;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        int r;
        if (c->fd < 0)
                r = reply_error(&err, &c->err);
        else if (m->stopping)
                r = sd_bus_error_setf(&err, SD_BUS_ERROR_FAILED, "hvwgd is shutting down");
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
        source_check_free(c);
}

static void *source_check_thread(void *arg) {
        struct source_check *c = arg;
        c->fd = fetch_open_file(c->source, &c->conf->c, &c->err);
        struct stat st;
        c->world_readable = c->fd >= 0 && fstat(c->fd, &st) == 0 && (st.st_mode & S_IROTH);
        manager_post(c->m, source_checked, c);
        return NULL;
}

static int method_fetch_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        int r = check_access(m, msg, "FetchImage", &uid, ret);
        if (r < 0)
                return r;
        const char *source, *name_arg;
        r = sd_bus_message_read(msg, "ss", &source, &name_arg);
        if (r < 0)
                return r;
        if ((r = check_string(source, "source", ret)) < 0 || (r = check_string(name_arg, "name", ret)) < 0)
                return r;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        if ((r = read_options(msg, opts, &n_opts, ret)) < 0)
                return r;
        struct hv_error e = { 0 };
        struct fetch_params fp;
        r = opts_fetch(opts, n_opts, m->conf.max_image_size, strcmp(m->conf.inflate, "zlib") == 0 ? GUNZIP_ZLIB : GUNZIP_ISAL, &fp,
                       &e);
        if (r < 0)
                return reply_error(ret, &e);
        if (m->stopping)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "hvwgd is shutting down");
        enum uri_scheme scheme;
        r = fetch_check_uri(source, &m->conf, &scheme, &e);
        if (r < 0)
                return reply_error(ret, &e);
        char name[80];
        if (*name_arg)
                snprintf(name, sizeof(name), "%s", name_arg);
        else {
                fetch_derive_name(source, name, sizeof(name));
                if (!hv_name_valid(name)) {
                        char shown[HV_URI_MAX + 8];
                        uri_redact(source, shown, sizeof(shown));
                        return sd_bus_error_setf(ret, SD_BUS_ERROR_INVALID_ARGS,
                                                 "cannot derive a valid image name from \"%.200s\": pass a name", shown);
                }
        }
        if ((r = check_name(name, "image", ret)) < 0)
                return r;
        if ((r = fetch_conflicts(m, name, fp.replace, ret)) < 0 || (r = check_quota(m, uid, ret)) < 0)
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
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "cannot start a thread to open the source");
        }
        pthread_detach(t);
        c->next = m->checks;
        m->checks = c;
        m->n_checks++;
        return 1; /* the reply comes from source_checked() */
}

static int method_list_images(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sttts)");
        for (struct image *i = m->store.images; i && r >= 0; i = i->next)
                r = sd_bus_message_append(reply, "(sttts)", i->name, i->size, i->allocated, i->created_usec,
                                          i->source ? i->source : "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return send_reply(reply, r);
}

static int method_inspect_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        const char *name;
        int r = read_name(msg, "image", &name, ret);
        if (r < 0)
                return r;
        struct image *img = store_find(&m->store, name);
        if (!img)
                return sd_bus_error_setf(ret, HV_ERROR_NO_SUCH_IMAGE, "no image named %s", name);
        if (!img->table)
                return sd_bus_error_setf(ret, HV_ERROR_BAD_PARTITION_TABLE,
                                         "image %s could not be inspected (see the daemon log)", name);
        sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "st", "mbr", img->size);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(uybtts)");
        for (unsigned i = 0; i < img->table->n && r >= 0; i++) {
                const struct mbr_part *p = &img->table->parts[i];
                r = sd_bus_message_append(reply, "(uybtts)", p->number, p->type, (int)p->bootable, p->offset, p->size, p->fs);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return send_reply(reply, r);
}

static int method_remove_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        int r = check_access(m, msg, "RemoveImage", NULL, ret);
        if (r < 0)
                return r;
        const char *name;
        if ((r = read_name(msg, "image", &name, ret)) < 0)
                return r;
        struct job *j = job_for_target(m, JOB_FETCH, name);
        if (j && store_find(&m->store, name))
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is being replaced by job %u", name, j->id);
        if (store_find(&m->store, name) && (r = image_busy(m, name, ret)) < 0)
                return r;
        struct hv_error e = { 0 };
        r = store_remove(&m->store, name, &e);
        if (r < 0)
                return reply_error(ret, &e);
        log_info("image %s removed", name);
        return sd_bus_reply_method_return(msg, "");
}

static int method_list_jobs(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(usssdo)");
        for (struct job *j = m->jobs; j && r >= 0; j = j->next) {
                pthread_mutex_lock(&j->mtx);
                const char *phase = j->phase;
                pthread_mutex_unlock(&j->mtx);
                r = sd_bus_message_append(reply, "(usssdo)", j->id, job_type_name(j->type), j->target, phase, job_progress(j), j->path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return send_reply(reply, r);
}

static int method_cancel_job(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        int r = check_access(m, msg, "CancelJob", NULL, ret);
        if (r < 0)
                return r;
        uint32_t id;
        r = sd_bus_message_read(msg, "u", &id);
        if (r < 0)
                return r;
        struct job *j = job_find(m, id);
        if (!j)
                return sd_bus_error_setf(ret, HV_ERROR_NO_SUCH_JOB, "no job with id %u", id);
        log_info("job %u: cancel requested", id);
        job_cancel(j);
        return sd_bus_reply_method_return(msg, "");
}

static int method_create_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        int r = check_access(m, msg, "CreateMachine", &uid, ret);
        if (r < 0)
                return r;
        const char *image, *name;
        uint32_t cores;
        r = sd_bus_message_read(msg, "ssu", &image, &name, &cores);
        if (r < 0)
                return r;
        if ((r = check_name(image, "image", ret)) < 0 || (r = check_name(name, "machine", ret)) < 0)
                return r;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        if ((r = read_options(msg, opts, &n_opts, ret)) < 0)
                return r;
        const struct create_defaults defaults = {
                .hypervisor = m->hypervisor,
                .scratch_fs = m->conf.scratch_filesystem,
                .network = m->conf.network,
                .online_cpus = sysconf(_SC_NPROCESSORS_ONLN),
                .cpu_overcommit = m->conf.cpu_overcommit,
                .memory_per_core_mib = m->conf.memory_per_core_mib,
                .scratch_per_core_gib = m->conf.scratch_per_core_gib,
                .max_scratch_size = m->conf.max_scratch_size,
        };
        struct create_params cp;
        struct hv_error e = { 0 };
        if ((r = opts_create(opts, n_opts, cores, &defaults, &cp, &e)) < 0)
                return reply_error(ret, &e);
        if (m->stopping)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "hvwgd is shutting down");
        if (!store_find(&m->store, image))
                return sd_bus_error_setf(ret, HV_ERROR_NO_SUCH_IMAGE, "no image named %s", image);
        struct job *other = job_for_target(m, JOB_FETCH, image);
        if (other)
                return sd_bus_error_setf(ret, HV_ERROR_IMAGE_BUSY, "image %s is being replaced by job %u", image, other->id);
        if (machine_exists(m, name) || job_for_target(m, JOB_CREATE, name))
                return sd_bus_error_setf(ret, HV_ERROR_MACHINE_EXISTS, "machine %s already exists", name);
        if ((r = check_quota(m, uid, ret)) < 0)
                return r;
        snprintf(cp.image, sizeof(cp.image), "%s", image);
        snprintf(cp.image_path, sizeof(cp.image_path), "%s/%s.raw", m->conf.image_root, image);
        struct job *j = job_new(m, JOB_CREATE, name, image, uid);
        if (!j)
                return -ENOMEM;
        j->create = cp;
        log_info("job %u: create machine %s from %s: %u cores, %llu MiB, scratch %llu GiB, %s (uid %u)", j->id, name, image, cores,
                 (unsigned long long)cp.memory_mib, (unsigned long long)(cp.scratch_bytes >> 30), dom_hv_name(cp.hv), (unsigned)uid);
        return announce_job(m, msg, j);
}

static int method_list_machines(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = machine_append_list(m, reply);
        return send_reply(reply, r);
}

static int method_destroy_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        int r = check_access(m, msg, "DestroyMachine", NULL, ret);
        if (r < 0)
                return r;
        const char *name;
        if ((r = read_name(msg, "machine", &name, ret)) < 0)
                return r;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        if ((r = read_options(msg, opts, &n_opts, ret)) < 0)
                return r;
        bool keep;
        struct hv_error e = { 0 };
        if ((r = opts_destroy(opts, n_opts, &keep, &e)) < 0)
                return reply_error(ret, &e);
        struct job *j = job_for_target(m, JOB_CREATE, name);
        if (j)
                return sd_bus_error_setf(ret, SD_BUS_ERROR_FAILED, "machine %s is being created by job %u: cancel that job instead", name,
                                         j->id);
        log_info("destroying machine %s%s", name, keep ? " (keeping its disks)" : "");
        return machine_destroy(m, msg, name, keep, ret);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", prop_conf_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ImageRoot", "s", prop_conf_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MachineRoot", "s", prop_conf_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LibvirtURI", "s", prop_conf_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Hypervisor", "s", prop_conf_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ScratchPerCoreGiB", "t", prop_conf_u64, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MemoryPerCoreMiB", "t", prop_conf_u64, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxImageSize", "t", prop_conf_u64, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ActiveJobs", "u", prop_active_jobs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("FetchImage", "ssa{sv}", SD_BUS_PARAM(source) SD_BUS_PARAM(name) SD_BUS_PARAM(options),
                                 "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_fetch_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListImages", "", , "a(sttts)", SD_BUS_PARAM(images), method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("InspectImage", "s", SD_BUS_PARAM(name), "sta(uybtts)",
                                 SD_BUS_PARAM(table) SD_BUS_PARAM(size) SD_BUS_PARAM(partitions), method_inspect_image,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveImage", "s", SD_BUS_PARAM(name), "", , method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CreateMachine", "ssua{sv}", SD_BUS_PARAM(image) SD_BUS_PARAM(name) SD_BUS_PARAM(cores) SD_BUS_PARAM(options),
                                 "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_create_machine, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListMachines", "", , "a(ssuttss)", SD_BUS_PARAM(machines), method_list_machines, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DestroyMachine", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options), "", , method_destroy_machine,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListJobs", "", , "a(usssdo)", SD_BUS_PARAM(jobs), method_list_jobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CancelJob", "u", SD_BUS_PARAM(id), "", , method_cancel_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("JobNew", "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobRemoved", "uosss",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(path) SD_BUS_PARAM(result) SD_BUS_PARAM(error_name) SD_BUS_PARAM(error_message), 0),
        SD_BUS_SIGNAL_WITH_NAMES("MachineStateChanged", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(state), 0),
        SD_BUS_VTABLE_END
};

/* ---- Job objects ---- */

static int job_prop(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud,
                    sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)err;
        struct job *j = ud;
        if (strcmp(prop, "Id") == 0)
                return sd_bus_message_append(reply, "u", j->id);
        if (strcmp(prop, "Type") == 0)
                return sd_bus_message_append(reply, "s", job_type_name(j->type));
        if (strcmp(prop, "Target") == 0)
                return sd_bus_message_append(reply, "s", j->target);
        if (strcmp(prop, "Source") == 0)
                return sd_bus_message_append(reply, "s", j->source_shown);
        if (strcmp(prop, "Progress") == 0)
                return sd_bus_message_append(reply, "d", job_progress(j));
        pthread_mutex_lock(&j->mtx);
        const char *phase = j->phase;
        uint64_t done = j->bytes_done, total = j->bytes_total;
        pthread_mutex_unlock(&j->mtx);
        if (strcmp(prop, "Phase") == 0)
                return sd_bus_message_append(reply, "s", phase);
        if (strcmp(prop, "BytesDone") == 0)
                return sd_bus_message_append(reply, "t", done);
        return sd_bus_message_append(reply, "t", total);
}

static int job_method_cancel(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct job *j = ud;
        int r = check_access(j->mgr, msg, "Job.Cancel", NULL, ret);
        if (r < 0)
                return r;
        log_info("job %u: cancel requested", j->id);
        job_cancel(j);
        return sd_bus_reply_method_return(msg, "");
}

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Type", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Target", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Source", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Phase", "s", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "d", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDone", "t", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesTotal", "t", job_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Cancel", "", "", job_method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int job_object_find(sd_bus *bus, const char *path, const char *iface, void *ud, void **found, sd_bus_error *err) {
        (void)bus; (void)iface; (void)err;
        struct job *j = job_find_by_path(ud, path);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *ud, char ***nodes, sd_bus_error *err) {
        (void)bus; (void)path; (void)err;
        struct manager *m = ud;
        size_t n = 0;
        for (struct job *j = m->jobs; j; j = j->next)
                n++;
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        size_t i = 0;
        for (struct job *j = m->jobs; j; j = j->next) {
                if (!(l[i] = strdup(j->path))) {
                        for (size_t k = 0; k < i; k++)
                                free(l[k]);
                        free(l);
                        return -ENOMEM;
                }
                i++;
        }
        *nodes = l;
        return 0;
}

void bus_emit_job_new(struct manager *m, struct job *j) {
        int r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "JobNew", "uo", j->id, j->path);
        if (r < 0)
                log_warning("cannot emit JobNew: %s", strerror(-r));
}

void bus_emit_job_changed(struct manager *m, struct job *j) {
        int r = sd_bus_emit_properties_changed(m->bus, j->path, HV_JOB_IFACE, "Phase", "Progress", "BytesDone", "BytesTotal", NULL);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged for job %u: %s", j->id, strerror(-r));
}

void bus_emit_job_removed(struct manager *m, struct job *j, const char *result) {
        bool failed = strcmp(result, "failed") == 0;
        int r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "JobRemoved", "uosss", j->id, j->path, result,
                                   failed ? hv_error_name(&j->err) : "", failed ? j->err.msg : "");
        if (r < 0)
                log_warning("cannot emit JobRemoved: %s", strerror(-r));
}

void bus_emit_active_jobs(struct manager *m) {
        int r = sd_bus_emit_properties_changed(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "ActiveJobs", NULL);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged: %s", strerror(-r));
}

int bus_setup(struct manager *m) {
        struct group *g = getgrnam("hvwg");
        m->hvwg_gid = g ? g->gr_gid : (gid_t)-1;
        if (!g)
                log_info("group hvwg does not exist: only root may change state");
        int r = sd_bus_add_object_vtable(m->bus, NULL, HV_OBJ_PATH, HV_MANAGER_IFACE, manager_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, HV_JOB_PREFIX, HV_JOB_IFACE, job_vtable, job_object_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(m->bus, NULL, HV_JOB_PREFIX, job_node_enumerator, m);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(m->bus, NULL, HV_OBJ_PATH);
}
