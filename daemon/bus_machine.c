/* bus_machine.c: the machine methods of the Manager (CreateMachine, ListMachines, GetMachine,
 * Start/Stop/Reboot/DestroyMachine, OpenConsole) and the machine signals. The work is done
 * by the create job (machine_ops.c) or by lifecycle.c on a thread; handlers check and reply. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "bus.h"
#include "context.h"
#include "errors.h"
#include "import.h"
#include "lifecycle.h"
#include "log.h"
#include "machine_ops.h"
#include "opts.h"

/* ---- machines bound to their caller (bind_to_caller): destroyed when its connection closes,
 * so a batch wrapper killed with SIGKILL leaves no VM behind ---- */

struct bus_binding {
        struct manager *m;
        char sender[256];
        char name[HV_NAME_MAX + 1];
        bool gone;
        sd_bus_slot *watch, *probe;
        struct bus_binding *next;
};

static void binding_free(struct manager *m, struct bus_binding *b) {
        for (struct bus_binding **pp = &m->bindings; *pp; pp = &(*pp)->next)
                if (*pp == b) {
                        *pp = b->next;
                        break;
                }
        sd_bus_slot_unref(b->watch);
        sd_bus_slot_unref(b->probe);
        free(b);
}

/* The caller is gone: its machine goes (or its creation is canceled). */
static void binding_gone(struct bus_binding *b) {
        struct manager *m = b->m;
        b->gone = true;
        struct job *j = jobs_find_target(m->jobs, &create_kind, b->name);
        if (j) {
                log_info("machine %s: its caller %s left the bus: canceling its creation (job %u)", b->name, b->sender, j->id);
                job_cancel(j);
                return; /* the machine appears (and goes) or the binding is dropped with the caller's next end */
        }
        if (!machines_exists(m->machines, b->name)) {
                binding_free(m, b);
                return;
        }
        log_info("machine %s: its caller %s left the bus: destroying it", b->name, b->sender);
        struct life_args a = { .reason = "caller-gone" };
        struct hv_error e = { 0 };
        if (lifecycle_run(m->life, LIFE_DESTROY, b->name, &a, NULL, NULL, &e) < 0 && e.err != EBUSY)
                log_warning("machine %s: %s", b->name, e.msg);
}

static int on_owner_changed(sd_bus_message *msg, void *ud, sd_bus_error *err) {
        (void)err;
        struct bus_binding *b = ud;
        const char *name, *old, *new;
        if (sd_bus_message_read(msg, "sss", &name, &old, &new) >= 0 && strcmp(name, b->sender) == 0 && !*new && !b->gone)
                binding_gone(b);
        return 0;
}

/* The watch's AddMatch, asked without waiting: without it the caller's leaving would go unseen. */
static int on_watch_installed(sd_bus_message *reply, void *ud, sd_bus_error *err) {
        (void)err;
        struct bus_binding *b = ud;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e)
                log_warning("machine %s: cannot watch its caller %s (%s): it is not removed when the caller leaves", b->name,
                            b->sender, e->message ? e->message : e->name);
        return 0;
}

/* The caller may have left before the watch was in place. */
static int on_has_owner(sd_bus_message *reply, void *ud, sd_bus_error *err) {
        (void)err;
        struct bus_binding *b = ud;
        int has = 1;
        b->probe = sd_bus_slot_unref(b->probe);
        if (!sd_bus_message_is_method_error(reply, NULL) && sd_bus_message_read(reply, "b", &has) >= 0 && !has && !b->gone)
                binding_gone(b);
        return 0;
}

static int bind_to_caller(struct manager *m, sd_bus_message *msg, const char *name, sd_bus_error *ret) {
        const char *sender = sd_bus_message_get_sender(msg);
        if (!sender || strlen(sender) >= sizeof(((struct bus_binding *)0)->sender))
                return bus_fail(ret, HV_E_INVALID_ARGS, "bind_to_caller needs a caller on a message bus");
        struct bus_binding *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->m = m;
        snprintf(b->sender, sizeof(b->sender), "%s", sender);
        snprintf(b->name, sizeof(b->name), "%s", name);
        char match[512];
        snprintf(match, sizeof(match),
                 "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                 "member='NameOwnerChanged',arg0='%s'", sender);
        /* the bus daemon takes the match before it answers the probe: it answers in order */
        int r = sd_bus_add_match_async(m->bus, &b->watch, match, on_owner_changed, on_watch_installed, b);
        if (r >= 0)
                r = sd_bus_call_method_async(m->bus, &b->probe, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                             "NameHasOwner", on_has_owner, b, "s", sender);
        if (r < 0) {
                sd_bus_slot_unref(b->watch);
                free(b);
                return bus_fail(ret, HV_E_FAILED, "cannot watch the caller's connection: %s", strerror(-r));
        }
        b->next = m->bindings;
        m->bindings = b;
        return 0;
}

static struct bus_binding *binding_of(struct manager *m, const char *name) {
        for (struct bus_binding *b = m->bindings; b; b = b->next)
                if (strcmp(b->name, name) == 0)
                        return b;
        return NULL;
}

/* The host's limits and what machines (and creations under way) have of them. */
void bus_capacity(struct manager *m, struct capacity *c) {
        struct machine_totals t;
        machines_totals(m->machines, &t);
        struct sysinfo si;
        uint64_t ram_mib = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit >> 20 : 0;
        *c = (struct capacity){ .online_cpus = sysconf(_SC_NPROCESSORS_ONLN), .cpu_overcommit = m->conf.cpu_overcommit,
                                .ram_mib = ram_mib, .reserved_memory_mib = m->conf.reserved_memory_mib,
                                .committed_cores = t.cores, .committed_memory_mib = t.memory_mib,
                                .committed_scratch_bytes = t.scratch_bytes };
        for (struct job *j = jobs_first(m->jobs); j; j = j->next)
                if (j->kind == &create_kind) {
                        const struct create_job *cj = j->payload;
                        c->committed_cores += cj->p.cores;
                        c->committed_memory_mib += cj->p.memory_mib;
                        c->committed_scratch_bytes += cj->p.scratch_bytes;
                }
}

/* A non-root caller may act only on the machines it created. */
static int check_owner(uid_t uid, const struct machine *x, const char *what, sd_bus_error *ret) {
        if (uid == 0 || uid == x->owner)
                return 0;
        return bus_fail(ret, HV_E_ACCESS, "%s: machine %s belongs to uid %u; only that user and root may do this (caller uid %u)", what,
                        x->name, x->owner, (unsigned)uid);
}

int bus_method_create_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        const char *image, *name;
        uint32_t cores;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        _cleanup_free_ struct context_input *ctx = calloc(1, sizeof(*ctx)); /* ~20 KiB: not on the stack */
        int r;
        if (!ctx)
                return -ENOMEM;
        if ((r = bus_check_access(m, "CreateMachine", &uid, ret)) < 0 ||
            (r = sd_bus_message_read(msg, "ssu", &image, &name, &cores)) < 0 || (r = bus_check_name(image, "image", ret)) < 0 ||
            (r = bus_check_name(name, "machine", ret)) < 0 || (r = bus_read_options(msg, opts, &n_opts, ctx, ret)) < 0)
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
        if ((r = opts_create(opts, n_opts, cores, &defaults, &cp, &e)) < 0 || (r = context_check(ctx, m->conf.max_context_size, &e)) < 0)
                return bus_reply_error(ret, &e);
        if (m->stopping)
                return bus_fail(ret, HV_E_FAILED, "hvwgd is shutting down");
        struct image *img = store_find(&m->store, image);
        const char *alias = NULL;
        if (!img && (image = bus_subscriptions_resolve(m, alias = image))) { /* an image list's alias: its newest version */
                img = store_find(&m->store, image);
                log_info("CreateMachine %s: image %s is the newest version of alias %s", name, image, alias);
        }
        if (!img)
                return bus_fail(ret, HV_E_NO_SUCH_IMAGE, "no image named %s%s", alias ? alias : image,
                                alias ? " (nor a version of an image list's image by that alias)" : "");
        if (img->expired)
                return bus_fail(ret, HV_E_IMAGE_EXPIRED, "image %s is expired: the image list of subscription %s no longer has %s "
                                "version %s (or the list expired); it is removed once no machine uses it", image,
                                img->origin.subscription, img->origin.identifier, img->origin.version);
        struct job *other = jobs_find_target(m->jobs, &fetch_kind, image);
        if (other)
                return bus_fail(ret, HV_E_IMAGE_BUSY, "image %s is being replaced by job %u", image, other->id);
        struct machine old;
        if (machines_get(m->machines, name, &old))
                return bus_fail(ret, HV_E_MACHINE_EXISTS, "machine %s already exists (%s%s%s)%s", name, old.state,
                                old.reason[0] ? ", " : "", old.reason,
                                strcmp(old.state, "undefined") == 0 ? ": DestroyMachine clears what is left of it" : "");
        if (jobs_find_target(m->jobs, &create_kind, name))
                return bus_fail(ret, HV_E_MACHINE_EXISTS, "machine %s is being created", name);
        struct capacity cap;
        bus_capacity(m, &cap);
        if ((r = capacity_check(&cap, cp.cores, cp.memory_mib, &e)) < 0)
                return bus_reply_error(ret, &e);
        if ((r = bus_check_quota(m, uid, ret)) < 0)
                return r;
        snprintf(cp.image, sizeof(cp.image), "%s", image);
        snprintf(cp.image_path, sizeof(cp.image_path), "%s/%s.raw", m->conf.image_root, image);
        /* the UUID now: it is the context's instance-id */
        uint8_t ub[16];
        hv_uuid_random(ub);
        hv_uuid_format(ub, cp.uuid);
        struct context_files files = { 0 };
        if (context_given(ctx) && context_build(ctx, cp.uuid, name, &files) < 0)
                return -ENOMEM;
        if (cp.bind_to_caller && (r = bind_to_caller(m, msg, name, ret)) < 0) {
                context_files_free(&files);
                return r;
        }
        struct create_job *cj = create_job_new(name, &cp, uid, &files, m->snap, m->virt, m->machines);
        struct job *j = cj ? job_new(m->jobs, &create_kind, name, image, uid, cj) : NULL;
        if (!j) {
                if (cp.bind_to_caller)
                        binding_free(m, binding_of(m, name));
                return -ENOMEM;
        }
        log_info("job %u: create %smachine %s from %s: %u cores, %llu MiB, scratch %llu GiB, %s, context %s (uid %u)", j->id,
                 cp.transient ? "transient " : "", name, image, cores, (unsigned long long)cp.memory_mib,
                 (unsigned long long)(cp.scratch_bytes >> 30), dom_hv_name(cp.hv), cj->context.n ? "yes" : "none", (unsigned)uid);
        return bus_announce_job(m, msg, j);
}

int bus_method_list_machines(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ret;
        struct manager *m = ud;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        _cleanup_free_ struct machine *a = NULL;
        int n = r >= 0 ? machines_snapshot(m->machines, &a) : 0;
        if (n < 0)
                r = n;
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssuttss)");
        for (int i = 0; i < n && r >= 0; i++)
                r = sd_bus_message_append(reply, "(ssuttss)", a[i].name, a[i].uuid, a[i].cores, a[i].memory_mib, a[i].scratch_bytes,
                                          a[i].image, a[i].state);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

/* ---- calls answered when lifecycle.c's thread is done ---- */

struct life_call_reply {
        struct manager *m;
        sd_bus_message *msg;
        struct audit_rec *audit; /* NULL for reading calls */
        enum life_op op;
};

static int append_details(struct manager *m, sd_bus_message *reply, const struct life_result *res) {
        const struct machine *x = &res->m;
        struct image *img = store_find(&m->store, x->image);
        int r = sd_bus_message_open_container(reply, 'a', "{sv}");
        BUS_DICT_ENTRY(reply, "name", "s", x->name);
        BUS_DICT_ENTRY(reply, "uuid", "s", x->uuid);
        BUS_DICT_ENTRY(reply, "cores", "u", x->cores);
        BUS_DICT_ENTRY(reply, "memory_mib", "t", x->memory_mib);
        BUS_DICT_ENTRY(reply, "scratch_bytes", "t", x->scratch_bytes);
        BUS_DICT_ENTRY(reply, "image", "s", x->image);
        BUS_DICT_ENTRY(reply, "image_sha512", "s", img ? img->sha512 : "");
        BUS_DICT_ENTRY(reply, "state", "s", x->state);
        BUS_DICT_ENTRY(reply, "state_reason", "s", x->reason);
        BUS_DICT_ENTRY(reply, "state_changed_usec", "t", x->state_usec);
        BUS_DICT_ENTRY(reply, "owner_uid", "u", x->owner);
        BUS_DICT_ENTRY(reply, "created_usec", "t", x->created_usec);
        BUS_DICT_ENTRY(reply, "transient", "b", (int)x->transient);
        BUS_DICT_ENTRY(reply, "hypervisor", "s", x->hypervisor);
        BUS_DICT_ENTRY(reply, "network", "s", x->network);
        BUS_DICT_ENTRY(reply, "console_log", "s", res->console_path);
        BUS_DICT_ENTRY(reply, "context_bytes", "t", res->context_bytes);
        if (r >= 0)
                r = bus_open_dict_array(reply, "disks", "(sst)");
        if (r >= 0)
                r = sd_bus_message_append(reply, "(sst)", "root", res->root_path, res->root_allocated);
        if (r >= 0 && x->scratch_path[0])
                r = sd_bus_message_append(reply, "(sst)", "scratch", x->scratch_path, res->scratch_allocated);
        if (r >= 0)
                r = bus_close_dict_array(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static void life_replied(void *ud, int r, const struct hv_error *e, const struct life_result *res) {
        struct life_call_reply *c = ud;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        if (r >= 0) {
                r = sd_bus_message_new_method_return(c->msg, &reply);
                if (r >= 0 && c->op == LIFE_CONSOLE)
                        r = sd_bus_message_append(reply, "h", res->fd); /* the message holds a duplicate */
                else if (r >= 0 && c->op == LIFE_DETAILS)
                        r = append_details(c->m, reply, res);
                if (r >= 0)
                        r = sd_bus_send(NULL, reply, NULL);
                if (r < 0)
                        log_warning("cannot reply to %s: %s", sd_bus_message_get_member(c->msg), strerror(-r));
                if (c->audit)
                        audit_end(c->audit, NULL, res->console_log[0] ? res->console_log : "ok");
        } else {
                (void)sd_bus_reply_method_errorf(c->msg, hv_error_name(e), "%s", e->msg);
                if (c->audit)
                        audit_end(c->audit, hv_error_name(e), e->msg);
        }
        if (res->fd >= 0)
                close(res->fd);
        sd_bus_message_unref(c->msg);
        free(c->audit);
        free(c);
}

/* Hands op on the machine to lifecycle.c; the reply follows from life_replied(). */
static int run_life(struct manager *m, sd_bus_message *msg, enum life_op op, const char *name, const struct life_args *a, bool audited,
                    sd_bus_error *ret) {
        struct life_call_reply *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (struct life_call_reply){ .m = m, .msg = sd_bus_message_ref(msg), .op = op };
        struct hv_error e = { 0 };
        int r = lifecycle_run(m->life, op, name, a, life_replied, c, &e);
        if (r < 0) {
                sd_bus_message_unref(c->msg);
                free(c);
                return bus_reply_error(ret, &e);
        }
        if (audited)
                c->audit = bus_audit_defer(m);
        return 1;
}

/* The common start of the calls on one machine: access (for changes), the name, the record,
 * its owner. */
static int machine_call(struct manager *m, sd_bus_message *msg, const char *what, bool change, struct machine *x, sd_bus_error *ret) {
        uid_t uid = 0;
        const char *name;
        int r;
        if ((r = bus_check_access(m, what, &uid, ret)) < 0 || (r = sd_bus_message_read(msg, "s", &name)) < 0 ||
            (r = bus_check_name(name, "machine", ret)) < 0)
                return r;
        struct job *j = jobs_find_target(m->jobs, &create_kind, name);
        if (change && j)
                return bus_fail(ret, HV_E_FAILED, "machine %s is being created by job %u%s", name, j->id,
                                strcmp(what, "DestroyMachine") == 0 ? ": cancel that job instead" : "; wait for it to end");
        if (!machines_get(m->machines, name, x))
                return bus_fail(ret, HV_E_NO_SUCH_MACHINE, "no machine named %s", name);
        return check_owner(uid, x, what, ret);
}

int bus_method_destroy_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        struct machine x;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        bool keep;
        struct hv_error e = { 0 };
        int r = machine_call(m, msg, "DestroyMachine", true, &x, ret);
        if (r < 0 || (r = bus_read_options(msg, opts, &n_opts, NULL, ret)) < 0)
                return r;
        if ((r = opts_destroy(opts, n_opts, &keep, &e)) < 0)
                return bus_reply_error(ret, &e);
        if (keep && x.transient)
                return bus_fail(ret, HV_E_INVALID_ARGS, "machine %s is transient: it leaves nothing behind, keep_disks cannot apply", x.name);
        log_info("destroying machine %s%s", x.name, keep ? " (keeping its disks)" : "");
        struct life_args a = { .keep_disks = keep, .reason = "destroyed" };
        return run_life(m, msg, LIFE_DESTROY, x.name, &a, true, ret);
}

int bus_method_start_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct machine x;
        int r = machine_call(ud, msg, "StartMachine", true, &x, ret);
        return r < 0 ? r : run_life(ud, msg, LIFE_START, x.name, NULL, true, ret);
}

int bus_method_reboot_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct machine x;
        int r = machine_call(ud, msg, "RebootMachine", true, &x, ret);
        return r < 0 ? r : run_life(ud, msg, LIFE_REBOOT, x.name, NULL, true, ret);
}

int bus_method_stop_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct machine x;
        struct opt_value opts[OPTS_MAX];
        size_t n_opts;
        struct stop_params sp;
        struct hv_error e = { 0 };
        int r = machine_call(ud, msg, "StopMachine", true, &x, ret);
        if (r < 0 || (r = bus_read_options(msg, opts, &n_opts, NULL, ret)) < 0)
                return r;
        if ((r = opts_stop(opts, n_opts, &sp, &e)) < 0)
                return bus_reply_error(ret, &e);
        struct life_args a = { .force = sp.force, .have_timeout = sp.have_timeout, .timeout_sec = sp.timeout_sec };
        return run_life(ud, msg, LIFE_STOP, x.name, &a, true, ret);
}

int bus_method_open_console(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct machine x;
        int r = machine_call(ud, msg, "OpenConsole", false, &x, ret);
        return r < 0 ? r : run_life(ud, msg, LIFE_CONSOLE, x.name, NULL, false, ret);
}

int bus_method_get_machine(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        const char *name;
        int r = sd_bus_message_read(msg, "s", &name);
        if (r < 0 || (r = bus_check_name(name, "machine", ret)) < 0)
                return r;
        return run_life(m, msg, LIFE_DETAILS, name, NULL, false, ret);
}

/* ---- signals ---- */

static void on_machine_event(void *ud, const struct machine_event *ev) {
        struct manager *m = ud;
        struct bus_binding *b = binding_of(m, ev->m.name);
        if (b && ev->kind == MACHINE_REMOVED)
                binding_free(m, b);
        else if (b && b->gone && !ev->m.destroying) /* made after its caller left */
                binding_gone(b);
        const char *state = ev->kind == MACHINE_REMOVED ? "undefined" : ev->m.state;
        int r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "MachineStateChanged", "ss", ev->m.name, state);
        if (r >= 0 && ev->kind == MACHINE_REMOVED)
                r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "MachineRemoved", "sss", ev->m.name, ev->reason,
                                       ev->console_log);
        if (ev->kind == MACHINE_REMOVED) /* an expired image's last machine is gone */
                bus_subscriptions_sweep(m);
        if (r >= 0)
                r = sd_bus_emit_properties_changed(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "CommittedCores", "CommittedMemoryMiB",
                                                   "CommittedScratchBytes", NULL);
        if (r < 0)
                log_warning("cannot emit the signals of machine %s: %s", ev->m.name, strerror(-r));
}

/* A creation that made no machine leaves no binding behind. */
static void on_job_event(void *ud, enum job_event ev, struct job *j) {
        struct manager *m = ud;
        if (ev != JOB_REMOVED || j->kind != &create_kind || machines_exists(m->machines, j->target))
                return;
        for (struct bus_binding *b; (b = binding_of(m, j->target));)
                binding_free(m, b);
}

int bus_machine_setup(struct manager *m) {
        int r = machines_subscribe(m->machines, on_machine_event, m);
        return r < 0 ? r : jobs_subscribe(m->jobs, on_job_event, m);
}

void bus_machine_free(struct manager *m) {
        while (m->bindings)
                binding_free(m, m->bindings);
}
