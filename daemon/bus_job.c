/* bus_job.c: the Job objects (/org/hepix/hvwg1/job/_ID) and the signals about jobs, from the
 * job engine's events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "errors.h"
#include "log.h"

static int job_prop(sd_bus *bus, const char *path, const char *iface, const char *prop, sd_bus_message *reply, void *ud,
                    sd_bus_error *err) {
        (void)bus; (void)path; (void)iface; (void)err;
        struct job *j = ud;
        if (strcmp(prop, "Id") == 0)
                return sd_bus_message_append(reply, "u", j->id);
        if (strcmp(prop, "Type") == 0)
                return sd_bus_message_append(reply, "s", j->kind->name);
        if (strcmp(prop, "Target") == 0)
                return sd_bus_message_append(reply, "s", j->target);
        if (strcmp(prop, "Source") == 0)
                return sd_bus_message_append(reply, "s", j->source);
        struct job_progress p;
        job_get_progress(j, &p);
        if (strcmp(prop, "Progress") == 0)
                return sd_bus_message_append(reply, "d", p.fraction);
        if (strcmp(prop, "Phase") == 0)
                return sd_bus_message_append(reply, "s", p.phase);
        if (strcmp(prop, "BytesDone") == 0)
                return sd_bus_message_append(reply, "t", p.done);
        return sd_bus_message_append(reply, "t", p.total);
}

/* Runs once the caller is known (bus_audited): the job is looked up again by the call's path,
 * since it may have ended while the bus daemon answered. */
static int job_cancel_checked(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        struct manager *m = ud;
        uid_t uid;
        int r = bus_check_access(m, "Job.Cancel", &uid, ret);
        if (r < 0)
                return r;
        struct job *j = jobs_find_by_path(m->jobs, sd_bus_message_get_path(msg));
        if (!j)
                return bus_fail(ret, HV_E_NO_SUCH_JOB, "job %s has ended", sd_bus_message_get_path(msg));
        return bus_cancel_job(m, msg, j, uid, ret);
}

static int job_method_cancel(sd_bus_message *msg, void *ud, sd_bus_error *ret) {
        (void)ud;
        /* the userdata of the fallback vtable's slot is the manager */
        struct manager *m = sd_bus_slot_get_userdata(sd_bus_get_current_slot(sd_bus_message_get_bus(msg)));
        return bus_audited(m, msg, m, ret, job_cancel_checked);
}

/* Id, Type, Target, Source never change; the progress properties are announced as they do. */
#define JOB_PROP(name, sig, flag) SD_BUS_PROPERTY(name, sig, job_prop, 0, SD_BUS_VTABLE_PROPERTY_##flag)
static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        JOB_PROP("Id", "u", CONST),          JOB_PROP("Type", "s", CONST),
        JOB_PROP("Target", "s", CONST),      JOB_PROP("Source", "s", CONST),
        JOB_PROP("Phase", "s", EMITS_CHANGE), JOB_PROP("Progress", "d", EMITS_CHANGE),
        JOB_PROP("BytesDone", "t", EMITS_CHANGE), JOB_PROP("BytesTotal", "t", EMITS_CHANGE),
        SD_BUS_METHOD("Cancel", "", "", job_method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int job_object_find(sd_bus *bus, const char *path, const char *iface, void *ud, void **found, sd_bus_error *err) {
        (void)bus; (void)iface; (void)err;
        struct job *j = jobs_find_by_path(((struct manager *)ud)->jobs, path);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *ud, char ***nodes, sd_bus_error *err) {
        (void)bus; (void)path; (void)err;
        struct manager *m = ud;
        size_t n = 0;
        for (struct job *j = jobs_first(m->jobs); j; j = j->next)
                n++;
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        size_t i = 0;
        for (struct job *j = jobs_first(m->jobs); j; j = j->next) {
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

static void emit_active_jobs(struct manager *m) {
        int r = sd_bus_emit_properties_changed(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "ActiveJobs", NULL);
        if (r < 0)
                log_warning("cannot emit PropertiesChanged: %s", strerror(-r));
}

/* The job engine's events become the job signals: JobNew, the Job's PropertiesChanged,
 * JobRemoved, and ActiveJobs when the count changes. */
static void on_job_event(void *ud, enum job_event ev, struct job *j) {
        struct manager *m = ud;
        int r;
        switch (ev) {
        case JOB_NEW:
                r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "JobNew", "uo", j->id, j->path);
                if (r < 0)
                        log_warning("cannot emit JobNew: %s", strerror(-r));
                emit_active_jobs(m);
                break;
        case JOB_CHANGED:
                r = sd_bus_emit_properties_changed(m->bus, j->path, HV_JOB_IFACE, "Phase", "Progress", "BytesDone", "BytesTotal", NULL);
                if (r < 0)
                        log_warning("cannot emit PropertiesChanged for job %u: %s", j->id, strerror(-r));
                break;
        case JOB_REMOVED: {
                const char *result = job_result(j);
                bool failed = strcmp(result, "failed") == 0;
                const struct hv_error *e = job_error(j);
                r = sd_bus_emit_signal(m->bus, HV_OBJ_PATH, HV_MANAGER_IFACE, "JobRemoved", "uosss", j->id, j->path, result,
                                       failed ? hv_error_name(e) : "", failed ? e->msg : "");
                if (r < 0)
                        log_warning("cannot emit JobRemoved: %s", strerror(-r));
                emit_active_jobs(m);
                break;
        }
        }
}

int bus_job_setup(struct manager *m) {
        int r = sd_bus_add_fallback_vtable(m->bus, NULL, HV_JOB_PREFIX, HV_JOB_IFACE, job_vtable, job_object_find, m);
        if (r < 0 || (r = sd_bus_add_node_enumerator(m->bus, NULL, HV_JOB_PREFIX, job_node_enumerator, m)) < 0)
                return r;
        return jobs_subscribe(m->jobs, on_job_event, m);
}
