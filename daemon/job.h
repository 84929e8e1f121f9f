/* job.h: the job engine. A job is long work of some kind (fetch, create, …) run on its own
 * worker thread; the engine queues it, gives users turns at the free slots, carries progress
 * to the loop and tells subscribers what happened. It knows nothing of what a kind does, of
 * the bus or of the store: data flows bus → jobs → workers, events come back to subscribers. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "names.h"
#include "util.h"

#define JOB_PATH_MAX 64

struct jobs;
struct job;
/* What a worker may do with its job: report progress, see a cancel. */
struct job_ctl;

struct job_kind {
        const char *name; /* the Type property and logs: "fetch", "create" */
        /* Worker thread: the work. 0, or -errno with e filled. */
        int (*run)(struct job_ctl *ctl, void *payload, struct hv_error *e);
        /* Loop thread, once the worker has returned, before the job is removed: hand results
         * to their owner (an image to the store, say). May be NULL. */
        void (*finished)(void *payload, int result);
        void (*free)(void *payload);
        /* Loop thread, for a job that waited (job_wait_for) when the job it waited for has
         * ended with result, before that one is freed: true when its end settles this job's
         * work (this job will start and use it), false when this job must do the work itself
         * (it then leads the jobs still waiting). May be NULL (always false). */
        bool (*joined)(void *payload, struct job *leader, int result);
};

enum job_event { JOB_NEW, JOB_CHANGED, JOB_REMOVED };
typedef void (*job_listener_fn)(void *ud, enum job_event event, struct job *j);

struct job_limits {
        unsigned max_concurrent;   /* running jobs per kind */
        unsigned running_per_user; /* of those, per non-root user (UINT_MAX: no cap) */
};

/* Read on the loop thread; the engine writes them. */
struct job {
        uint32_t id;
        const struct job_kind *kind;
        char target[HV_NAME_MAX + 1];
        char *source;             /* as shown: redacted */
        char path[JOB_PATH_MAX];
        uid_t owner;
        struct jobs *jobs;
        void *payload;
        /* engine-private below */
        struct job_ctl *ctl;
        struct job *after;        /* job_wait_for: not started before that one has ended */
        bool submitted, started;
        pthread_t thread;
        uint64_t last_emit_usec;
        struct job *next;
};

int jobs_new(struct loop *loop, uint32_t first_id, struct jobs **ret);
/* Only once no job is left (the stop waits for that), or at exit. */
struct jobs *jobs_free(struct jobs *js);
int jobs_subscribe(struct jobs *js, job_listener_fn fn, void *ud);
/* New limits (start-up, reload); queued jobs start if slots opened. */
void jobs_set_limits(struct jobs *js, const struct job_limits *l);
/* Cancels every job; new ones are refused from then on. */
void jobs_stop(struct jobs *js);

/* A job of kind with its payload (owned from here on, even on failure: kind->free). Not yet
 * visible: job_submit() announces (JOB_NEW) and queues it. NULL: out of memory. */
struct job *job_new(struct jobs *js, const struct job_kind *kind, const char *target, const char *source_shown, uid_t owner,
                    void *payload);
void job_submit(struct job *j);
/* Before job_submit: j (of the same kind) does not start before leader (or the job leader
 * itself waits for) has ended; its phase is "waiting" and its progress that of the leader.
 * Then kind->joined decides whether it still has work. */
void job_wait_for(struct job *j, struct job *leader);
void job_cancel(struct job *j);

struct job *jobs_first(struct jobs *js);
unsigned jobs_count(struct jobs *js);
struct job *jobs_find(struct jobs *js, uint32_t id);
struct job *jobs_find_by_path(struct jobs *js, const char *path);
/* The job of kind working on target, if any. */
struct job *jobs_find_target(struct jobs *js, const struct job_kind *kind, const char *target);

/* A consistent view of a job's progress (any thread). */
struct job_progress {
        const char *phase;
        uint64_t done, total;
        double fraction;
};
void job_get_progress(struct job *j, struct job_progress *p);
/* For JOB_REMOVED subscribers: "done", "failed" or "canceled", and the error of a failure. */
const char *job_result(struct job *j);
const struct hv_error *job_error(struct job *j);

/* Worker side. */
uint32_t job_ctl_id(struct job_ctl *c);
void job_ctl_phase(struct job_ctl *c, const char *phase);
void job_ctl_bytes(struct job_ctl *c, uint64_t done, uint64_t total);
/* Set by a cancel; a worker may set it too, to stop its own stages after an error. */
atomic_bool *job_ctl_abort(struct job_ctl *c);
bool job_ctl_user_canceled(struct job_ctl *c);
/* Between steps: -ECANCELED with e filled ("canceled") once the job is to stop, else 0. */
int job_ctl_canceled(struct job_ctl *c, struct hv_error *e);
