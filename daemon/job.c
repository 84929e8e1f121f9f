/* job.c: the job engine: a job's life from job_new() to the one JOB_REMOVED event. Workers
 * report through their job_ctl; the loop learns of it through one loop_post() at a time and
 * tells subscribers, at most every EMIT_INTERVAL for progress, at once for phases and ends. */
#include "job.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "log.h"

#define EMIT_INTERVAL_USEC (100 * 1000ULL)
#define MAX_LISTENERS 4
#define MAX_KINDS 8

struct job_ctl {
        struct job *j;
        pthread_mutex_t mtx; /* the fields below are shared with the worker */
        const char *phase;
        uint64_t done, total;
        bool changed, phase_changed, finished;
        uint64_t last_poke_usec;
        int result;
        struct hv_error err;
        atomic_bool abort, user_canceled;
};

struct jobs {
        struct loop *loop;
        struct job *list;
        uint32_t next_id;
        struct job_limits limits;
        bool stopping;
        atomic_bool dispatch_posted;
        sd_event_source *rate_timer;
        struct {
                job_listener_fn fn;
                void *ud;
        } listeners[MAX_LISTENERS];
        unsigned n_listeners;
        struct {
                const struct job_kind *kind;
                uid_t uid;
        } last_served[MAX_KINDS];          /* round robin between users, per kind */
};

static void notify(struct jobs *js, enum job_event ev, struct job *j) {
        for (unsigned i = 0; i < js->n_listeners; i++)
                js->listeners[i].fn(js->listeners[i].ud, ev, j);
}

static void dispatch(struct jobs *js);

static void dispatch_task(void *data) {
        struct jobs *js = data;
        atomic_store(&js->dispatch_posted, false);
        dispatch(js);
}

/* Any thread: have the loop look at the jobs soon (one pending task at most). */
static void wake(struct jobs *js) {
        if (!atomic_exchange(&js->dispatch_posted, true) && loop_post(js->loop, dispatch_task, js) < 0)
                atomic_store(&js->dispatch_posted, false);
}

/* ---- worker side ---- */

uint32_t job_ctl_id(struct job_ctl *c) {
        return c->j->id;
}

/* Called with c->mtx held. */
static void poke_locked(struct job_ctl *c, bool force) {
        uint64_t now = hv_mono_usec();
        if (!force && now - c->last_poke_usec < EMIT_INTERVAL_USEC)
                return;
        c->last_poke_usec = now;
        wake(c->j->jobs);
}

/* A phase (phase non-NULL: told at once) or byte counts (rate-limited), under the lock. */
static void report(struct job_ctl *c, const char *phase, uint64_t done, uint64_t total) {
        pthread_mutex_lock(&c->mtx);
        if (phase)
                c->phase = phase;
        else {
                c->done = done;
                c->total = total;
        }
        c->changed = true;
        c->phase_changed |= phase != NULL;
        poke_locked(c, phase != NULL);
        pthread_mutex_unlock(&c->mtx);
}

void job_ctl_phase(struct job_ctl *c, const char *phase) {
        report(c, phase, 0, 0);
}

void job_ctl_bytes(struct job_ctl *c, uint64_t done, uint64_t total) {
        report(c, NULL, done, total);
}

atomic_bool *job_ctl_abort(struct job_ctl *c) {
        return &c->abort;
}

int job_ctl_canceled(struct job_ctl *c, struct hv_error *e) {
        return atomic_load(&c->abort) ? hv_fail(e, HV_E_CANCELED, ECANCELED, "canceled") : 0;
}

bool job_ctl_user_canceled(struct job_ctl *c) {
        return atomic_load(&c->user_canceled);
}

/* The job's end (once: a later call finds it finished and leaves the first result), told to
 * the loop at once. */
static void mark_finished(struct job_ctl *c, int result, const struct hv_error *e) {
        pthread_mutex_lock(&c->mtx);
        if (!c->finished) {
                c->result = result;
                c->err = *e;
                c->finished = true;
        }
        poke_locked(c, true);
        pthread_mutex_unlock(&c->mtx);
}

static void *worker_main(void *arg) {
        struct job *j = arg;
        struct hv_error e = { 0 };
        int r = j->kind->run(j->ctl, j->payload, &e);
        mark_finished(j->ctl, r, &e);
        return NULL;
}

/* ---- any thread ---- */

void job_get_progress(struct job *j, struct job_progress *p) {
        struct job_ctl *c = j->ctl;
        pthread_mutex_lock(&c->mtx);
        p->phase = c->phase;
        p->done = c->done;
        p->total = c->total;
        double f = 0.0;
        if (c->finished && c->result == 0)
                f = 1.0;
        else if (c->total)
                f = (double)c->done / (double)c->total;
        pthread_mutex_unlock(&c->mtx);
        p->fraction = f > 1.0 ? 1.0 : f;
}

/* ---- loop side ---- */

int jobs_new(struct loop *loop, uint32_t first_id, struct jobs **ret) {
        struct jobs *js = calloc(1, sizeof(*js));
        if (!js)
                return -ENOMEM;
        js->loop = loop;
        js->next_id = first_id;
        js->limits = (struct job_limits){ .max_concurrent = 1, .running_per_user = UINT_MAX };
        *ret = js;
        return 0;
}

static void job_free(struct job *j) {
        if (!j)
                return;
        if (j->ctl)
                pthread_mutex_destroy(&j->ctl->mtx);
        free(j->ctl);
        if (j->kind->free)
                j->kind->free(j->payload);
        free(j->source);
        free(j);
}

struct jobs *jobs_free(struct jobs *js) {
        if (!js)
                return NULL;
        for (struct job *j = js->list, *n; j; j = n) {
                n = j->next;
                if (j->started)
                        pthread_join(j->thread, NULL);
                job_free(j);
        }
        sd_event_source_disable_unref(js->rate_timer);
        free(js);
        return NULL;
}

int jobs_subscribe(struct jobs *js, job_listener_fn fn, void *ud) {
        if (js->n_listeners == MAX_LISTENERS)
                return -ENOSPC;
        js->listeners[js->n_listeners].fn = fn;
        js->listeners[js->n_listeners].ud = ud;
        js->n_listeners++;
        return 0;
}

struct job *job_new(struct jobs *js, const struct job_kind *kind, const char *target, const char *source_shown, uid_t owner,
                    void *payload) {
        struct job *j = calloc(1, sizeof(*j));
        if (!j) {
                if (kind->free)
                        kind->free(payload);
                return NULL;
        }
        j->kind = kind;
        j->payload = payload;
        j->ctl = calloc(1, sizeof(*j->ctl));
        j->source = strdup(source_shown);
        if (!j->ctl || !j->source) {
                free(j->ctl);
                j->ctl = NULL;
                job_free(j);
                return NULL;
        }
        pthread_mutex_init(&j->ctl->mtx, NULL);
        j->ctl->j = j;
        j->ctl->phase = "queued";
        j->jobs = js;
        j->id = ++js->next_id;
        j->owner = owner;
        snprintf(j->target, sizeof(j->target), "%s", target);
        snprintf(j->path, sizeof(j->path), HV_JOB_PREFIX "/_%u", j->id);
        struct job **pp = &js->list;
        while (*pp)
                pp = &(*pp)->next;
        *pp = j;
        return j;
}

static void schedule(struct jobs *js);

void job_submit(struct job *j) {
        assert(!j->submitted);
        j->submitted = true;
        notify(j->jobs, JOB_NEW, j);
        schedule(j->jobs);
}

void job_wait_for(struct job *j, struct job *leader) {
        assert(!j->submitted && j->kind == leader->kind && j != leader);
        j->after = leader->after ? leader->after : leader;
        j->ctl->phase = "waiting";
}

void job_cancel(struct job *j) {
        struct job_ctl *c = j->ctl;
        atomic_store(&c->user_canceled, true);
        atomic_store(&c->abort, true);
        if (!j->started) {
                struct hv_error e = { 0 };
                mark_finished(c, hv_fail(&e, HV_E_CANCELED, ECANCELED, "canceled"), &e);
        } else
                wake(j->jobs);
}

void jobs_stop(struct jobs *js) {
        js->stopping = true;
        for (struct job *j = js->list; j; j = j->next)
                job_cancel(j);
}

void jobs_set_limits(struct jobs *js, const struct job_limits *l) {
        js->limits = *l;
        schedule(js);
}

struct job *jobs_first(struct jobs *js) {
        return js->list;
}

unsigned jobs_count(struct jobs *js) {
        unsigned n = 0;
        for (struct job *j = js->list; j; j = j->next)
                n++;
        return n;
}

struct job *jobs_find(struct jobs *js, uint32_t id) {
        for (struct job *j = js->list; j; j = j->next)
                if (j->id == id)
                        return j;
        return NULL;
}

struct job *jobs_find_by_path(struct jobs *js, const char *path) {
        for (struct job *j = js->list; j; j = j->next)
                if (strcmp(j->path, path) == 0)
                        return j;
        return NULL;
}

struct job *jobs_find_target(struct jobs *js, const struct job_kind *kind, const char *target) {
        for (struct job *j = js->list; j; j = j->next)
                if (j->kind == kind && strcmp(j->target, target) == 0)
                        return j;
        return NULL;
}

static bool is_finished(struct job *j) {
        pthread_mutex_lock(&j->ctl->mtx);
        bool f = j->ctl->finished;
        pthread_mutex_unlock(&j->ctl->mtx);
        return f;
}

static bool queued(struct job *j) {
        return j->submitted && !j->started && !j->after && !is_finished(j);
}

static unsigned running_of(struct jobs *js, const struct job_kind *kind, uid_t uid, bool any_uid) {
        unsigned n = 0;
        for (struct job *j = js->list; j; j = j->next)
                n += j->kind == kind && j->started && (any_uid || j->owner == uid) && !is_finished(j);
        return n;
}

static uid_t *last_served(struct jobs *js, const struct job_kind *kind) {
        for (unsigned i = 0; i < MAX_KINDS; i++) {
                if (js->last_served[i].kind == kind)
                        return &js->last_served[i].uid;
                if (!js->last_served[i].kind) {
                        js->last_served[i].kind = kind;
                        return &js->last_served[i].uid;
                }
        }
        assert(!"more job kinds than MAX_KINDS");
        return &js->last_served[0].uid;
}

/* The next job of kind to start: the oldest queued job of the first user after `after` (in uid
 * order, wrapping) who has one and is below the per-user cap. NULL if none may start. */
static struct job *next_in_turn(struct jobs *js, const struct job_kind *kind, uid_t after) {
        struct job *best = NULL, *wrap = NULL;
        for (struct job *j = js->list; j; j = j->next) {
                if (j->kind != kind || !queued(j))
                        continue;
                if (j->owner != 0 && running_of(js, kind, j->owner, false) >= js->limits.running_per_user)
                        continue;
                if (j->owner > after && (!best || j->owner < best->owner))
                        best = j;
                if (!wrap || j->owner < wrap->owner)
                        wrap = j;
        }
        return best ? best : wrap;
}

/* Starts queued jobs while there are free slots: per kind max_concurrent, taken in turn by the
 * users with queued jobs (round robin by uid), a non-root user holding at most
 * running_per_user of them. */
static void schedule(struct jobs *js) {
        if (js->stopping)
                return;
        for (struct job *k = js->list; k; k = k->next)
                (void)last_served(js, k->kind); /* every kind in the list has its entry */
        for (unsigned i = 0; i < MAX_KINDS && js->last_served[i].kind; i++) {
                const struct job_kind *kind = js->last_served[i].kind;
                uid_t *turn = &js->last_served[i].uid;
                while (running_of(js, kind, 0, true) < js->limits.max_concurrent) {
                        struct job *j = next_in_turn(js, kind, *turn);
                        if (!j)
                                break;
                        *turn = j->owner;
                        j->started = true;
                        if (pthread_create(&j->thread, NULL, worker_main, j) != 0) {
                                log_error("cannot start a worker thread for job %u: %m", j->id);
                                j->started = false;
                                struct hv_error e = { 0 };
                                mark_finished(j->ctl, hv_fail(&e, HV_E_ERRNO, EAGAIN, "cannot start a worker thread"), &e);
                        }
                }
        }
}

const char *job_result(struct job *j) {
        struct job_ctl *c = j->ctl;
        if (c->result >= 0)
                return "done";
        if (c->err.kind == HV_E_CANCELED || (c->result == -ECANCELED && atomic_load(&c->user_canceled)))
                return "canceled";
        return "failed";
}

const struct hv_error *job_error(struct job *j) {
        return &j->ctl->err;
}

/* The jobs that waited for j, which ended with result: each learns of it (kind->joined); the
 * first that must still work itself leads those after it that must too. */
static void release_waiters(struct jobs *js, struct job *j, int result) {
        struct job *lead = NULL;
        for (struct job *w = js->list; w; w = w->next) {
                if (w->after != j)
                        continue;
                w->after = NULL;
                if (is_finished(w) || (w->kind->joined && w->kind->joined(w->payload, j, result)))
                        continue;
                pthread_mutex_lock(&w->ctl->mtx);
                w->ctl->phase = "queued";
                w->ctl->changed = w->ctl->phase_changed = true;
                pthread_mutex_unlock(&w->ctl->mtx);
                wake(js);
                if (!lead)
                        lead = w;
                else
                        w->after = lead;
        }
}

/* A waiting job shows its leader's progress. */
static void mirror_progress(struct jobs *js, struct job *j) {
        struct job_progress p;
        job_get_progress(j, &p);
        for (struct job *w = js->list; w; w = w->next) {
                if (w->after != j)
                        continue;
                pthread_mutex_lock(&w->ctl->mtx);
                w->ctl->done = p.done;
                w->ctl->total = p.total;
                pthread_mutex_unlock(&w->ctl->mtx);
                notify(js, JOB_CHANGED, w);
        }
}

static void finish(struct jobs *js, struct job *j) {
        if (j->started)
                pthread_join(j->thread, NULL);
        const char *result = job_result(j);
        if (strcmp(result, "failed") == 0)
                log_warning("job %u (%s %s) failed (uid %u): %s", j->id, j->kind->name, j->target, (unsigned)j->owner, j->ctl->err.msg);
        else
                log_info("job %u (%s %s) %s (uid %u)", j->id, j->kind->name, j->target, result, (unsigned)j->owner);
        if (j->kind->finished)
                j->kind->finished(j->payload, j->ctl->result);
        release_waiters(js, j, j->ctl->result);
        notify(js, JOB_CHANGED, j);
        struct job **pp = &js->list;
        while (*pp != j) {
                assert(*pp); /* a finishing job is in the list */
                pp = &(*pp)->next;
        }
        *pp = j->next;
        notify(js, JOB_REMOVED, j);
        job_free(j);
}

static int on_rate_timer(sd_event_source *s, uint64_t usec, void *ud) {
        (void)s; (void)usec;
        dispatch(ud);
        return 0;
}

/* On the loop, after a wake: ends finished jobs, tells of changes (rate-limited), starts more. */
static void dispatch(struct jobs *js) {
        uint64_t now = hv_mono_usec();
        bool pending = false;
        struct job *next;
        for (struct job *j = js->list; j; j = next) {
                next = j->next;
                struct job_ctl *c = j->ctl;
                pthread_mutex_lock(&c->mtx);
                bool finished = c->finished, changed = c->changed, phase_changed = c->phase_changed;
                bool due = changed && (phase_changed || now - j->last_emit_usec >= EMIT_INTERVAL_USEC);
                if (due || finished)
                        c->changed = c->phase_changed = false;
                pthread_mutex_unlock(&c->mtx);
                if (finished) {
                        finish(js, j);
                        continue;
                }
                if (due) {
                        j->last_emit_usec = now;
                        notify(js, JOB_CHANGED, j);
                        mirror_progress(js, j);
                } else if (changed)
                        pending = true;
        }
        schedule(js);
        if (pending) {
                if (!js->rate_timer)
                        (void)sd_event_add_time_relative(loop_event(js->loop), &js->rate_timer, CLOCK_MONOTONIC, EMIT_INTERVAL_USEC,
                                                         10000, on_rate_timer, js);
                else {
                        (void)sd_event_source_set_time_relative(js->rate_timer, EMIT_INTERVAL_USEC);
                        (void)sd_event_source_set_enabled(js->rate_timer, SD_EVENT_ONESHOT);
                }
        }
}
