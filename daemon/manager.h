/* manager.h: the daemon's state, owned by the event-loop thread. */
#pragma once
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "job.h"
#include "machine.h"
#include "names.h"
#include "store.h"


struct manager {
        sd_event *event;
        sd_bus *bus;
        struct hv_conf conf;            /* live: read on the loop only */
        struct hv_conf_snap *snap;      /* what new jobs and threads take; replaced at a reload */
        char *config_path;
        bool config_required;
        bool reloading, reload_again;   /* a reload's file is being read on a thread */
        struct store store;
        char hypervisor[16];   /* effective: auto resolved at start-up */
        gid_t hvwg_gid;        /* (gid_t)-1 when the group does not exist */
        struct job *jobs;
        uint32_t next_job_id;           /* random start: ids do not repeat across restarts */
        uid_t last_served[2];           /* round robin between users, per job type */
        struct source_check *checks;    /* FetchImage calls whose file:// source is being opened */
        unsigned n_checks;
        int wake_fd;
        sd_event_source *wake_source;
        sd_event_source *rate_timer;
        bool stopping;
        struct machine *machines;       /* machine.c's registry, under its own lock */
        pthread_mutex_t tasks_mtx;
        struct loop_task *tasks;        /* work handed to the loop by other threads */
};

typedef void (*loop_task_fn)(struct manager *m, void *data);
struct loop_task {
        loop_task_fn fn;
        void *data;
        struct loop_task *next;
};
/* Runs fn(m, data) on the loop thread soon; callable from any thread. */
void manager_post(struct manager *m, loop_task_fn fn, void *data);

/* Wakes the loop from a worker thread. */
void manager_poke(struct manager *m);
/* Begins an orderly stop: cancels jobs, exits once they have ended (5 s at most). */
void manager_stop(struct manager *m);
void manager_check_stop(struct manager *m);

/* bus.c */
int bus_setup(struct manager *m);
void bus_emit_job_new(struct manager *m, struct job *j);
void bus_emit_job_changed(struct manager *m, struct job *j);
void bus_emit_job_removed(struct manager *m, struct job *j, const char *result);
void bus_emit_active_jobs(struct manager *m);
