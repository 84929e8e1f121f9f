/* machine_ops.h: the create job kind (CreateMachine: root disk copy, scratch disk, domain),
 * doing its libvirt and file work on the job's worker. What follows a creation is lifecycle.h. */
#pragma once
#include <stdbool.h>

#include "conf.h"
#include "context.h"
#include "job.h"
#include "loop.h"
#include "machines.h"
#include "opts.h"
#include "virt.h"

struct create_job {
        char target[HV_NAME_MAX + 1];
        struct create_params p;
        unsigned owner; /* the caller's uid */
        struct context_files context; /* the context disk's files (none: no context disk) */
        struct hv_conf_snap *conf;
        struct virt *virt;
        struct machines *machines;
};

extern const struct job_kind create_kind;
/* A payload for create_kind. NULL: out of memory. */
/* Takes the context files over (cleared in *context), even on failure. */
struct create_job *create_job_new(const char *target, const struct create_params *p, unsigned owner, struct context_files *context,
                                  struct hv_conf_snap *conf, struct virt *virt, struct machines *machines);
