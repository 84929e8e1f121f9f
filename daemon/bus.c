/* bus.c: the Manager object of the D-Bus surface (shared/API.md): properties, methods,
 * argument and access checks. Handlers parse, check, hand work to a job (or a thread) and
 * reply; they never do the work. Internal errors become D-Bus names in errors.c, the one mapping. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>

#include "bus.h"
#include "errors.h"
#include "fetch.h"
#include "import.h"
#include "log.h"
#include "machine_ops.h"
#include "opts.h"

#define MAX_STRING 4096

int bus_fail(sd_bus_error *ret, enum hv_kind kind, const char *fmt, ...) {
        struct hv_error e = { .kind = kind, .err = EINVAL };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
        va_end(ap);
        return bus_reply_error(ret, &e);
}

int bus_reply_error(sd_bus_error *ret, const struct hv_error *e) {
        return sd_bus_error_set(ret, hv_error_name(e), e->msg[0] ? e->msg : strerror(e->err));
}

int bus_check_string(const char *s, const char *what, sd_bus_error *ret) {
        if (strlen(s) > MAX_STRING)
                return bus_fail(ret, HV_E_INVALID_ARGS, "%s is longer than %d bytes", what, MAX_STRING);
        return 0;
}

int bus_check_name(const char *name, const char *what, sd_bus_error *ret) {
        if (!hv_name_valid(name))
                return bus_fail(ret, HV_E_INVALID_ARGS,
                                "invalid %s name \"%.80s\": use 1-64 characters A-Z a-z 0-9 . _ -, starting with a letter or digit",
                                what, name);
        return 0;
}

/* The first argument of a method: an image or machine name, validated. */
static int read_name(sd_bus_message *msg, const char *what, const char **name, sd_bus_error *ret) {
        int r = sd_bus_message_read(msg, "s", name);
        if (r < 0)
                return r;
        return bus_check_name(*name, what, ret);
}

int bus_open_dict_array(sd_bus_message *reply, const char *key, const char *element) {
        char sig[32];
        snprintf(sig, sizeof(sig), "a%s", element);
        int r = sd_bus_message_open_container(reply, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'v', sig);
        return r < 0 ? r : sd_bus_message_open_container(reply, 'a', element);
}

int bus_close_dict_array(sd_bus_message *reply) {
        int r = 0;
        for (int i = 0; i < 3 && r >= 0; i++)
                r = sd_bus_message_close_container(reply);
        return r;
}

int bus_read_image(struct manager *m, sd_bus_message *msg, const char **name, struct image **img, sd_bus_error *ret) {
        int r = read_name(msg, "image", name, ret);
        if (r < 0)
                return r;
        if (!(*img = store_find(&m->store, *name)))
                return bus_fail(ret, HV_E_NO_SUCH_IMAGE, "no image named %s", *name);
        return 0;
}

/* Sends a reply built step by step (r: the result of building it). */
static int send_reply(sd_bus_message *reply, int r) {
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
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
        return sd_bus_message_append(reply, "u", jobs_count(((struct manager *)ud)->jobs));
}

/* ---- Manager methods ---- */

/* The context's a{ss} or a{say} value: pairs into p (strings and bytes point into msg). */
static int read_pairs(sd_bus_message *msg, bool bytes, struct context_pair *p, size_t *n, const char *key, sd_bus_error *ret) {
        int r = sd_bus_message_enter_container(msg, 'v', bytes ? "a{say}" : "a{ss}");
        if (r >= 0)
                r = sd_bus_message_enter_container(msg, 'a', bytes ? "{say}" : "{ss}");
        while (r >= 0 && (r = sd_bus_message_enter_container(msg, 'e', bytes ? "say" : "ss")) > 0) {
                if (*n == CONTEXT_MAX_ENTRIES)
                        return bus_fail(ret, HV_E_INVALID_ARGS, "%s has more than %d entries", key, CONTEXT_MAX_ENTRIES);
                struct context_pair *e = &p[(*n)++];
                if ((r = sd_bus_message_read(msg, "s", &e->key)) < 0)
                        return r;
                if (bytes) {
                        const void *d = NULL;
                        r = sd_bus_message_read_array(msg, 'y', &d, &e->value.len);
                        e->value.data = d;
                } else {
                        const char *v = NULL;
                        r = sd_bus_message_read(msg, "s", &v);
                        e->value = (struct context_blob){ (const uint8_t *)v, v ? strlen(v) : 0 };
                }
                if (r < 0 || (r = sd_bus_message_exit_container(msg)) < 0)
                        return r;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        return r < 0 ? r : sd_bus_message_exit_container(msg);
}

/* ay: user_data, network_config. */
static int read_bytes(sd_bus_message *msg, struct context_blob *b, bool *have) {
        const void *d = NULL;
        int r = sd_bus_message_enter_container(msg, 'v', "ay");
        if (r >= 0)
                r = sd_bus_message_read_array(msg, 'y', &d, &b->len);
        b->data = d;
        *have = r >= 0;
        return r < 0 ? r : sd_bus_message_exit_container(msg);
}

/* A context option into ctx; unknown keys of these types are skipped (opts.c names them). */
static int read_context_value(sd_bus_message *msg, const char *key, char type, struct context_input *ctx, sd_bus_error *ret) {
        if (ctx && type == OPT_BYTES && strcmp(key, "user_data") == 0)
                return read_bytes(msg, &ctx->user_data, &ctx->have_user_data);
        if (ctx && type == OPT_BYTES && strcmp(key, "network_config") == 0)
                return read_bytes(msg, &ctx->network_config, &ctx->have_network_config);
        if (ctx && type == OPT_STRING_MAP && strcmp(key, "meta_data") == 0)
                return read_pairs(msg, false, ctx->meta, &ctx->n_meta, key, ret);
        if (ctx && type == OPT_STRING_MAP && strcmp(key, "context_vars") == 0)
                return read_pairs(msg, false, ctx->vars, &ctx->n_vars, key, ret);
        if (ctx && type == OPT_BYTES_MAP && strcmp(key, "context_files") == 0)
                return read_pairs(msg, true, ctx->files, &ctx->n_files, key, ret);
        return sd_bus_message_skip(msg, "v");
}

/* Options: the a{sv} dictionary read into opt_value entries (strings point into msg); what the
 * keys mean and whether they are right is opts.c's (pure) business. The context's values go
 * to ctx (NULL: calls that take no context). */
int bus_read_options(sd_bus_message *msg, struct opt_value *v, size_t *n, struct context_input *ctx, sd_bus_error *ret) {
        *n = 0;
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                if (*n == OPTS_MAX)
                        return bus_fail(ret, HV_E_INVALID_ARGS, "more than %d options", OPTS_MAX);
                struct opt_value *o = &v[(*n)++];
                const char *type = NULL;
                char t;
                if ((r = sd_bus_message_read(msg, "s", &o->key)) < 0 || (r = sd_bus_message_peek_type(msg, &t, &type)) < 0)
                        return r;
                o->type = !type ? '?' : strlen(type) == 1 ? type[0] : !strcmp(type, "ay") ? OPT_BYTES
                        : !strcmp(type, "a{ss}") ? OPT_STRING_MAP : !strcmp(type, "a{say}") ? OPT_BYTES_MAP : '?';
                int b = 0;
                if (o->type == 's')
                        r = sd_bus_message_read(msg, "v", "s", &o->s);
                else if (o->type == 't')
                        r = sd_bus_message_read(msg, "v", "t", &o->t);
                else if (o->type == 'b') {
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        o->b = b;
                } else if (o->type == OPT_BYTES || o->type == OPT_STRING_MAP || o->type == OPT_BYTES_MAP)
                        r = read_context_value(msg, o->key, o->type, ctx, ret);
                else
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
int bus_check_quota(struct manager *m, uid_t uid, sd_bus_error *ret) {
        unsigned mine = 0, all = m->n_checks;
        for (struct job *j = jobs_first(m->jobs); j; j = j->next) {
                mine += j->owner == uid;
                all++;
        }
        for (struct source_check *c = m->checks; c; c = c->next)
                mine += c->uid == uid;
        if (all >= m->conf.max_queued_jobs)
                return bus_fail(ret, HV_E_LIMITS,
                                "the job queue is full: %u jobs (MaxQueuedJobs=%u); try again when some have ended", all,
                                m->conf.max_queued_jobs);
        if (uid != 0 && mine >= m->conf.jobs_per_user)
                return bus_fail(ret, HV_E_LIMITS, "uid %u already has %u jobs (JobsPerUser=%u)", (unsigned)uid,
                                mine, m->conf.jobs_per_user);
        return 0;
}

/* An image may not be removed or replaced while a machine or a create job uses it. */
int bus_image_busy(struct manager *m, const char *name, sd_bus_error *ret) {
        for (struct job *j = jobs_first(m->jobs); j; j = j->next)
                if (j->kind == &create_kind && strcmp(j->source, name) == 0)
                        return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is being copied by job %u", name, j->id);
        char users[512];
        unsigned n = machines_using_image(m->machines, name, users, sizeof(users));
        if (n)
                return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is used by %u machine%s: %s (destroy %s first)", name, n, n == 1 ? "" : "s",
                                users, n == 1 ? "it" : "them");
        return 0;
}

/* Announces a job just made (JobNew, ActiveJobs: bus_job.c hears of it), queues it and
 * replies (id, path). */
int bus_announce_job(struct manager *m, sd_bus_message *msg, struct job *j) {
        job_submit(j);
        snprintf(m->call.note, sizeof(m->call.note), "job %u", j->id);
        return sd_bus_reply_method_return(msg, "uo", j->id, j->path);
}

static int method_list_images(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
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
        struct image *img;
        int r = bus_read_image(m, msg, &name, &img, ret);
        if (r < 0)
                return r;
        if (!img->table)
                return bus_fail(ret, HV_E_BAD_TABLE,
                                "image %s could not be inspected (see the daemon log)", name);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
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

static int method_get_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        const char *name;
        struct image *img;
        int r = bus_read_image(m, msg, &name, &img, ret);
        if (r < 0)
                return r;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{sv}");
        BUS_DICT_ENTRY(reply, "name", "s", img->name);
        BUS_DICT_ENTRY(reply, "size", "t", img->size);
        BUS_DICT_ENTRY(reply, "allocated", "t", img->allocated);
        BUS_DICT_ENTRY(reply, "created_usec", "t", img->created_usec);
        BUS_DICT_ENTRY(reply, "source", "s", img->source ? img->source : "");
        BUS_DICT_ENTRY(reply, "sha512", "s", img->sha512);
        BUS_DICT_ENTRY(reply, "download_size", "t", img->compressed_size);
        BUS_DICT_ENTRY(reply, "table", "s", img->table ? "mbr" : "");
        BUS_DICT_ENTRY(reply, "subscription", "s", img->origin.subscription);
        BUS_DICT_ENTRY(reply, "list_image", "s", img->origin.identifier);
        BUS_DICT_ENTRY(reply, "list_version", "s", img->origin.version);
        BUS_DICT_ENTRY(reply, "expired", "b", (int)img->expired);
        _cleanup_free_ struct machine *a = NULL;
        int n = r >= 0 ? machines_snapshot(m->machines, &a) : 0;
        if (n < 0)
                r = n;
        if (r >= 0)
                r = bus_open_dict_array(reply, "machines", "s");
        for (int i = 0; i < n && r >= 0; i++)
                if (strcmp(a[i].image, name) == 0)
                        r = sd_bus_message_append(reply, "s", a[i].name);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return send_reply(reply, r);
}

static int method_remove_image(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        int r = bus_check_access(m, "RemoveImage", NULL, ret);
        if (r < 0)
                return r;
        const char *name;
        if ((r = read_name(msg, "image", &name, ret)) < 0)
                return r;
        struct job *j = jobs_find_target(m->jobs, &fetch_kind, name);
        if (j && store_find(&m->store, name))
                return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is being replaced by job %u", name, j->id);
        if (store_find(&m->store, name) && (r = bus_image_busy(m, name, ret)) < 0)
                return r;
        struct hv_error e = { 0 };
        r = store_remove(&m->store, name, &e);
        if (r < 0)
                return bus_reply_error(ret, &e);
        log_info("image %s removed", name);
        return sd_bus_reply_method_return(msg, "");
}

static int method_list_jobs(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(usssdo)");
        for (struct job *j = jobs_first(m->jobs); j && r >= 0; j = j->next) {
                struct job_progress p;
                job_get_progress(j, &p);
                r = sd_bus_message_append(reply, "(usssdo)", j->id, j->kind->name, j->target, p.phase, p.fraction, j->path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return send_reply(reply, r);
}

static int method_cancel_job(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        int r = bus_check_access(m, "CancelJob", &uid, ret);
        if (r < 0)
                return r;
        uint32_t id;
        r = sd_bus_message_read(msg, "u", &id);
        if (r < 0)
                return r;
        struct job *j = jobs_find(m->jobs, id);
        if (!j)
                return bus_fail(ret, HV_E_NO_SUCH_JOB, "no job with id %u", id);
        return bus_cancel_job(m, msg, j, uid, ret);
}

int bus_cancel_job(struct manager *m, sd_bus_message *msg, struct job *j, uid_t uid, sd_bus_error *ret) {
        (void)m;
        if (uid != 0 && uid != j->owner)
                return bus_fail(ret, HV_E_ACCESS, "job %u (%s %s) belongs to uid %u; only that user and root may cancel it (caller uid %u)",
                                j->id, j->kind->name, j->target, (unsigned)j->owner, (unsigned)uid);
        log_info("job %u: cancel requested (uid %u)", j->id, (unsigned)uid);
        job_cancel(j);
        return sd_bus_reply_method_return(msg, "");
}

#define AUDITED(fn)                                                                  \
        static int fn##_audited(sd_bus_message *msg, void *ud, sd_bus_error *ret) {  \
                return bus_audited(ud, msg, ud, ret, fn);                            \
        }
AUDITED(bus_method_fetch_image)
AUDITED(method_remove_image)
AUDITED(bus_method_create_machine)
AUDITED(bus_method_destroy_machine)
AUDITED(bus_method_start_machine)
AUDITED(bus_method_stop_machine)
AUDITED(bus_method_reboot_machine)
AUDITED(bus_method_open_console)
AUDITED(method_cancel_job)
AUDITED(bus_method_add_subscription)
AUDITED(bus_method_remove_subscription)
AUDITED(bus_method_refresh_subscription)

static int prop_capacity(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud,
                         sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)err;
        struct manager *m = ud;
        struct capacity c;
        bus_capacity(m, &c);
        long cpus = c.online_cpus > 0 ? c.online_cpus : 1;
        if (strcmp(prop, "CommittedCores") == 0)
                return sd_bus_message_append(reply, "u", (uint32_t)c.committed_cores);
        if (strcmp(prop, "CommittedMemoryMiB") == 0)
                return sd_bus_message_append(reply, "t", c.committed_memory_mib);
        if (strcmp(prop, "CommittedScratchBytes") == 0)
                return sd_bus_message_append(reply, "t", c.committed_scratch_bytes);
        if (strcmp(prop, "CapacityCores") == 0)
                return sd_bus_message_append(reply, "u", (uint32_t)((uint64_t)cpus * c.cpu_overcommit));
        return sd_bus_message_append(reply, "t", c.ram_mib > c.reserved_memory_mib ? c.ram_mib - c.reserved_memory_mib : 0);
}

#define METHOD(name, in, in_names, out, out_names, fn) \
        SD_BUS_METHOD_WITH_NAMES(name, in, in_names, out, out_names, fn, SD_BUS_VTABLE_UNPRIVILEGED)
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
        SD_BUS_PROPERTY("CommittedCores", "u", prop_capacity, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CommittedMemoryMiB", "t", prop_capacity, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CommittedScratchBytes", "t", prop_capacity, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CapacityCores", "u", prop_capacity, 0, 0),
        SD_BUS_PROPERTY("CapacityMemoryMiB", "t", prop_capacity, 0, 0),
        METHOD("FetchImage", "ssa{sv}", SD_BUS_PARAM(source) SD_BUS_PARAM(name) SD_BUS_PARAM(options), "uo",
               SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), bus_method_fetch_image_audited),
        METHOD("ListImages", "", , "a(sttts)", SD_BUS_PARAM(images), method_list_images),
        METHOD("InspectImage", "s", SD_BUS_PARAM(name), "sta(uybtts)", SD_BUS_PARAM(table) SD_BUS_PARAM(size) SD_BUS_PARAM(partitions),
               method_inspect_image),
        METHOD("GetImage", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(image), method_get_image),
        METHOD("InspectImageContents", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(contents), bus_method_inspect_image_contents),
        METHOD("RemoveImage", "s", SD_BUS_PARAM(name), "", , method_remove_image_audited),
        METHOD("CreateMachine", "ssua{sv}", SD_BUS_PARAM(image) SD_BUS_PARAM(name) SD_BUS_PARAM(cores) SD_BUS_PARAM(options), "uo",
               SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), bus_method_create_machine_audited),
        METHOD("ListMachines", "", , "a(ssuttss)", SD_BUS_PARAM(machines), bus_method_list_machines),
        METHOD("GetMachine", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(machine), bus_method_get_machine),
        METHOD("StartMachine", "s", SD_BUS_PARAM(name), "", , bus_method_start_machine_audited),
        METHOD("StopMachine", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options), "", , bus_method_stop_machine_audited),
        METHOD("RebootMachine", "s", SD_BUS_PARAM(name), "", , bus_method_reboot_machine_audited),
        METHOD("OpenConsole", "s", SD_BUS_PARAM(name), "h", SD_BUS_PARAM(console), bus_method_open_console_audited),
        METHOD("DestroyMachine", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(options), "", , bus_method_destroy_machine_audited),
        METHOD("ListJobs", "", , "a(usssdo)", SD_BUS_PARAM(jobs), method_list_jobs),
        METHOD("CancelJob", "u", SD_BUS_PARAM(id), "", , method_cancel_job_audited),
        METHOD("AddSubscription", "sa{sv}", SD_BUS_PARAM(uri) SD_BUS_PARAM(options), "s", SD_BUS_PARAM(id),
               bus_method_add_subscription_audited),
        METHOD("ListSubscriptions", "", , "a(sssssstttbsssu)", SD_BUS_PARAM(subscriptions), bus_method_list_subscriptions),
        METHOD("ListSubscriptionImages", "s", SD_BUS_PARAM(id), "a(sssstssss)", SD_BUS_PARAM(images),
               bus_method_list_subscription_images),
        METHOD("RefreshSubscription", "s", SD_BUS_PARAM(id), "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path),
               bus_method_refresh_subscription_audited),
        METHOD("RemoveSubscription", "sa{sv}", SD_BUS_PARAM(id) SD_BUS_PARAM(options), "", , bus_method_remove_subscription_audited),
        SD_BUS_SIGNAL_WITH_NAMES("SubscriptionUpdated", "ss", SD_BUS_PARAM(id) SD_BUS_PARAM(result), 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobNew", "uo", SD_BUS_PARAM(id) SD_BUS_PARAM(path), 0),
        SD_BUS_SIGNAL_WITH_NAMES("JobRemoved", "uosss",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(path) SD_BUS_PARAM(result) SD_BUS_PARAM(error_name) SD_BUS_PARAM(error_message), 0),
        SD_BUS_SIGNAL_WITH_NAMES("MachineStateChanged", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(state), 0),
        SD_BUS_SIGNAL_WITH_NAMES("MachineRemoved", "sss", SD_BUS_PARAM(name) SD_BUS_PARAM(reason) SD_BUS_PARAM(console_log), 0),
        SD_BUS_VTABLE_END
};

int bus_setup(struct manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, HV_OBJ_PATH, HV_MANAGER_IFACE, manager_vtable, m);
        if (r < 0 || (r = bus_job_setup(m)) < 0 || (r = bus_machine_setup(m)) < 0)
                return r;
        return sd_bus_add_object_manager(m->bus, NULL, HV_OBJ_PATH);
}
