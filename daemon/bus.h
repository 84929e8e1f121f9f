/* bus.h: the D-Bus surface (shared/API.md). bus.c: the Manager object, images, jobs, the audit
 * trail; bus_fetch.c: FetchImage; bus_machine.c: the machine methods and signals; bus_job.c: the
 * Job objects and the job signals. Only the loop thread calls these. */
#pragma once
#include <systemd/sd-bus.h>

#include "audit.h"
#include "manager.h"
#include "opts.h"

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
        struct audit_rec *audit;
        int fd;
        bool world_readable;
        struct hv_error err;
        struct source_check *next;
};

/* Exports the objects and subscribes to the job engine and the machine registry. */
int bus_setup(struct manager *m);
int bus_job_setup(struct manager *m);
int bus_machine_setup(struct manager *m);
/* At the end: what bus_machine.c holds (the bindings to callers). */
void bus_machine_free(struct manager *m);
/* Mutating calls: root, or a member of the group hvwg (the bus policy says the same; this is
 * the second lock), judged on the caller of the call being handled (m->call.caller, set by
 * bus_audited). 1, or a negative errno with ret set to AccessDenied. */
int bus_check_access(struct manager *m, const char *what, uid_t *ret_uid, sd_bus_error *ret);

/* Shared by the handlers in bus.c and bus_fetch.c. */
struct opt_value;
struct job;
int bus_method_fetch_image(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_create_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_list_machines(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_get_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_start_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_stop_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_reboot_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_open_console(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_destroy_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret);
/* bus_contents.c: what an image holds, and the producers' findings */
int bus_method_inspect_image_contents(sd_bus_message *msg, void *ud, sd_bus_error *ret);
/* bus_subscription.c: image list subscriptions */
int bus_method_add_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_list_subscriptions(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_list_subscription_images(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_refresh_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret);
int bus_method_remove_subscription(sd_bus_message *msg, void *ud, sd_bus_error *ret);
/* Timers and callbacks of the subscriptions; the first sweep of expired images. */
int bus_subscriptions_setup(struct manager *m);
/* Marks the images the lists no longer have as expired, removes those no machine or job uses. */
void bus_subscriptions_sweep(struct manager *m);
/* An alias (PREFIX-IDENT of a list's image) → the newest version here that is not expired, or NULL. */
const char *bus_subscriptions_resolve(struct manager *m, const char *alias);
/* A mutating handler fn run with the audit trail (bus_caller.c): the caller's credentials are
 * asked of the bus daemon without waiting, fn runs with them once they come (m->call.caller),
 * its error is replied, and the call is logged once, when it is answered (bus_audit_defer:
 * later, by whoever answers it). Returns 1: the call is handled, or will be. */
int bus_audited(struct manager *m, sd_bus_message *msg, void *ud, sd_bus_error *ret,
                int (*fn)(sd_bus_message *msg, void *ud, sd_bus_error *ret));
/* The running call is answered later: its audit record, to hand to audit_end() then (free it). */
struct audit_rec *bus_audit_defer(struct manager *m);
/* Job.Cancel and CancelJob: the job's owner or root. */
int bus_cancel_job(struct manager *m, sd_bus_message *msg, struct job *j, uid_t uid, sd_bus_error *ret);
/* The host's limits and what machines and creations under way have committed of them. */
struct capacity;
void bus_capacity(struct manager *m, struct capacity *c);
/* ret from an error kind and a message (errors.c names it); a negative errno for the handler. */
int bus_fail(sd_bus_error *ret, enum hv_kind kind, const char *fmt, ...) HV_PRINTF(3, 4);
/* ret from an internal error: its D-Bus name (errors.c, the one mapping) and message. */
int bus_reply_error(sd_bus_error *ret, const struct hv_error *e);
int bus_check_string(const char *s, const char *what, sd_bus_error *ret);
int bus_check_name(const char *name, const char *what, sd_bus_error *ret);
/* Reads the first argument: the name of an image that exists (NoSuchImage otherwise). */
int bus_read_image(struct manager *m, sd_bus_message *msg, const char **name, struct image **img, sd_bus_error *ret);
/* The a{sv} options read into v (strings point into msg); opts.c judges them. The context's
 * values (ay, a{ss}, a{say}) go to ctx, or are skipped when it is NULL. */
struct context_input;
int bus_read_options(sd_bus_message *msg, struct opt_value *v, size_t *n, struct context_input *ctx, sd_bus_error *ret);
/* JobsPerUser for non-root callers and MaxQueuedJobs for all (pending calls count). */
int bus_check_quota(struct manager *m, uid_t uid, sd_bus_error *ret);
/* ImageBusy while a machine or a create job uses the image. */
int bus_image_busy(struct manager *m, const char *name, sd_bus_error *ret);
/* An a{sv} entry of a basic type, appended while r >= 0 (r: the int of the caller's scope). */
#define BUS_DICT_ENTRY(reply, key, type, value) \
        if (r >= 0)                             \
        r = sd_bus_message_append(reply, "{sv}", key, type, value)
/* An a{sv} entry holding an array (element: "s", "(sst)"): open, append the elements, close. */
int bus_open_dict_array(sd_bus_message *reply, const char *key, const char *element);
int bus_close_dict_array(sd_bus_message *reply);
/* A fetch started by hvwgd itself (an image list's auto_fetch): FetchImage's job, owned by
 * root, the image's origin recorded in its metadata. http(s) only. 0 or -errno with e. */
int bus_fetch_start(struct manager *m, const char *source, const char *name, const struct fetch_params *fp,
                    const struct image_origin *origin, uint32_t *ret_id, struct hv_error *e);
/* Submits a job just made (JobNew) and replies (id, path); the audit outcome is "job ID". */
int bus_announce_job(struct manager *m, sd_bus_message *msg, struct job *j);
