/* machine_ops.h: the create job kind (CreateMachine: root disk copy, scratch disk, domain) and
 * the destroy operation (DestroyMachine), both doing their libvirt and file work off the loop. */
#pragma once
#include <stdbool.h>

#include "conf.h"
#include "job.h"
#include "loop.h"
#include "machines.h"
#include "opts.h"
#include "virt.h"

struct create_job {
        char target[HV_NAME_MAX + 1];
        struct create_params p;
        struct hv_conf_snap *conf;
        struct virt *virt;
        struct machines *machines;
};

extern const struct job_kind create_kind;
/* A payload for create_kind. NULL: out of memory. */
struct create_job *create_job_new(const char *target, const struct create_params *p, struct hv_conf_snap *conf, struct virt *virt,
                                  struct machines *machines);

/* Called on the loop when a destroy has ended: r 0, or <0 with e. */
typedef void (*destroy_done_fn)(void *ud, const char *name, int r, const struct hv_error *e);
/* Stops, undefines and deletes machine name on a thread (the caller has marked it with
 * machines_begin_destroy); done(ud, …) follows on the loop, after the registry is updated. */
int machine_destroy(struct loop *loop, struct virt *virt, struct machines *ms, const char *machine_root, const char *name,
                    bool keep_disks, destroy_done_fn done, void *ud);
