/* bus_caller.c: who is calling, and the audit trail. A state-changing call waits for its caller's
 * credentials without holding the loop (the bus daemon is asked asynchronously), then runs its
 * handler, which checks access (root or the group hvwg), and is logged once with its outcome. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"

/* Mutating calls: root, or a member of the group hvwg. The bus policy says the same; this is
 * the second lock, from the caller's credentials (bus_audited asked the bus daemon for them). */
int bus_check_access(struct manager *m, const char *what, uid_t *ret_uid, sd_bus_error *ret) {
        const struct caller *c = m->call.caller;
        if (!c || c->uid == (uid_t)-1)
                return bus_fail(ret, HV_E_ACCESS, "%s: cannot determine the caller's credentials", what);
        bool ok = c->uid == 0;
        if (!ok && m->hvwg_gid != (gid_t)-1) {
                ok = c->egid == m->hvwg_gid;
                for (unsigned i = 0; i < c->n_gids && !ok; i++)
                        ok = c->gids[i] == m->hvwg_gid;
        }
        if (!ok)
                return bus_fail(ret, HV_E_ACCESS,
                                "%s is allowed only to root and members of the group hvwg (caller uid %ld)", what,
                                (long)(int)c->uid);
        if (ret_uid)
                *ret_uid = c->uid;
        return 1;
}

/* ---- the audit trail: every state-changing call logged once, with its outcome ---- */

typedef int (*handler_fn)(sd_bus_message *msg, void *ud, sd_bus_error *ret);

/* A call waiting for its caller's credentials. */
struct pending_call {
        struct manager *m;
        sd_bus_message *msg;
        void *ud;
        handler_fn fn;
};

static void pending_call_free(void *userdata) {
        struct pending_call *pc = userdata;
        sd_bus_message_unref(pc->msg);
        free(pc);
}

/* The groups from the caller's /proc/PID/status, trusted only while that process still has the
 * uid the bus daemon gave (else the pid was reused, or the caller changed its ids since). */
static void caller_groups(struct caller *c) {
        char path[64], buf[65536];
        snprintf(path, sizeof(path), "/proc/%ld/status", (long)c->pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return;
        size_t len = 0;
        for (ssize_t n; len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0; len += (size_t)n)
                if (n < 0)
                        return;
        if (len == sizeof(buf) - 1) /* cut short: a group could be read wrong */
                return;
        buf[len] = 0;
        uid_t euid;
        gid_t egid;
        unsigned n;
        if (creds_parse_status(buf, &euid, &egid, c->gids, CREDS_GIDS_MAX, &n) < 0 || euid != c->uid) {
                c->n_gids = 0;
                return;
        }
        c->egid = egid;
        c->n_gids = n;
}

/* The bus daemon's GetConnectionCredentials reply: a{sv} with UnixUserID and ProcessID. */
static void caller_from_reply(sd_bus_message *reply, struct caller *c) {
        if (sd_bus_message_is_method_error(reply, NULL) || sd_bus_message_enter_container(reply, 'a', "{sv}") <= 0)
                return;
        uid_t uid = (uid_t)-1;
        uint32_t pid = 0;
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key = NULL;
                if (sd_bus_message_read(reply, "s", &key) < 0)
                        return;
                uint32_t v;
                if (strcmp(key, "UnixUserID") == 0 && sd_bus_message_read(reply, "v", "u", &v) > 0)
                        uid = v;
                else if (strcmp(key, "ProcessID") == 0 && sd_bus_message_read(reply, "v", "u", &v) > 0)
                        pid = v;
                else if (sd_bus_message_skip(reply, "v") < 0)
                        return;
                if (sd_bus_message_exit_container(reply) < 0)
                        return;
        }
        c->uid = uid;
        c->pid = pid > 0 && pid <= INT32_MAX ? (pid_t)pid : -1;
        if (c->uid != (uid_t)-1 && c->pid > 0)
                caller_groups(c);
}

/* The handler, with the caller known (or not: c NULL), its outcome audited and, if it failed,
 * the error replied. */
static void run_audited(struct manager *m, sd_bus_message *msg, void *ud, handler_fn fn, const struct caller *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        struct audit_rec rec;
        audit_begin(&rec, msg, c);
        m->call = (struct bus_call){ .caller = c, .rec = &rec };
        int r = fn(msg, ud, &err);
        bool failed = r < 0 || sd_bus_error_is_set(&err);
        if (!m->call.deferred) {
                if (failed)
                        audit_end(&rec, sd_bus_error_is_set(&err) ? err.name : "errno",
                                  sd_bus_error_is_set(&err) ? err.message : strerror(-r));
                else
                        audit_end(&rec, NULL, m->call.note[0] ? m->call.note : "ok");
        }
        m->call = (struct bus_call){ 0 };
        if (failed) {
                int q = sd_bus_error_is_set(&err) ? sd_bus_reply_method_error(msg, &err) : sd_bus_reply_method_errno(msg, r, NULL);
                if (q < 0)
                        log_warning("cannot answer %s: %s", sd_bus_message_get_member(msg), strerror(-q));
        }
}

static int on_caller_creds(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        (void)ret_error;
        struct pending_call *pc = userdata;
        struct caller c = { .uid = (uid_t)-1, .pid = -1, .egid = (gid_t)-1 };
        caller_from_reply(reply, &c);
        run_audited(pc->m, pc->msg, pc->ud, pc->fn, &c);
        return 0;
}

/* A state-changing call: the bus daemon is asked who the caller is without waiting (the loop
 * goes on meanwhile), then the handler runs with the answer. Calls of one connection are
 * answered in the order they came: the bus daemon answers ours in order. */
int bus_audited(struct manager *m, sd_bus_message *msg, void *ud, sd_bus_error *ret, handler_fn fn) {
        (void)ret;
        const char *sender = sd_bus_message_get_sender(msg);
        struct pending_call *pc = calloc(1, sizeof(*pc));
        if (!pc)
                return -ENOMEM;
        *pc = (struct pending_call){ .m = m, .msg = sd_bus_message_ref(msg), .ud = ud, .fn = fn };
        sd_bus_slot *slot = NULL;
        int r = sender ? sd_bus_call_method_async(sd_bus_message_get_bus(msg), &slot, "org.freedesktop.DBus",
                                                  "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionCredentials",
                                                  on_caller_creds, pc, "s", sender)
                       : -ENXIO;
        if (r < 0) { /* no bus daemon to ask, or no memory: an unknown caller, refused */
                run_audited(m, msg, ud, fn, NULL);
                pending_call_free(pc);
                return 1;
        }
        /* the bus owns the slot; pc goes with it, after the reply or when the bus closes */
        (void)sd_bus_slot_set_destroy_callback(slot, pending_call_free);
        (void)sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        return 1;
}

struct audit_rec *bus_audit_defer(struct manager *m) {
        if (!m->call.rec)
                return NULL;
        struct audit_rec *copy = malloc(sizeof(*copy));
        if (copy)
                *copy = *m->call.rec;
        else
                audit_end(m->call.rec, NULL, "accepted (its outcome is not logged: out of memory)");
        m->call.deferred = true;
        return copy;
}

