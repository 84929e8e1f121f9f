/* job.c: a job's life: created by a bus call, queued, run on its own worker thread, reported to
 * the loop through one eventfd, ended with exactly one JobRemoved. */
#include "job.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "uri.h"

#define EMIT_INTERVAL_USEC (100 * 1000ULL)

const char *job_type_name(enum job_type t) {
        return t == JOB_FETCH ? "fetch" : "create";
}

double job_progress(struct job *j) {
        pthread_mutex_lock(&j->mtx);
        double p = 0.0;
        if (j->finished && j->result == 0)
                p = 1.0;
        else if (j->bytes_total)
                p = (double)j->bytes_done / (double)j->bytes_total;
        pthread_mutex_unlock(&j->mtx);
        return p > 1.0 ? 1.0 : p;
}

/* Called with j->mtx held. */
static void poke_locked(struct job *j, bool force) {
        uint64_t now = hv_mono_usec();
        if (!force && now - j->last_poke_usec < EMIT_INTERVAL_USEC)
                return;
        j->last_poke_usec = now;
        manager_poke(j->mgr);
}

void job_set_phase(struct job *j, const char *phase) {
        pthread_mutex_lock(&j->mtx);
        j->phase = phase;
        j->changed = j->phase_changed = true;
        poke_locked(j, true);
        pthread_mutex_unlock(&j->mtx);
}

void job_set_bytes(struct job *j, uint64_t done, uint64_t total) {
        pthread_mutex_lock(&j->mtx);
        j->bytes_done = done;
        j->bytes_total = total;
        j->changed = true;
        poke_locked(j, false);
        pthread_mutex_unlock(&j->mtx);
}

struct job *job_new(struct manager *m, enum job_type type, const char *target, const char *source, uid_t owner) {
        struct job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        char shown[HV_URI_MAX + 8];
        uri_redact(source, shown, sizeof(shown));
        j->source_fd = -1;
        j->conf = hv_conf_snap_ref(m->snap);
        j->source = strdup(source);
        j->source_shown = strdup(shown);
        if (!j->source || !j->source_shown) {
                hv_conf_snap_unref(j->conf);
                free(j->source);
                free(j->source_shown);
                free(j);
                return NULL;
        }
        pthread_mutex_init(&j->mtx, NULL);
        j->id = ++m->next_job_id;
        j->type = type;
        j->owner = owner;
        j->mgr = m;
        j->phase = "queued";
        snprintf(j->target, sizeof(j->target), "%s", target);
        snprintf(j->path, sizeof(j->path), HV_JOB_PREFIX "/_%u", j->id);
        struct job **pp = &m->jobs;
        while (*pp)
                pp = &(*pp)->next;
        *pp = j;
        return j;
}

static void job_free(struct job *j) {
        pthread_mutex_destroy(&j->mtx);
        image_free(j->image);
        if (j->source_fd >= 0)
                close(j->source_fd);
        hv_conf_snap_unref(j->conf);
        free(j->source);
        free(j->source_shown);
        free(j);
}

static void *worker_main(void *arg) {
        struct job *j = arg;
        struct hv_error e = { 0 };
        int r = j->type == JOB_FETCH ? import_run(j, &e) : machine_create_run(j, &e);
        pthread_mutex_lock(&j->mtx);
        j->result = r;
        j->err = e;
        j->finished = true;
        poke_locked(j, true);
        pthread_mutex_unlock(&j->mtx);
        return NULL;
}

static bool queued(const struct job *j) {
        return !j->started && !j->finished;
}

static unsigned running_of(struct manager *m, enum job_type type, uid_t uid, bool any_uid) {
        unsigned n = 0;
        for (struct job *j = m->jobs; j; j = j->next)
                n += j->type == type && j->started && !j->finished && (any_uid || j->owner == uid);
        return n;
}

/* The next job to start: the oldest queued job of the first user after `after` (in uid order,
 * wrapping) who has one and is below the per-user cap. NULL if none may start. */
static struct job *next_in_turn(struct manager *m, enum job_type type, uid_t after) {
        unsigned cap = hv_conf_running_per_user(&m->conf);
        struct job *best = NULL, *wrap = NULL;
        for (struct job *j = m->jobs; j; j = j->next) {
                if (j->type != type || !queued(j))
                        continue;
                if (j->owner != 0 && running_of(m, type, j->owner, false) >= cap)
                        continue;
                if (j->owner > after && (!best || j->owner < best->owner))
                        best = j;
                if (!wrap || j->owner < wrap->owner)
                        wrap = j;
        }
        return best ? best : wrap;
}

void job_schedule(struct manager *m) {
        if (m->stopping)
                return;
        for (int type = JOB_FETCH; type <= JOB_CREATE; type++) {
                while (running_of(m, type, 0, true) < m->conf.max_concurrent) {
                        struct job *j = next_in_turn(m, type, m->last_served[type]);
                        if (!j)
                                break;
                        m->last_served[type] = j->owner;
                        j->started = true;
                        if (pthread_create(&j->thread, NULL, worker_main, j) != 0) {
                                log_error("cannot start a worker thread for job %u: %m", j->id);
                                j->started = false;
                                pthread_mutex_lock(&j->mtx);
                                j->result = hv_fail(&j->err, HV_E_ERRNO, EAGAIN, "cannot start a worker thread");
                                j->finished = true;
                                pthread_mutex_unlock(&j->mtx);
                                manager_poke(m);
                        }
                }
        }
}

int job_cancel(struct job *j) {
        atomic_store(&j->user_canceled, true);
        atomic_store(&j->cancel, true);
        if (!j->started) {
                pthread_mutex_lock(&j->mtx);
                if (!j->finished) {
                        j->result = hv_fail(&j->err, HV_E_CANCELED, ECANCELED, "canceled");
                        j->finished = true;
                }
                pthread_mutex_unlock(&j->mtx);
        }
        manager_poke(j->mgr);
        return 0;
}

struct job *job_find(struct manager *m, uint32_t id) {
        for (struct job *j = m->jobs; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

struct job *job_find_by_path(struct manager *m, const char *path) {
        for (struct job *j = m->jobs; j; j = j->next)
                if (strcmp(j->path, path) == 0)
                        return j;
        return NULL;
}

unsigned job_count_active(struct manager *m) {
        unsigned n = 0;
        for (struct job *j = m->jobs; j; j = j->next)
                n++;
        return n;
}

static const char *result_of(struct job *j) {
        if (j->result >= 0)
                return "done";
        if (j->err.kind == HV_E_CANCELED || (j->result == -ECANCELED && atomic_load(&j->user_canceled)))
                return "canceled";
        return "failed";
}

static void finish(struct manager *m, struct job *j) {
        if (j->started)
                pthread_join(j->thread, NULL);
        const char *result = result_of(j);
        if (strcmp(result, "failed") == 0)
                log_warning("job %u (%s %s) failed (uid %u): %s", j->id, job_type_name(j->type), j->target, (unsigned)j->owner,
                            j->err.msg);
        else
                log_info("job %u (%s %s) %s (uid %u)", j->id, job_type_name(j->type), j->target, result, (unsigned)j->owner);
        if (j->image) {
                store_insert(&m->store, j->image);
                j->image = NULL;
        }
        bus_emit_job_changed(m, j);
        bus_emit_job_removed(m, j, result);
        struct job **pp = &m->jobs;
        while (*pp != j)
                pp = &(*pp)->next;
        *pp = j->next;
        job_free(j);
        bus_emit_active_jobs(m);
}

static int on_rate_timer(sd_event_source *s, uint64_t usec, void *ud) {
        (void)s; (void)usec;
        job_dispatch(ud);
        return 0;
}

void job_dispatch(struct manager *m) {
        uint64_t now = hv_mono_usec();
        bool pending = false;
        struct job *next;
        for (struct job *j = m->jobs; j; j = next) {
                next = j->next;
                pthread_mutex_lock(&j->mtx);
                bool finished = j->finished, changed = j->changed, phase_changed = j->phase_changed;
                bool due = changed && (phase_changed || now - j->last_emit_usec >= EMIT_INTERVAL_USEC);
                if (due || finished)
                        j->changed = j->phase_changed = false;
                pthread_mutex_unlock(&j->mtx);
                if (finished) {
                        finish(m, j);
                        continue;
                }
                if (due) {
                        j->last_emit_usec = now;
                        bus_emit_job_changed(m, j);
                } else if (changed)
                        pending = true;
        }
        job_schedule(m);
        if (pending) {
                if (!m->rate_timer)
                        sd_event_add_time_relative(m->event, &m->rate_timer, CLOCK_MONOTONIC, EMIT_INTERVAL_USEC, 10000,
                                                   on_rate_timer, m);
                else {
                        sd_event_source_set_time_relative(m->rate_timer, EMIT_INTERVAL_USEC);
                        sd_event_source_set_enabled(m->rate_timer, SD_EVENT_ONESHOT);
                }
        }
        manager_check_stop(m);
}
