/* manager.h: the daemon's parts and their life: the event loop, the job engine, the machine
 * registry, the libvirt thread, the image store, the bus; stop and reload. Owned by the loop
 * thread. */
#pragma once
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "audit.h"
#include "conf.h"
#include "creds.h"
#include "job.h"
#include "lifecycle.h"
#include "loop.h"
#include "machines.h"
#include "names.h"
#include "store.h"
#include "virt.h"

#define HV_HYPERVISOR_MAX 16
#ifndef HVWG_SYSCONFDIR
#define HVWG_SYSCONFDIR "/etc"
#endif
/* The configuration file without --config (plus the drop-ins of its .d directory). */
#define HV_DEFAULT_CONFIG HVWG_SYSCONFDIR "/hvwgd/hvwgd.conf"

struct manager {
        sd_event *event;
        sd_bus *bus;
        struct loop *loop;              /* the one channel from threads to the loop */
        struct jobs *jobs;
        struct machines *machines;
        struct virt *virt;
        struct lifecycle *life;         /* start, stop, console, destroy: machine_ops after creation */
        struct store store;
        struct subscriptions *subs;     /* image list subscriptions (subscriptions.c, bus_subscription.c) */
        struct hv_conf conf;            /* live: read on the loop only */
        struct hv_conf_snap *snap;      /* what new jobs and threads take; replaced at a reload */
        char *config_path;              /* NULL: the default file */
        bool config_required;
        bool reloading, reload_again;   /* a reload's file is being read on a thread */
        char hypervisor[HV_HYPERVISOR_MAX]; /* effective: auto resolved at start-up */
        gid_t hvwg_gid;                 /* (gid_t)-1 when the group does not exist */
        unsigned n_threads;             /* source checks and destroys whose result is still to come */
        struct source_check *checks;    /* bus.c: FetchImage calls whose file:// source is being opened */
        unsigned n_checks;
        struct bus_binding *bindings;   /* bus_machine.c: machines bound to their caller's connection */
        bool stopping;
        /* the bus call being handled (bus.c): its caller and audit record */
        struct bus_call {
                const struct caller *caller; /* NULL: unknown (access is refused) */
                struct audit_rec *rec;
                bool deferred;
                char note[64];
        } call;
};

/* conf: loaded; config_path as given (NULL: the default). */
struct manager *manager_new(const struct hv_conf *conf, const char *config_path);
/* Everything up to READY=1, the loop, then the orderly end. 0 or -errno (logged). */
int manager_run(struct manager *m, const char *bus_address);
void manager_free(struct manager *m);
/* Begins an orderly stop: cancels jobs, exits once they have ended (5 s at most). */
void manager_stop(struct manager *m);
/* The configuration loader's warnings, to the log (start-up, --format-scratch, reload). */
void manager_conf_warn(const char *file, unsigned line, const char *msg, void *ud);
/* A thread whose result the loop still waits for starts / has delivered it. */
void manager_thread_started(struct manager *m);
void manager_thread_done(struct manager *m);
