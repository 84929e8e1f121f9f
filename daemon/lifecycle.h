/* lifecycle.h: a machine's life after its creation: start, stop (ACPI, then forced off after a
 * timeout), reboot, its console log, its details, and its end: DestroyMachine, or by itself
 * when a transient machine's guest stops. Every libvirt and file operation runs on a thread of
 * its own; the result comes back on the loop. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "loop.h"
#include "machines.h"
#include "virt.h"

enum life_op { LIFE_START, LIFE_STOP, LIFE_REBOOT, LIFE_CONSOLE, LIFE_DETAILS, LIFE_DESTROY };

struct life_args {
        /* LIFE_STOP */
        bool force;          /* forced off at once */
        bool have_timeout;
        uint64_t timeout_sec; /* ACPI shutdown, forced off after this; 0: ask and return */
        /* LIFE_DESTROY */
        bool keep_disks;
        const char *reason;  /* MachineRemoved's reason: "destroyed", "poweroff", … */
};

struct life_result {
        int fd;                  /* LIFE_CONSOLE: read-only, the caller's to close */
        struct machine m;        /* LIFE_DETAILS: the record, */
        uint64_t root_allocated; /* and what its disks take on disk */
        uint64_t scratch_allocated;
        uint64_t context_bytes;  /* the context disk's size (0: none); never its contents */
        char root_path[1024];
        char console_path[1024];
        char console_log[1024];  /* LIFE_DESTROY: the kept console log, "" when none */
};

/* On the loop: r 0 with res, or <0 with e. */
typedef void (*life_done_fn)(void *ud, int r, const struct hv_error *e, const struct life_result *res);

struct lifecycle;
int lifecycle_new(struct loop *loop, struct virt *virt, struct machines *ms, struct hv_conf_snap *conf, struct lifecycle **ret);
struct lifecycle *lifecycle_free(struct lifecycle *lc);
/* The configuration for what starts from now on (start-up, reload). */
void lifecycle_set_conf(struct lifecycle *lc, struct hv_conf_snap *conf);
/* Operations whose result has not reached the loop yet. */
unsigned lifecycle_busy(struct lifecycle *lc);
/* Starts op on machine name; done(ud, …) follows on the loop. A destroy of a machine already
 * being destroyed waits for that one and shares its result. 0, or -errno with e filled (no
 * such machine, being destroyed, no thread). */
int lifecycle_run(struct lifecycle *lc, enum life_op op, const char *name, const struct life_args *a, life_done_fn done,
                  void *ud, struct hv_error *e);
