/* job.h: long-running work (fetch, create) on worker threads, reported to the bus loop. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "machine.h"
#include "opts.h"
#include "store.h"

struct manager;

enum job_type { JOB_FETCH, JOB_CREATE };

struct job {
        uint32_t id;
        enum job_type type;
        char target[65];
        char *source;        /* as the caller gave it: only the fetch itself uses it */
        char *source_shown;  /* redacted: the Source property, logs, metadata, messages */
        int source_fd;       /* file://: the source opened when the call was checked, else -1 */
        bool source_public;  /* a digest of it may be shown to anyone (http(s), world-readable file) */
        char path[64];
        uid_t owner;
        struct manager *mgr;
        struct hv_conf_snap *conf; /* the configuration the job was made under (reload-safe) */

        /* Shared with the worker, under mtx. */
        pthread_mutex_t mtx;
        const char *phase;
        uint64_t bytes_done, bytes_total;
        bool changed, phase_changed, finished;
        uint64_t last_poke_usec;
        atomic_bool cancel;       /* user cancel, or abort after an internal error */
        atomic_bool user_canceled;
        struct hv_error err;      /* set by the worker before finished */
        int result;               /* 0 done, <0 failed or canceled */
        struct image *image;      /* a fetch job's published image, handed to the loop */

        /* Main loop only. */
        bool started;
        pthread_t thread;
        uint64_t last_emit_usec;
        struct fetch_params fetch;
        struct create_params create;
        struct job *next;
};

const char *job_type_name(enum job_type t);
double job_progress(struct job *j);
/* Worker side: progress reports (rate-limited pokes of the loop). */
void job_set_phase(struct job *j, const char *phase);
void job_set_bytes(struct job *j, uint64_t done, uint64_t total);

/* Loop side. */
struct job *job_new(struct manager *m, enum job_type type, const char *target, const char *source, uid_t owner);
/* Starts queued jobs while there are free slots: per type MaxConcurrent slots, taken in turn
 * by the users with queued jobs (round robin by uid), a non-root user holding at most
 * RunningJobsPerUser of them. */
void job_schedule(struct manager *m);
int job_cancel(struct job *j);
struct job *job_find(struct manager *m, uint32_t id);
struct job *job_find_by_path(struct manager *m, const char *path);
/* Called when a worker poked the loop: emits changes, finishes ended jobs. */
void job_dispatch(struct manager *m);
unsigned job_count_active(struct manager *m);
/* The fetch worker body (import.c). */
int import_run(struct job *j, struct hv_error *e);
